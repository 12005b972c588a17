"""The answer-or-refuse decision: a logistic model over retrieval and reading signals, fitted on dev data."""

from __future__ import annotations

import json

import pytest

from rag.abstain import FEATURES, WEIGHTS, AbstainModel, figures, fit


def test_the_shipped_model_is_fitted_on_dev_data_over_every_feature():
    model = AbstainModel.load()
    assert model.features == FEATURES and len(model.coef) == len(FEATURES) and 0 < model.threshold < 1
    sets = model.fitted_on["sets"]
    assert {"qa", "ncp_policy_qa", "legal_dc"} <= set(sets)  # dev halves only: never the staff test set
    assert "staff" not in sets or sets["staff"]["dev_answerable"] + sets["staff"]["dev_unanswerable"] == 0
    assert sum(s["dev_unanswerable"] for s in sets.values()) >= 30
    raw = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    assert raw["fitted_on"]["max_false_abstain"] <= 0.05


def test_fit_keeps_false_refusals_under_the_bound_it_is_given():
    # answerable rows: the top clause matches well; unanswerable: it does not (with overlap, as in real data)
    rows = []
    for i in range(60):
        good = {f: 0.0 for f in FEATURES} | {"sentence_top": 0.4 + (i % 10) / 20, "dense_top": 0.8}
        bad = {f: 0.0 for f in FEATURES} | {"sentence_top": 0.1 + (i % 10) / 20, "dense_top": 0.75,
                                           "missing_share": 0.5}
        rows += [(good, True), (bad, False)]
    model = fit(rows, max_false_abstain=0.05)
    refused_good = sum(not model.answers(r) for r, ok in rows if ok)
    refused_bad = sum(not model.answers(r) for r, ok in rows if not ok)
    assert refused_good <= 3 and refused_bad > 30
    assert model.coef[FEATURES.index("missing_share")] < 0 < model.coef[FEATURES.index("sentence_top")]


def test_figures_are_compared_by_value_in_any_written_form():
    assert figures("3.2万家") == figures("32000家") == {32000.0}
    assert figures("百分之六十五") == figures("65%") == {65.0}
    assert figures("二〇二六年") == {2026.0}
    assert figures("第3条和2026年", named_only=True) == {2026.0}  # a single digit is no figure a question names


@pytest.mark.parametrize(("question", "answered"), [
    ("秦创原到2026年技术合同成交额要达到多少？", True),
    ("陕西到二〇二六年技术合同成交额打算突破多少亿？", True),       # numbers in words
    ("山西怎么培育创新型企业？", True),
    ("秦创原到2035年技术合同成交额要达到多少？", False),           # a year no document speaks of
    ("河南省对新引进的博士给多少安家费？", False),                  # a province and a subsidy not in the corpus
    ("秦创原三年行动计划对外卖骑手的社保补贴标准是多少？", False),
])
def test_the_assistant_answers_or_refuses_on_the_seeds(assistant, question, answered):
    answer = assistant.ask(question)
    assert answer.abstained is not answered, (answer.confidence, answer.text)
    assert answer.confidence is not None and (answer.confidence >= AbstainModel.load().threshold) is answered


def test_fitting_writes_weights_that_the_answerer_then_uses(tmp_path, seed_index_dir, embedder):
    from eval.abstain_fit import fit_abstain
    from rag.config import Settings

    out = tmp_path / "abstain.json"
    report = fit_abstain(Settings(data_dir=tmp_path / "data"), tmp_path / "no-bench", out=out, sources=("qa",),
                         progress=lambda message: None)
    model = AbstainModel.load(out)
    assert model.fitted_on["sets"]["qa"]["dev_unanswerable"] >= 5  # eval/qa.jsonl's dev half only
    curve = report["curves"]["qa.test"]
    assert any(point["fitted"] for point in curve) and all(0 <= p["false_abstain_rate"] <= 1 for p in curve)
    # an assistant given these weights decides with them
    from rag.assistant import Assistant

    assistant = Assistant(Settings(data_dir=seed_index_dir), embedder=embedder)
    assistant.abstain_model = model
    answer = assistant.ask("秦创原到2026年技术合同成交额要达到多少？")
    assert answer.confidence == pytest.approx(model.probability(answer.signals))
    assert answer.abstained is (answer.confidence < model.threshold)
