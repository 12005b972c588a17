"""The eval harness: asks every QA item through `Assistant.ask`, scores it, writes results and the report.

    out_dir/results.jsonl   one line per item: {"id": …} + the `ask --json` object
    out_dir/summary.json    metrics (overall and per type), the gate, baseline and compare summaries
    out_dir/report.md       metric table, failing questions, changes against an earlier run
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import METRIC_NAMES, aggregate, check_thresholds, score_item
from eval.runs import Run, Summary
from rag.config import Settings
from rag.errors import PolicyRagError

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_QA = EVAL_DIR / "qa.jsonl"
DEFAULT_THRESHOLDS = EVAL_DIR / "thresholds.toml"
QA_FIELDS = ("id", "question", "type", "evidence", "must_contain", "clause")

Progress = Callable[[int, int], None]


# ---- inputs -------------------------------------------------------------------------------------
def load_qa(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """QA items of a JSONL file (the first `limit` if given); each must have the fields scoring reads."""
    path = Path(path)
    if not path.exists():
        raise PolicyRagError(f"{path}: no such QA file")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        missing = [f for f in QA_FIELDS if f not in item]
        if missing:
            raise PolicyRagError(f"{path}:{n}: QA item lacks {', '.join(missing)}")
        items.append(item)
    return items[:limit] if limit else items


def load_thresholds(path: Path, section: str = "qa", known: Sequence[str] = METRIC_NAMES) -> dict[str, float]:
    """The `[section]` table of a thresholds TOML file (dotted sections like bench.legal_dc allowed), whose
    metrics must be among `known`."""
    path = Path(path)
    if not path.exists():
        return {}
    table: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    for part in section.split("."):
        table = table.get(part, {})
    table = {k: v for k, v in table.items() if not isinstance(v, dict)}  # [qa.dev] inside [qa] is its own section
    unknown = [k for k in table if k not in known]
    if unknown:
        raise PolicyRagError(f"{path} [{section}]: unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return {k: float(v) for k, v in table.items()}


def ensure_index(settings: Settings, embedder) -> list[str]:
    """Ingest the corpus dir into the settings' data dir (incremental: unchanged files cost nothing).

    Returns one notice per file that failed to ingest.
    """
    from ingest.build import ingest

    report = ingest(settings, [Path(settings.corpus_dir)], embedder=embedder)
    return [f"ingest failed for {r.path}: {r.error}" for r in report.failed]


# ---- running --------------------------------------------------------------------------------------
def ask_all(assistant, items: Sequence[Mapping[str, Any]], answerer: str | None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every item through `Assistant.ask`, as results.jsonl lines."""
    if items:  # warm up jieba, Chroma and the embedder so the first question's latency is honest
        assistant.ask(items[0]["question"], answerer=answerer)
    results = []
    for n, item in enumerate(items, 1):
        answer = assistant.ask(item["question"], answerer=answerer)
        results.append({"id": item["id"], **answer.to_dict()})
        if progress:
            progress(n, len(items))
    return results


def split_metrics(items: Sequence[Mapping[str, Any]], run: Run) -> dict[str, dict[str, float | None]]:
    """Metrics of each half of a set whose items carry a `split` (dev: tune on it; test: report only)."""
    split_of = {item["id"]: item.get("split") for item in items}
    splits = sorted({s for s in split_of.values() if s})
    return {split: aggregate([s for s in run.scores if split_of.get(s.id) == split])
                   | {"n": sum(1 for s in run.scores if split_of.get(s.id) == split)} for split in splits}


def score_run(name: str, items: Sequence[Mapping[str, Any]], results: Sequence[dict[str, Any]],
              has_labels: bool = True) -> Run:
    """Score results (matched to items by id; items without a result are skipped)."""
    by_id = {r["id"]: r for r in results}
    scores = [score_item(item, by_id[item["id"]], has_labels=has_labels) for item in items if item["id"] in by_id]
    return Run(name, list(results), scores)


def read_run(out_dir: Path, items: Sequence[Mapping[str, Any]], name: str = "previous") -> Run:
    """An earlier run's results.jsonl, re-scored against the current items."""
    path = Path(out_dir) / "results.jsonl"
    if not path.exists():
        raise PolicyRagError(f"{path}: no results to compare with; pass the --out folder of an earlier run")
    results = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return score_run(name, items, results)


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def compare_runs(current: Run, previous: Run, previous_dir: Path) -> dict[str, Any]:
    """Ids of questions fixed, broken, or answered differently since `previous`."""
    fixed, broken, changed = [], [], []
    for score in current.scores:
        before = previous.score(score.id)
        if before is None:
            continue
        if before.passed and not score.passed:
            broken.append(score.id)
        elif score.passed and not before.passed:
            fixed.append(score.id)
        elif _answer_key(current.result(score.id)) != _answer_key(previous.result(score.id)):
            changed.append(score.id)
    return {"dir": str(previous_dir), "metrics": previous.metrics, "fixed": fixed, "broken": broken, "changed": changed}


