"""The question record: what is read off a question, once, and handed to retrieval, rerank and answering."""

from __future__ import annotations

import dataclasses

import pytest

import rag.question
from rag.question import Question, defined_term, years_in


def test_a_question_is_a_frozen_record_of_its_analysis():
    q = Question.of("  陕西和山西的研发投入目标分别是多少？ ")
    assert q.text == "陕西和山西的研发投入目标分别是多少？"
    assert q.places == {"陕西", "山西"} and q.intent.compare and q.intent.quantity
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.text = "别的问题"  # type: ignore[misc]
    assert Question.of(q) is q  # a record passes through unchanged


@pytest.mark.parametrize(("question", "asks"), [
    ("秦创原到2026年技术合同成交额要达到多少？", {"quantity"}),
    ("这个行动计划什么时候到期？", {"when"}),
    ("科技成果转化由哪个部门牵头？", {"who"}),
    ("山西培育创新型企业有哪些措施？", {"list"}),
    ("出台秦创原三年行动计划是想达到什么目的？", {"purpose"}),
    ("两省在人才政策上有什么不同？", {"compare"}),
])
def test_the_intent_follows_the_way_staff_phrase_questions(question, asks):
    intent = dataclasses.asdict(Question.of(question).intent)
    assert {name for name, on in intent.items() if on} == asks


def test_key_terms_leave_framing_words_out_and_carry_the_spelt_out_forms():
    q = Question.of("困难企业的社保费有哪些具体措施？")
    words = [t.word for t in q.terms]
    assert "社保费" in words and not {"措施", "具体", "哪些"} & set(words)
    assert "社会保险费" in next(t for t in q.terms if t.word == "社保费").spellings
    # BM25 also searches the full form's words
    assert {"社会", "保险"} <= set(q.tokens)
    assert "社保" in q.content_terms or "社保费" in q.content_terms
    # rarer words weigh more
    weights = q.term_weights
    assert weights["社保费"] > weights["企业"]


def test_years_and_places_are_read_in_their_written_forms():
    assert years_in("二〇二五年的目标") == {2025}
    assert years_in("2024—2026年") == {2024, 2025, 2026}
    assert years_in("投资2026万元") == set()  # an amount, not a year
    assert Question.of("秦创原的目标").places == {"陕西"}
    assert Question.of("什么是湿地？").kinds == {"definition"}


def test_the_assistant_analyses_a_question_once_per_answer(assistant, monkeypatch):
    # retrieval, the reranker and the answerer read the same record: the costly part runs once
    seen: list[str] = []
    real = rag.question._content_terms
    monkeypatch.setattr(rag.question, "_content_terms", lambda text: seen.append(text) or real(text))
    answer = assistant.ask("秦创原到2026年技术合同成交额要达到多少？")
    assert not answer.abstained and "6000亿元" in answer.text
    assert seen == ["秦创原到2026年技术合同成交额要达到多少？"]


@pytest.mark.parametrize(("text", "term"), [
    ("什么是湿地？", "湿地"), ("产品质量安全指什么？", "产品质量安全"), ("《艾滋病防治条例》中的艾滋病是指什么", "艾滋病"),
    ("失业保险金是什么意思", "失业保险金"), ("什么叫“专精特新”企业？", "专精特新企业"), ("本法所称的湿地的含义", "湿地"),
    ("秦创原有哪些目标？", None), ("研发投入要达到多少？", None),
])
def test_the_term_a_definition_question_asks_about(text, term):
    assert defined_term(text) == term
    assert "意思" not in Question.of(text).content_terms  # the way of asking is no subject the evidence must hold
