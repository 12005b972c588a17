"""report.md: the metric table, every failing question (expected vs got) and changes against an earlier run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import LOWER_IS_BETTER, expected_labels
from eval.runs import Run, Summary

COLUMNS = {
    "hit_at_1": "hit@1", "hit_at_5": "hit@5", "hit_at_10": "hit@10", "mrr": "MRR",
    "fact_accuracy": "fact acc", "citation_hit": "citation hit", "label_accuracy": "label acc",
    "abstain_recall": "abstain recall", "false_abstain_rate": "false abstain",
    "latency_p50_ms": "p50 ms", "latency_p95_ms": "p95 ms",
}
TYPE_COLUMNS = ("hit_at_5", "mrr", "fact_accuracy", "citation_hit", "label_accuracy",
                "abstain_recall", "false_abstain_rate", "latency_p50_ms")
SNIPPET = 160


def fmt(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if name.endswith(("_ms", "_chars")) else f"{value:.3f}"


def metrics_table(rows: Sequence[tuple[str, Mapping[str, float | None]]], columns: Sequence[str] | None = None,
                  first: str = "system") -> str:
    """A Markdown table: one row per (name, metrics), one column per metric."""
    columns = list(columns or COLUMNS)
    lines = [f"| {first} | " + " | ".join(COLUMNS.get(c, c) for c in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, metrics in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(c, metrics.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def threshold_row(thresholds: Mapping[str, float]) -> tuple[str, dict[str, float]]:
    return ("gate (min; max for false abstain, latency)", dict(thresholds))


def render_report(summary: Summary, items: Sequence[Mapping[str, Any]], run: Run,
                  baseline: Run | None = None, previous: Run | None = None) -> str:
    parts = [f"# policy-rag eval: {Path(summary.qa).name}",
             f"{summary.n} questions, answerer `{summary.answerer}`, index `{summary.data_dir}`, "
             f"{summary.seconds:.1f} s.", _gate_line(summary)]
    rows = [("policy-rag", run.metrics)]
    if baseline is not None:
        rows.append((f"baseline: {baseline.name}", baseline.metrics))
    if summary.thresholds:
        rows.append(threshold_row(summary.thresholds))
    parts += ["## Metrics", metrics_table(rows)]
    if summary.baseline:
        lost = [COLUMNS[m] for m, won in summary.baseline["beaten"].items() if won is False]
        parts.append("Beats the baseline on every metric." if not lost else
                     "Does not beat the baseline on: " + ", ".join(lost) + ".")
    if summary.by_split:
        parts += ["## By split (tune on dev, report test)",
                  metrics_table([(f"{s} (n={m['n']})", m) for s, m in summary.by_split.items()], first="split")]
    parts += ["## By question type",
              metrics_table([(f"{t} (n={m['n']})", m) for t, m in run.by_type.items()], TYPE_COLUMNS, "type")]
    if previous is not None and summary.compare:
        parts += _compare_section(summary.compare, items, run, previous)
    parts += _failing_section(items, run)
    parts += _notes()
    return "\n\n".join(parts) + "\n"


def write_report(path: Path, summary: Summary, items: Sequence[Mapping[str, Any]], run: Run,
                 baseline: Run | None = None, previous: Run | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(summary, items, run, baseline, previous), encoding="utf-8")


def _gate_line(summary: Summary) -> str:
    if not summary.thresholds:
        return "Gate: no thresholds."
    if summary.passed:
        return "Gate: **passed** (every metric within eval/thresholds.toml)."
    return "Gate: **FAILED**\n" + "\n".join(f"- {g}" for g in summary.gate)


def _compare_section(compare: Mapping[str, Any], items: Sequence[Mapping[str, Any]], run: Run,
                     previous: Run) -> list[str]:
    before, after = compare["metrics"], run.metrics
    lines = ["| metric | before | now | change |", "|---|---:|---:|---:|"]
    for name, label in COLUMNS.items():
        a, b = before.get(name), after.get(name)
        delta = ""
        if a is not None and b is not None:
            delta = f"{b - a:+.0f}" if name.endswith("_ms") else f"{b - a:+.3f}"
            worse = b > a if name in LOWER_IS_BETTER else b < a
            delta += " ⚠" if worse else ""
        lines.append(f"| {label} | {fmt(name, a)} | {fmt(name, b)} | {delta} |")
    out = [f"## Changes since `{compare['dir']}`", "\n".join(lines)]
    by_id = {i["id"]: i for i in items}
    for title, ids in (("Broken (passed before, fails now)", compare["broken"]),
                       ("Fixed (failed before, passes now)", compare["fixed"]),
                       ("Answered differently (same verdict)", compare["changed"])):
        out.append(f"### {title}: {len(ids)}")
        for item_id in ids:
            item, now, then = by_id[item_id], run.score(item_id), previous.score(item_id)
            out.append("\n".join([
                f"**{item_id}** ({item['type']}) {item['question']}",
                f"- before: {_verdict(then)} {_got(previous.result(item_id))}",
                f"- now: {_verdict(now)} {_got(run.result(item_id))}",
            ]))
    return out


def _failing_section(items: Sequence[Mapping[str, Any]], run: Run) -> list[str]:
    failing = [s for s in run.scores if not s.passed]
    out = [f"## Failing questions: {len(failing)}"]
    by_id = {i["id"]: i for i in items}
    for score in failing:
        item, result = by_id[score.id], run.result(score.id)
        expected = (f"- expected: {item.get('answer', '')}" if score.answerable
                    else "- expected: abstain (not in the corpus)")
        lines = [f"### {score.id} ({score.type}): {', '.join(score.problems())}",
                 f"- question: {item['question']}", expected]
        if score.answerable:
            lines += [f"- must contain: {' / '.join(item['must_contain'])}",
                      f"- evidence: {' / '.join(item['evidence'])}",
                      f"- clause: {' | '.join(expected_labels(item)) or '（导语）'}",
                      f"- evidence rank: {score.rank or 'not in top 10'}"]
        lines.append(f"- got: {_got(result)}")
        top = [f"{r['rank']}. 《{r['title']}》{r['label'] or '（导语）'}" for r in result["retrieved"][:3]]
        lines.append(f"- retrieved: {'; '.join(top)}")
        out.append("\n".join(lines))
    return out


def _verdict(score) -> str:
    if score is None:
        return "(no result)"
    return "pass" if score.passed else "FAIL (" + ", ".join(score.problems()) + ")"


def _got(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "–"
    text = result["answer"].replace("\n", " ")
    text = text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")
    cited = "、".join(f"《{c['title']}》{c['label'] or '（导语）'}" for c in result["citations"]) or "none"
    return f"{'[abstained] ' if result['abstained'] else ''}{text} — cited: {cited}"


def _notes() -> list[str]:
    return ["## How this is scored",
            "- hit@k / MRR: the first retrieved clause whose text contains an evidence string (whitespace and "
            "punctuation width ignored); a comparison needs evidence from both documents. Answerable items only.\n"
            "- fact: every must_contain string is in the answer and it did not abstain. citation: a cited clause "
            "contains the evidence. label: every expected label is exactly the label of a cited clause "
            "(a parent or child label does not count; a window ~N of the clause does).\n"
            "- abstain recall: share of unanswerable items abstained on; false abstain: share of answerable ones.\n"
            "- A question fails when its evidence is not in the top 5 or a fact/citation/label check fails, "
            "or (unanswerable) when it was answered."]
