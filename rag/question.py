"""A question, analysed once into a frozen `Question`: what it asks for, its key terms with their
abbreviation spellings, the places and years it names. Retrieval, rerank and the answerers all read this
record instead of re-deriving it from the string."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.citations import arabic_numerals
from rag.tokens import alternatives, bigram_tokens, jieba_dictionary, pos_cut, spellings, words

# Question intents, from the way staff phrase questions.
QUANTITY = re.compile(r"多少|(?<!哪)几[个项家所名年成]|比例|比重|数量|规模|金额|多大|多高|多长|目标|指标|达到|超过|占比|百分")
WHEN = re.compile(r"什么时候|何时|哪一?年|时间|期限|截至|截止|到哪年")
WHO = re.compile(r"谁|哪个部门|哪些部门|哪家|由谁|牵头|负责")
LIST = re.compile(r"哪些|哪几|几个方面|几项|有什么(?:措施|举措|任务|要求|内容|方面)|包括什么|包括哪|都有|列举|主要任务|重点任务|分别是|举措|措施有")
# "分别/各自" alone is not a comparison ("科技型中小企业和高新技术企业分别要突破多少家" asks one document).
COMPARE = re.compile(r"对比|比较|区别|异同|不同|两[省地份个]|相比|还是|vs|VS")
# "why was it issued": a document states its purpose once, as 为（了）…，制定本法/现制定本行动计划 (a law's 第一条)
PURPOSE = re.compile(r"目的|宗旨|初衷|意图|想达到|为什么(?:要)?(?:出台|制定|印发)|为啥(?:要)?(?:出台|制定)|立法目的")
PLACES = re.compile(
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西|海南|重庆|四川"
    "|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|秦创原"
)
# What kind of clause a question asks for (the reranker knows how each kind of clause reads).
KINDS: dict[str, re.Pattern[str]] = {
    "definition": re.compile(r"什么是|什么叫|何谓|是什么意思|指什么|指的是什么|是指什么|含义|定义"),
    "in_force": re.compile(r"(?:何时|什么时候|哪天|哪一天|几号|几时|哪年).{0,6}(?:施行|实施|生效|执行)|(?:施行|实施|生效)(?:日期|时间)"),
    "date": re.compile(r"几号|何时|什么时候|哪天|哪一天|日期|几月|时间"),
    "category": re.compile(r"分为|哪几类|哪几种|哪些类型|几个等级|几级|分类"),
    "purpose": re.compile(r"目的|宗旨|初衷|为什么(?:要)?(?:制定|出台|颁布|印发)"),
}
YEAR = re.compile(r"(?<![\d.])((?:19|20)\d{2})(?:\s*[—–\-－~～至到]\s*((?:19|20)\d{2}))?(?![\d.万亿千百%％])")

GENERIC = frozenset("发展 推动 推进 建设 加强 支持 实施 工作 创新 全面 加快 打造 构建 提升 开展 完善 计划 行动 意见 指导 三年 文件 方面".split())
# Words that frame a question rather than name its subject: their absence from the evidence means nothing.
FRAMING = frozenset(
    """目标 数量 结构 架构 机构 经验 目的 说法 方向 战略 年份 指标 硬指标 定位 地方 安排 做法 具体做法 内容 方面
    办法 措施 举措 要求 模式 作用 发挥作用 领域 类 类产品 数字 思路 阶段 方式 政策 文件 两份 两地 计划 行动计划 意见
    指导意见 规定 情况 问题 重点 工作 方案 体系 时候 事情 东西 部分 规模 比例 比重 金额 标准 多大 多少 哪里 哪些
    什么 怎么 如何 回事 怎么回事 一年 一共 具体 主要 分别 各自 打算 准备 哪几个 哪些地方 几环 哪几 说法 规划 大力
    省里 两省 政府 国家 初衷 宗旨 意图 用意 意思 含义 定义 概念""".split()
)
PLACE_NAME = re.compile(r"[\u4e00-\u9fff]{2,8}(?:省|市|县|区|州|盟|旗|镇|乡)")  # jieba tags new ones n
CONTENT_FLAGS = frozenset("n nr ns nt nz nw vn eng j nrt nrfg".split())
_BIGRAM_CHARS = re.compile(r"[^\u4e00-\u9fff0-9A-Za-z%]")


@dataclass(frozen=True, slots=True)
class Intent:
    """What the question asks for: a figure, a time, who, a list, a comparison, the purpose."""

    quantity: bool = False
    when: bool = False
    who: bool = False
    list: bool = False
    compare: bool = False
    purpose: bool = False


@dataclass(frozen=True, slots=True)
class Term:
    """A key term: its weight (rarity in general Chinese, more for a figure) and its spellings (社保 → 社会保险)."""

    word: str
    weight: float
    spellings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Question:
    """Everything the pipeline reads off a question, computed once by `Question.of`."""

    text: str
    intent: Intent
    terms: tuple[Term, ...]            # key terms, framing words dropped
    content_terms: tuple[str, ...]     # nouns and names (jieba POS): what the evidence must mention
    place_terms: tuple[str, ...]       # the place names among them (大理市, 广西)
    places: frozenset[str]             # provinces named (秦创原 is Shaanxi's)
    years: frozenset[int]              # years named (a range counts every year in it)
    kinds: frozenset[str]              # kinds of clause asked for (rag.question.KINDS)
    bigrams: frozenset[str]            # character bigrams
    tokens: tuple[str, ...]            # BM25 query tokens, abbreviations' full forms added

    @classmethod
    def of(cls, text: str | Question) -> Question:
        if isinstance(text, Question):
            return text
        text = text.strip()
        cut = tuple(words(text))
        places = places_in(text)
        purpose = bool(PURPOSE.search(text))
        intent = Intent(
            quantity=bool(QUANTITY.search(text)) and not purpose,  # 想达到什么目的 asks no figure
            when=bool(WHEN.search(text)),
            who=bool(WHO.search(text)),
            list=bool(LIST.search(text)),
            compare=bool(COMPARE.search(text)) or len(places) > 1,
            purpose=purpose,
        )
        tokens = (*cut, *bigram_tokens(text), *(w for alt in alternatives(text) for w in words(alt)))
        content = _content_terms(text)
        return cls(
            text=text, intent=intent, terms=_key_terms(cut), content_terms=tuple(w for w, _ in content),
            place_terms=tuple(w for w, flag in content if flag == "ns" or PLACE_NAME.fullmatch(w)), places=places,
            years=frozenset(years_in(text)), kinds=frozenset(k for k, rx in KINDS.items() if rx.search(text)),
            bigrams=char_bigrams(text), tokens=tokens,
        )

    @property
    def term_weights(self) -> dict[str, float]:
        return {t.word: t.weight for t in self.terms}

    def weighted_spellings(self) -> list[tuple[tuple[str, ...], float]]:
        """Each key term's spellings with its share of the terms' weight."""
        total = sum(t.weight for t in self.terms) or 1.0
        return [(t.spellings, t.weight / total) for t in self.terms]


def char_bigrams(text: str) -> frozenset[str]:
    """The character bigrams of a text's Han characters, digits, letters and %."""
    stripped = _BIGRAM_CHARS.sub("", text)
    return frozenset(stripped[i : i + 2] for i in range(len(stripped) - 1))


