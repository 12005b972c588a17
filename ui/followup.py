"""Follow-up questions: turns 「那山西呢？」 into a standalone question using the previous one."""

from __future__ import annotations

import re
from collections.abc import Sequence

_PROVINCES = [
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北",
    "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "香港", "澳门", "台湾",
]
_CITIES = [
    "西安", "太原", "深圳", "广州", "杭州", "南京", "武汉", "成都", "苏州", "合肥", "郑州", "长沙", "济南", "青岛", "沈阳", "大连", "厦门",
    "宁波", "兰州", "银川", "咸阳", "宝鸡", "大同",
]
_SUFFIX = r"(?:壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市)?"
# longest names first, so 内蒙古 is not read as 内蒙; scanning left to right keeps 陕西 in 陕西安排
PLACE = re.compile("(?:" + "|".join(sorted(_PROVINCES + _CITIES, key=len, reverse=True)) + ")" + _SUFFIX)
YEAR = re.compile(r"\d{4}年")

LEAD = re.compile(r"^(?:那么|那要是|那如果|那|如果是|要是|换成|换作|还有|另外|再问一下|再问|同样地?|请问)[，,、\s]*")
TRAIL = re.compile(r"(?:的情况|的呢|方面|这边|那边)?(?:呢|吗)?[？?。！!\s]*$")
PRONOUN = re.compile(r"^(?:它们|它|其|该(?:计划|文件|政策|意见|方案|通知)?|这个(?:计划|文件|政策|意见|方案)?|这项|这份|这些|上述(?:文件|政策)?|此)")
QUESTION_WORD = re.compile(r"多少|几|哪|什么|啥|如何|怎么|怎样|是否|有没有|为什么|吗|何时|谁")
# previous question = subject + prefix (对/到2026年…) + topic + tail (要达到多少？/有什么支持？)
PREFIX = re.compile(r"^(?:对于|对|在|关于|针对|就|到\d{4}年底?|\d{4}年(?:前|底)?|的)+")
TAIL = re.compile(r"(?:的)?(?:要|将|需要|应|能|会|计划|准备)?(?:达到|突破|是|有|包括|提出|给予|提供|出台)?"
                  r"(?:多少|几|哪些|哪几|什么|啥|何|如何|怎么|怎样|是否|有没有|吗).*$")
MAX_FOLLOW_UP = 20  # a follow-up is short; a long question stands on its own


def is_follow_up(question: str) -> bool:
    """「那陕西呢？」「它的目标是什么？」「还有呢？」: short, and leaning on what was asked before."""
    q = question.strip()
    if not q or len(q) > MAX_FOLLOW_UP:
        return False
    return bool(LEAD.match(q) or PRONOUN.match(q) or re.search(r"呢[？?]?$", q))


def standalone(question: str, previous: str | None, titles: Sequence[str] = ()) -> str:
    """The question to search with: itself, or the previous question re-aimed by the follow-up.

    `titles` are the indexed document titles: a leading phrase of the previous question found in a
    title (秦创原 in 秦创原创新驱动平台建设三年行动计划) is its subject and can be swapped for a place.
    """
    question = question.strip()
    if not previous or not is_follow_up(question):
        return question
    previous = previous.strip()
    stem = previous.rstrip("？?。！! ")
    if PRONOUN.match(question):
        subject = subject_of(previous, titles)
        return PRONOUN.sub(subject, question, count=1) if subject else f"{stem}，{question}"
    focus = TRAIL.sub("", LEAD.sub("", question))
    if not focus:  # 「还有呢？」
        return previous
    if QUESTION_WORD.search(focus):  # 「那具体有哪些措施？」: a new question about the same topic
        return f"{stem}，{focus}" + ("" if focus.endswith(("？", "?")) else "？")
    return swap_entity(previous, focus, titles)


def swap_entity(previous: str, entity: str, titles: Sequence[str] = ()) -> str:
    """Put `entity` where the previous question had one of its kind (place, year, subject or topic)."""
    if PLACE.fullmatch(entity):
        if PLACE.search(previous):
            return PLACE.sub(entity, previous, count=1)
        subject = subject_of(previous, titles)
        return previous.replace(subject, entity, 1) if subject else entity + previous
    if YEAR.fullmatch(entity):
        return YEAR.sub(entity, previous, count=1) if YEAR.search(previous) else entity + previous
    topic = topic_of(previous, titles)
    if topic:
        head, _, rest = previous.partition(topic)
        return head + entity + rest
    return f"{previous.rstrip('？?。 ')}，{entity}呢？"


def subject_of(question: str, titles: Sequence[str] = ()) -> str:
    """The place the question names, or its longest leading phrase that occurs in a document title."""
    place = PLACE.search(question)
    if place:
        return place.group(0)
    for length in range(min(12, len(question)), 2, -1):  # 3+ characters: 创新 alone is no subject
        head = question[:length]
        if any(head in t for t in titles):
            return head
    return ""


def topic_of(question: str, titles: Sequence[str] = ()) -> str:
    """What the question asks about: 科技金融 in 秦创原对科技金融有什么支持？"""
    subject = subject_of(question, titles)
    body = question[len(subject):] if subject and question.startswith(subject) else question
    body = PREFIX.sub("", body)
    tail = TAIL.search(body)
    topic = body[: tail.start()] if tail else ""
    return topic if len(topic) >= 2 else ""
