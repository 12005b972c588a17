"""`policy-rag eval --fit-abstain`: fit the answer-or-refuse model (rag/abstain.py) on dev data only, and print
its trade-off between abstain recall and false abstain on the test halves.

Rows are (signals of a question, does the index answer it):
- eval/qa.jsonl over corpus/ — its dev half to fit, its test half to report;
- ncp_policy_qa over a fixed half of its corpus (`--abstain-split`): questions answered only in the other half
  are unanswerable — questions split dev/test by a hash of their id;
- legal_dc over its gold documents and as many distractors (every question is answerable) — split the same way;
- eval/staff/qa.jsonl over eval/staff/corpus/ — test only, never fitted on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.abstain import FEATURES, WEIGHTS, AbstainModel, fit
from rag.config import Settings

EVAL_DIR = Path(__file__).resolve().parent
LEGAL_DOCS = 220
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
Row = tuple[dict[str, float], bool]
# answers everything: the rows are collected with no refusal standing in front of the signals
ALWAYS = AbstainModel(FEATURES, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0, 0.0, {})


def split_of(item_id: str) -> str:
    """dev or test, by a hash of the id (for sets that carry no split of their own)."""
    return "dev" if int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def _assistant(settings: Settings, embedder=None):
    from rag.assistant import Assistant

    assistant = Assistant(settings, embedder=embedder)
    assistant.abstain_model = ALWAYS
    return assistant


def _rows(assistant, questions: Iterable[tuple[str, str, bool]]) -> dict[str, list[Row]]:
    """(half, question, answerable) → the rows of each half."""
    out: dict[str, list[Row]] = {"dev": [], "test": []}
    for half, question, answerable in questions:
        answer = assistant.ask(question)
        if answer.signals:  # no hit at all: refused whatever the model says
            out[half].append((answer.signals, answerable))
    return out


def qa_rows(settings: Settings, qa_path: Path, corpus_dir: Path, embedder) -> dict[str, list[Row]]:
    from eval.harness import ensure_index, load_qa

    own = settings.model_copy(update={"data_dir": Path(settings.data_dir) / "fit" / qa_path.parent.name,
                                      "corpus_dir": corpus_dir})
    ensure_index(own, embedder)
    return _rows(_assistant(own, embedder), ((item.get("split") or split_of(item["id"]), item["question"],
                                              item["type"] != "unanswerable") for item in load_qa(qa_path)))


def ncp_rows(settings: Settings, bench_dir: Path, embedder) -> dict[str, list[Row]]:
    from eval.bench import bench_path, index_half, load_items, read_jsonl

    name = "ncp_policy_qa"
    items = load_items(name, bench_dir)
    own, half = index_half(settings, name, bench_dir, items, read_jsonl(bench_path(bench_dir, name) / "corpus.jsonl"),
                           embedder)
    return _rows(_assistant(own, embedder),
                 ((split_of(i.id), i.question, any(d in half for d, _, _ in i.spans)) for i in items))


def legal_rows(settings: Settings, bench_dir: Path, embedder) -> dict[str, list[Row]]:
    from eval.bench import bench_path, identical_docs, load_items, prepare_index, read_jsonl, select_documents

    name = "legal_dc"
    items = load_items(name, bench_dir, 200)
    records = read_jsonl(bench_path(bench_dir, name) / "corpus.jsonl")
    chosen = select_documents(records, items, LEGAL_DOCS, identical_docs(name, bench_dir))
    own = prepare_index(settings, name, bench_dir, embedder, chosen)
    return _rows(_assistant(own, embedder), ((split_of(i.id), i.question, True) for i in items))


def tradeoff(model: AbstainModel, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Abstain recall and false abstain at the fitted threshold and at fixed ones."""
    out = []
    for threshold in sorted({model.threshold, *THRESHOLDS}):
        p = [(model.probability(values), answerable) for values, answerable in rows]
        refused_bad = [q < threshold for q, ok in p if not ok]
        refused_good = [q < threshold for q, ok in p if ok]
        out.append({"threshold": round(threshold, 3), "fitted": threshold == model.threshold,
                    "abstain_recall": sum(refused_bad) / len(refused_bad) if refused_bad else None,
                    "false_abstain_rate": sum(refused_good) / len(refused_good) if refused_good else None,
                    "unanswerable": len(refused_bad), "answerable": len(refused_good)})
    return out


def fit_abstain(settings: Settings, bench_dir: Path, *, out: Path = WEIGHTS, max_false_abstain: float = 0.03,
                sources: Sequence[str] = ("qa", "ncp_policy_qa", "legal_dc", "staff"),
                progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Collect rows, fit on every dev half, write the weights to `out`, return the trade-off on every half."""
    from rag.embedders import settings_embedder

    embedder = settings_embedder(settings)  # one for every source
    collect = {
        "qa": lambda: qa_rows(settings, EVAL_DIR / "qa.jsonl", Path(settings.corpus_dir), embedder),
        "ncp_policy_qa": lambda: ncp_rows(settings, bench_dir, embedder),
        "legal_dc": lambda: legal_rows(settings, bench_dir, embedder),
        "staff": lambda: qa_rows(settings, EVAL_DIR / "staff" / "qa.jsonl", EVAL_DIR / "staff" / "corpus", embedder),
    }
    halves: dict[str, dict[str, list[Row]]] = {}
    for source in sources:
        progress(f"collecting signals: {source}")
        halves[source] = collect[source]()
    rows_file = Path(settings.data_dir) / "fit" / "rows.jsonl"  # for a look at the signals afterwards
    rows_file.parent.mkdir(parents=True, exist_ok=True)
    with rows_file.open("w", encoding="utf-8") as fh:
        for source, h in halves.items():
            for half, rows in h.items():
                for values, answerable in rows:
                    fh.write(json.dumps({"set": source, "half": half, "answerable": answerable, **values}) + "\n")
    dev = [row for source in halves.values() for row in source["dev"]]
    model = fit(dev, max_false_abstain=max_false_abstain, fitted_on={
        "sets": {s: {"dev_answerable": sum(ok for _, ok in h["dev"]), "dev_unanswerable": sum(not ok for _, ok in h["dev"])}
                 for s, h in halves.items()},
        "max_false_abstain": max_false_abstain})
    model.save(out)
    report = {"weights": str(out), "threshold": model.threshold,
              "coef": dict(zip(model.features, (round(c, 3) for c in model.coef), strict=True)),
              "curves": {f"{s}.{half}": tradeoff(model, rows) for s, h in halves.items() for half, rows in h.items()
                         if rows}}
    return report


def print_report(report: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    echo(f"weights → {report['weights']} (threshold {report['threshold']:.3f})")
    echo("coefficients: " + json.dumps(report["coef"], ensure_ascii=False))
    echo("| set | threshold | abstain recall | false abstain | unanswerable | answerable |")
    echo("|---|---:|---:|---:|---:|---:|")
    for name, curve in report["curves"].items():
        for point in curve:
            mark = " (fitted)" if point["fitted"] else ""
            fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
            echo(f"| {name} | {point['threshold']:.3f}{mark} | {fmt(point['abstain_recall'])} | "
                 f"{fmt(point['false_abstain_rate'])} | {point['unanswerable']} | {point['answerable']} |")