def _key_terms(cut: tuple[str, ...]) -> tuple[Term, ...]:
    """Search-mode words weighted by their rarity in general Chinese (a figure weighs more), framing dropped."""
    weights: dict[str, float] = {}
    for t in cut:
        if t in GENERIC or t in FRAMING:
            continue
        weights[t] = max(weights.get(t, 0.0), min(rarity(t), 14.0) + (4.0 if re.search(r"\d", t) else 0.0))
    return tuple(Term(t, w, spellings(t)) for t, w in weights.items())


def _content_terms(text: str) -> list[tuple[str, str]]:
    """(word, jieba POS flag) of the nouns and names of `text`, framing words left out."""
    terms: list[tuple[str, str]] = []
    for word, flag in pos_cut(text):
        word = word.strip().lower().lstrip("和与及或的")  # jieba's HMM glues 和 to a new word: 和战新
        if flag in CONTENT_FLAGS and len(word) >= 2 and word not in FRAMING and word not in (w for w, _ in terms):
            terms.append((word, flag))
    return terms


def rarity(word: str) -> float:
    """-log of the word's frequency in jieba's dictionary of general Chinese."""
    total, freq = jieba_dictionary()
    return math.log(total / (freq.get(word, 0) + 1))


def places_in(text: str) -> frozenset[str]:
    """Provinces a text names (秦创原 is Shaanxi's platform)."""
    return frozenset("陕西" if p == "秦创原" else p for p in PLACES.findall(text))


def years_in(text: str) -> set[int]:
    """The years a text names, a range (2024—2026年) standing for every year in it; 二〇二五年 counts too."""
    years: set[int] = set()
    for m in YEAR.finditer(arabic_numerals(text)):
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        years.update(range(first, last + 1) if 0 <= last - first <= 20 else (first, last))
    return years


_DEFINED = re.compile(r"(?:什么是|什么叫|何谓)(?P<a>[^？?，。]{2,16}?)[？?。]?$"
                      r"|^(?P<b>[^？?，。]{2,16}?)(?:是指什么|指什么|指的是什么|是什么意思|的含义|的定义)")


def defined_term(text: str) -> str | None:
    """The term a "what is X" question asks to define (什么是湿地 → 湿地; 《条例》中的艾滋病是指什么 → 艾滋病)."""
    m = _DEFINED.search(text.strip())
    if not m:
        return None
    term = re.sub(r"^.*》(?:中的|里的|所称的?)?|^(?:本法|本条例|本办法)(?:中的|所称的?)?", "", m.group("a") or m.group("b"))
    return re.sub(r"[“”‘’\"'\s]", "", term) or None
