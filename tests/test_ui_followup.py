"""ui.followup: follow-ups such as 「那山西呢？」 become standalone questions built from the previous one."""

from __future__ import annotations

import pytest

from ui.followup import is_follow_up, standalone

TITLES = ["秦创原创新驱动平台建设三年行动计划（2024—2026年）", "关于加快构建山西省创新生态的指导意见"]
FINANCE = "秦创原对科技金融有什么支持？"
TECH = "秦创原到2026年技术合同成交额要达到多少？"


@pytest.mark.parametrize(("previous", "question", "expected"), [
    (FINANCE, "那山西呢？", "山西对科技金融有什么支持？"),              # the subject named by a title is swapped
    ("山西对科技金融有什么支持？", "那陕西呢？", "陕西对科技金融有什么支持？"),  # a place for a place
    (TECH, "那山西呢？", "山西到2026年技术合同成交额要达到多少？"),
    (TECH, "那2025年呢？", "秦创原到2025年技术合同成交额要达到多少？"),     # a year for a year
    (TECH, "那科技型中小企业呢？", "秦创原到2026年科技型中小企业要达到多少？"),  # a topic for the topic
    (FINANCE, "那人才呢？", "秦创原对人才有什么支持？"),
    (FINANCE, "它的目标是什么？", "秦创原的目标是什么？"),                # a pronoun for the subject
    (FINANCE, "还有呢？", FINANCE),
    (FINANCE, "那具体有哪些措施？", "秦创原对科技金融有什么支持，具体有哪些措施？"),
    ("科技型中小企业要达到多少家？", "那山西呢？", "山西科技型中小企业要达到多少家？"),  # no subject: prepended
])
def test_follow_up_becomes_standalone(previous, question, expected):
    assert standalone(question, previous, TITLES) == expected


@pytest.mark.parametrize("question", [
    "山西省对中试基地建设有哪些支持措施？",          # a full question stands alone
    "秦创原到2026年高新技术企业数量要突破多少家？",
])
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert standalone(question, FINANCE, TITLES) == question


def test_first_question_is_never_rewritten():
    assert standalone("那山西呢？", None, TITLES) == "那山西呢？"


def test_two_letter_title_words_are_not_subjects():
    # 创新 occurs in a title but is no subject: the place is put in front instead
    assert standalone("那山西呢？", "创新平台有哪些？", TITLES) == "山西创新平台有哪些？"
