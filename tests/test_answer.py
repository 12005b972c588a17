"""Answers over a real index of the seeds: figures, labels, lists, comparisons, abstention, the ask contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.question import Question

from .conftest import QCY, SX, policy_record

ASK_KEYS = {"question", "answer", "abstained", "citations", "retrieved", "unsupported", "timings_ms"}
CITATION_KEYS = {"n", "clause_id", "doc_id", "title", "label", "headings", "text", "quote", "source", "page", "meta",
                 "start", "end", "memo"}


def test_technology_contract_target_is_answered_with_figure_and_label(assistant):
    answer = assistant.ask("秦创原到2026年技术合同成交额要达到多少？")
    assert not answer.abstained
    assert "6000亿元" in answer.text
    cited = {(c.clause.doc_id, c.clause.label) for c in answer.citations}
    assert cited & {(QCY, "一、"), (QCY, "二、（一）3.")}
    assert re.search(r"\[1\]", answer.text) and not answer.unsupported
    memo = answer.citations[0].memo
    assert re.match(r"《秦创原创新驱动平台建设三年行动计划（2024—2026年）》(一、|二、（一）3\.)：“[^”]*6000亿元", memo), memo


@pytest.mark.parametrize(
    ("question", "figure", "doc", "label"),
    [
        ("陕西计划新培养引进多少高层次人才？", "1000名", QCY, "二、（五）15."),
        ("秦创原要布局建设多少个省级概念验证中心和中试基地？", "30个", QCY, "二、（一）3."),
        ("山西的“百千”培育计划要新增多少家高新技术企业？", "千家", SX, "二、（二）1.三是"),
    ],
)
def test_numeric_questions(assistant, question, figure, doc, label):
    answer = assistant.ask(question)
    assert figure in answer.text, answer.text
    assert (doc, label) in {(c.clause.doc_id, c.clause.label) for c in answer.citations}


def test_purpose_question_is_answered_from_the_preamble(assistant):
    # the preamble (为…，现制定本行动计划) states the purpose; 二、（五）16. shares 三年行动计划 and 达到500家
    answer = assistant.ask("秦创原三年行动计划是为了达到什么目的？")  # 达到 is no figure here
    assert not answer.abstained
    assert "提质升级" in answer.text
    assert answer.citations[0].clause.doc_id == QCY and answer.citations[0].clause.label == ""


def test_list_question_lists_the_items_each_cited(assistant):
    answer = assistant.ask("秦创原在优化科创生态环境方面有哪些重点任务？")
    labels = [c.clause.label for c in answer.citations]
    assert {"二、（五）14.", "二、（五）15.", "二、（五）16."} <= set(labels), answer.text
    assert len(answer.text.splitlines()) >= 3


def test_question_over_two_documents_cites_both(assistant, monkeypatch):
    # a comparison searches each of its two documents again: with the question embedded once
    real, embedded = assistant.retriever.embedder, []

    class Counting:
        name, dim = real.name, real.dim

        def embed_query(self, text):
            embedded.append(text)
            return real.embed_query(text)

    monkeypatch.setattr(assistant.retriever, "embedder", Counting())
    answer = assistant.ask("山西和陕西在科技金融方面分别有什么举措？")
    assert {c.clause.doc_id for c in answer.citations} == {QCY, SX}, answer.text
    assert embedded == ["山西和陕西在科技金融方面分别有什么举措？"]


@pytest.mark.parametrize(
    "question",
    ["上海市对人工智能企业的税收优惠是什么？", "秦创原2030年的技术合同成交额目标是多少？", "山西省对博士后进站有多少生活补贴？"],
)
def test_off_corpus_questions_abstain(assistant, question):
    answer = assistant.ask(question)
    assert answer.abstained, answer.text
    assert answer.citations == [] and "没有" in answer.text


def test_ask_json_contract(seed_index_dir):
    result = CliRunner().invoke(main, ["ask", "秦创原到2026年技术合同成交额要达到多少？", "--json",
                                       "--data-dir", str(seed_index_dir)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert ASK_KEYS <= set(out)
    assert set(out["timings_ms"]) == {"retrieve", "answer", "total"}
    assert set(out["citations"][0]) == CITATION_KEYS
    assert [r["rank"] for r in out["retrieved"]] == list(range(1, len(out["retrieved"]) + 1))
    assert set(out["retrieved"][0]) == {"rank", "clause_id", "doc_id", "title", "label", "text", "score"}


def test_ask_within_one_document(assistant):
    answer = assistant.ask("有哪些科技金融措施？", doc="山西")
    assert {h.clause.doc_id for h in answer.retrieved} == {SX}


# ---- abbreviations staff write (社保, 个税) for names the documents spell out ---------------------------
def _policy_sentence(doc_id: str, needle: str) -> str:
    return next(s for s in re.split(r"[。\n]", policy_record(doc_id)["text"]) if needle in s)


def test_an_abbreviation_finds_the_full_name_in_real_text():
    from rag.abstain import missing_share
    from rag.citations import fold
    from rag.tokens import spellings, tokenize

    # 2010 government work report: "实施困难企业缓缴社会保险费或降低部分费率…" (it never writes 社保)
    text = _policy_sentence("gwr-029", "缓缴社会保险费")
    question = "困难企业的社保费能缓缴吗？"
    clause_tokens = set(tokenize(text))
    assert set(Question.of(question).tokens) & clause_tokens > set(tokenize(question)) & clause_tokens
    assert {"社会", "保险", "社会保险"} <= set(Question.of(question).tokens) - set(tokenize(question))
    assert "社会保险费" in spellings("社保费")
    # the abstain check: the question's subject 社保 is in this evidence, spelt out
    terms = Question.of(question).content_terms
    assert any("社保" in t for t in terms)
    assert missing_share([t for t in terms if "社保" in t], fold(text).lower()) == 0.0
    assert list(Question.of("社会保险费能缓缴吗").tokens) == tokenize("社会保险费能缓缴吗")  # nothing to expand


def test_the_rerank_and_answerer_count_an_abbreviated_key_term_spelt_out(monkeypatch):
    from dataclasses import replace

    import rag.question
    from rag.abstain import term_coverage
    from rag.citations import fold
    from rag.sentences import sentence_match

    text = _policy_sentence("gwr-029", "缓缴社会保险费")  # never writes 社保
    lowered = fold(text).lower()
    question = "困难企业的社保费能缓缴吗？"
    spelt = Question.of(question)
    abbreviated = replace(spelt, terms=tuple(t for t in spelt.terms if t.word in ("社保", "社保费")))
    assert term_coverage(abbreviated, lowered) == 1.0
    with_full_forms = term_coverage(spelt, lowered), sentence_match(question, text)
    monkeypatch.setattr(rag.question, "spellings", lambda term: (term,))
    as_written = Question.of(question)  # the same terms, without their spelt-out forms
    assert [t.word for t in as_written.terms] == [t.word for t in spelt.terms]
    assert term_coverage(as_written, lowered) < with_full_forms[0] - 0.3
    assert sentence_match(question, text) < with_full_forms[1] - 0.2


NCP_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "ncp_policy_qa" / "corpus.jsonl"


def test_a_national_notice_addressed_to_the_bingtuan_is_about_no_province():
    from rag.assistant import document_places
    from rag.question import places_in

    if not NCP_CORPUS.exists():
        pytest.skip(f"{NCP_CORPUS} not found (../shared/bench)")
    texts = [json.loads(line)["text"] for line in NCP_CORPUS.read_text(encoding="utf-8").splitlines()]
    # its opening clause (the 导语 before 一、) is what the assistant reads
    national = next(t for t in texts if t.startswith("关于阶段性减免企业社会保险费的通知")).split("一、")[0]
    assert "新疆生产建设兵团" in national and places_in(national) == {"新疆"}
    assert document_places("关于阶段性减免企业社会保险费的通知", national) == set()
    hunan = next(t for t in texts if t.startswith("湖南省医疗保障局"))
    assert document_places("湖南省医疗保障局", hunan[:300]) == {"湖南"}
    assert document_places("秦创原创新驱动平台建设三年行动计划", "") == {"陕西"}