def _answer_key(result: Mapping[str, Any] | None) -> tuple:
    if result is None:
        return ()
    return (result["answer"], result["abstained"], tuple(c["clause_id"] for c in result["citations"]))


def beaten(ours: Mapping[str, float | None], theirs: Mapping[str, float | None]) -> dict[str, bool | None]:
    """Per metric: does our value beat theirs (None when either is missing)."""
    from eval.metrics import LOWER_IS_BETTER

    out: dict[str, bool | None] = {}
    for name in METRIC_NAMES:
        a, b = ours.get(name), theirs.get(name)
        out[name] = None if a is None or b is None else (a < b if name in LOWER_IS_BETTER else a > b)
    return out


def run_eval(settings: Settings, qa_path: Path = DEFAULT_QA, out_dir: Path | None = None,
             answerer: str | None = None, compare: Path | None = None, *, baseline: str | None = None,
             thresholds: Path = DEFAULT_THRESHOLDS, limit: int | None = None,
             progress: Progress | None = None, embedder=None) -> Summary:
    """Ingest the corpus if needed, answer and score every QA item, write results, summary and report."""
    from eval.report import write_report
    from rag.assistant import Assistant

    started = time.perf_counter()
    items = load_qa(qa_path, limit)
    out_dir = Path(out_dir or default_out_dir(settings))
    previous = read_run(compare, items) if compare else None  # fail early on a bad --compare
    assistant = Assistant(settings, embedder=embedder)
    notices = ensure_index(settings, assistant.embedder)
    answerer = answerer or settings.answerer
    run = score_run("policy-rag", items, ask_all(assistant, items, answerer, progress))
    section = gate_section(qa_path)
    limits = load_thresholds(thresholds, section)
    by_split = split_metrics(items, run)
    gate = check_thresholds(run.metrics, limits)
    for split, metrics in by_split.items():  # [qa.dev], [qa.test]: each half has its own gate
        gate += [f"{split}: {g}" for g in check_thresholds(metrics, load_thresholds(thresholds, f"{section}.{split}"))]
    summary = Summary(
        qa=str(qa_path), answerer=answerer, data_dir=str(settings.data_dir), out_dir=str(out_dir), n=len(items),
        metrics=run.metrics, by_type=run.by_type, failing=[s.id for s in run.scores if not s.passed],
        gate=gate, thresholds=limits, notices=notices, by_split=by_split,
    )
    base_run = None
    if baseline:
        from eval.baseline import recipe_embedder, run_baseline

        base_results = run_baseline(baseline, settings, items, recipe_embedder(settings, assistant.embedder))
        base_run = score_run(baseline, items, base_results, has_labels=False)
        write_jsonl(out_dir / "baseline" / "results.jsonl", base_run.results)
        summary.baseline = {"name": baseline, "metrics": base_run.metrics, "by_type": base_run.by_type,
                            "beaten": beaten(run.metrics, base_run.metrics)}
    if previous is not None:
        summary.compare = compare_runs(run, previous, Path(compare))
    summary.seconds = time.perf_counter() - started
    write_jsonl(out_dir / "results.jsonl", run.results)
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    write_report(out_dir / "report.md", summary, items, run, base_run, previous)
    return summary


def gate_section(qa_path: Path) -> str:
    """The thresholds section of a QA set: its path under eval/ without the suffix and a final "qa", dotted
    (eval/qa.jsonl → qa, eval/staff/qa.jsonl → staff); a file elsewhere has its stem."""
    path = Path(qa_path).resolve()
    parts = list(path.relative_to(EVAL_DIR).with_suffix("").parts) if path.is_relative_to(EVAL_DIR) else [path.stem]
    if len(parts) > 1 and parts[-1] == "qa":
        parts.pop()
    return ".".join(parts)


def default_out_dir(settings: Settings) -> Path:
    """<data dir>/eval-runs/<timestamp>: runs stay beside the index they measured."""
    return Path(settings.data_dir) / "eval-runs" / time.strftime("%Y%m%d-%H%M%S")
