"""The `policy-rag eval` command (only click and the stdlib at the top, so `policy-rag --help` stays instant)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

EVAL_DIR = Path(__file__).resolve().parent
BENCH_NAMES = ("legal_dc", "ncp_policy_qa")


@click.command("eval")
@click.option("--qa", "qa_path", type=click.Path(path_type=Path, dir_okay=False), default=EVAL_DIR / "qa.jsonl",
              show_default="eval/qa.jsonl", help="QA set (JSONL, the fields of eval/qa.jsonl).")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Folder ingested before the questions (default: the corpus/ folder beside the QA file if there "
                   "is one, else corpus/, env POLICY_RAG_CORPUS_DIR).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where results.jsonl, summary.json and report.md go (default <data dir>/eval-runs/<time>).")
@click.option("--answerer", type=click.Choice(["extractive", "llm"]), default=None,
              help="Answerer to evaluate (default: the configured one, extractive).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR); corpus/ is ingested into it first.")
@click.option("--compare", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="The --out folder of an earlier run: report what changed, question by question.")
@click.option("--baseline", type=click.Choice(["naive"]), default=None,
              help="Also run the naive LangChain recipe (500-char chunks + Chroma, top chunk as answer).")
@click.option("--bench", type=click.Choice(BENCH_NAMES), default=None,
              help="Score passage retrieval on a public benchmark instead of the QA set.")
@click.option("--bench-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder holding the benchmarks (default ../shared/bench).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions.")
@click.option("--max-docs", type=click.IntRange(min=1), default=None,
              help="Bench only: index the gold documents of the questions plus distractors up to N documents "
                   "(embedding a whole bench corpus takes long); the reference is recomputed on the same corpus.")
@click.option("--abstain-split", is_flag=True,
              help="Bench only: index a fixed half of the corpus (reposts kept together) and score refusals: "
                   "questions answered only in the other half must be refused, the others answered.")
@click.option("--fit-abstain", is_flag=True,
              help="Fit the answer-or-refuse model on the dev halves (eval/qa.jsonl, ncp_policy_qa over half its "
                   "corpus, legal_dc), write rag/data/abstain.json, print the trade-off on every half.")
@click.option("--metadata", is_flag=True,
              help="Score the metadata read at ingest (文号, issuer, dates, validity, repeals) against a hand-checked "
                   "gold file: per-field precision and recall on its dev and test halves, and every miss.")
@click.option("--targets", "targets_eval", is_flag=True,
              help="Score the targets table (指标) against a hand-checked gold list: precision and recall of the "
                   "values, and how often clause label, year and indicator agree, on its dev and test halves.")
@click.option("--gold", "gold_path", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="--metadata/--targets only: the gold file (default eval/metadata_gold.jsonl, "
                   "eval/targets_gold.jsonl).")
@click.option("--json", "as_json", is_flag=True, help="--metadata/--targets only: print the summary as JSON.")
@click.option("--ocr", "ocr_bench", is_flag=True,
              help="OCR benchmark: image-only copies of corpus-ext PDF pages and the seed documents (rotated, noised, "
                   "stamped) read back; prints character and clause-label accuracy and seconds per page.")
@click.option("--thresholds", type=click.Path(path_type=Path, dir_okay=False), default=EVAL_DIR / "thresholds.toml",
              show_default="eval/thresholds.toml", help="Gate: exit 1 when a metric is worse than its threshold.")
def eval_command(qa_path: Path, corpus_dir: Path | None, out_dir: Path | None, answerer: str | None, data_dir: Path | None,
                 compare: Path | None, baseline: str | None, bench: str | None, bench_dir: Path | None,
                 limit: int | None, max_docs: int | None, abstain_split: bool, fit_abstain: bool,
                 metadata: bool, targets_eval: bool, gold_path: Path | None, as_json: bool, ocr_bench: bool,
                 thresholds: Path) -> None:
    """Answer and score every QA item (exit 1 when a metric is below eval/thresholds.toml)."""
    from rag.cli import settings_from
    from rag.errors import PolicyRagError

    if corpus_dir is None and (qa_path.parent / "corpus").is_dir() and not bench:
        corpus_dir = qa_path.parent / "corpus"  # eval/staff/qa.jsonl asks about eval/staff/corpus/
    settings = settings_from(data_dir=data_dir, answerer=answerer, corpus_dir=corpus_dir)
    try:
        if metadata:
            passed = _run_metadata(gold_path, bench_dir, thresholds, as_json)
        elif targets_eval:
            passed = _run_targets(gold_path, bench_dir, thresholds, as_json)
        elif ocr_bench:
            from eval.ocr_bench import main as run_ocr_bench

            result = run_ocr_bench(progress=lambda m: click.echo(m, err=True))
            click.echo(json.dumps(result, ensure_ascii=False))
            passed = True
        elif fit_abstain:
            from eval.abstain_fit import fit_abstain as fit, print_report
            from eval.bench import DEFAULT_BENCH_DIR

            print_report(fit(settings, bench_dir or DEFAULT_BENCH_DIR, progress=lambda m: click.echo(m, err=True)),
                         click.echo)
            passed = True
        elif abstain_split:
            if not bench:
                raise click.UsageError("--abstain-split goes with --bench NAME")
            passed = _run_abstain_split(settings, bench, bench_dir, out_dir, limit)
        elif bench:
            passed = _run_bench(settings, bench, bench_dir, out_dir, limit, max_docs, thresholds)
        else:
            passed = _run_qa(settings, qa_path, out_dir, answerer, compare, baseline, limit, thresholds)
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    sys.exit(0 if passed else 1)


def _run_qa(settings, qa_path, out_dir, answerer, compare, baseline, limit, thresholds) -> bool:
    from eval.harness import run_eval
    from eval.report import metrics_table

    summary = run_eval(settings, qa_path, out_dir, answerer, compare, baseline=baseline, thresholds=thresholds,
                       limit=limit, progress=_progress("eval"))
    rows = [("policy-rag", summary.metrics)]
    rows += [(f"policy-rag, {split} half (n={m['n']})", m) for split, m in summary.by_split.items()]
    if summary.baseline:
        rows.append((f"baseline: {summary.baseline['name']}", summary.baseline["metrics"]))
    click.echo(metrics_table(rows))
    for notice in summary.notices:
        click.echo(f"注意：{notice}", err=True)
    if summary.compare:
        c = summary.compare
        click.echo(f"since {c['dir']}: {len(c['fixed'])} fixed, {len(c['broken'])} broken, {len(c['changed'])} changed")
    click.echo(f"{len(summary.failing)} of {summary.n} questions fail a check; report: {Path(summary.out_dir) / 'report.md'}")
    _echo_gate(summary.gate, bool(summary.thresholds))
    return summary.passed


def _run_bench(settings, name, bench_dir, out_dir, limit, max_docs, thresholds) -> bool:
    import time

    from eval.bench import ANSWER_METRICS, DEFAULT_BENCH_DIR, run_bench
    from eval.harness import load_thresholds
    from eval.report import metrics_table

    out_dir = out_dir or Path(settings.data_dir) / "eval-runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = run_bench(settings, name, out_dir, bench_dir=bench_dir or DEFAULT_BENCH_DIR, limit=limit,
                        max_docs=max_docs, thresholds=load_thresholds(thresholds, f"bench.{name}"), progress=_progress(name))
    rows = list(summary.metrics.items()) + [("README reference (all questions, full corpus)", summary.readme_reference)]
    click.echo(f"{name}: {summary.n} questions, {summary.corpus_docs} documents (ingest {summary.ingest_seconds:.0f} s, questions {summary.ask_seconds:.0f} s)")
    click.echo(metrics_table(rows, ["hit_at_1", "hit_at_5", "hit_at_10", "mrr"]))
    click.echo(metrics_table([("answers", summary.answers)], list(ANSWER_METRICS)))
    click.echo(f"report: {Path(summary.out_dir) / 'report.md'}")
    _echo_gate(summary.gate, bool(summary.thresholds))
    return summary.passed


def _run_metadata(gold_path, bench_dir, thresholds, as_json) -> bool:
    import json

    from eval.bench import DEFAULT_BENCH_DIR
    from eval.harness import load_thresholds
    from eval.metadata_eval import GOLD, METRICS, evaluate, load_gold, print_report
    from eval.metrics import check_thresholds

    shared = (bench_dir or DEFAULT_BENCH_DIR).parent  # the gold names files under ../shared (bench/, corpus-ext/)
    report = evaluate(load_gold(gold_path or GOLD), shared)
    limits = load_thresholds(thresholds, "metadata", known=METRICS)
    gate = check_thresholds(report.metrics(), limits)
    if as_json:
        click.echo(json.dumps(report.to_dict() | {"gate": gate}, ensure_ascii=False, indent=1))
    else:
        print_report(report, click.echo)
        _echo_gate(gate, bool(limits))
    return not gate


def _run_targets(gold_path, bench_dir, thresholds, as_json) -> bool:
    import json

    from eval.bench import DEFAULT_BENCH_DIR
    from eval.harness import load_thresholds
    from eval.metrics import check_thresholds
    from eval.targets_eval import GOLD, METRICS, evaluate, load_gold, print_report

    report = evaluate(load_gold(gold_path or GOLD), (bench_dir or DEFAULT_BENCH_DIR).parent)
    limits = load_thresholds(thresholds, "targets", known=METRICS)
    gate = check_thresholds(report.metrics(), limits)
    if as_json:
        click.echo(json.dumps(report.to_dict() | {"gate": gate}, ensure_ascii=False, indent=1))
    else:
        print_report(report, click.echo)
        _echo_gate(gate, bool(limits))
    return not gate


def _run_abstain_split(settings, name, bench_dir, out_dir, limit) -> bool:
    import time

    from eval.bench import DEFAULT_BENCH_DIR, run_abstain_split

    out_dir = out_dir or Path(settings.data_dir) / "eval-runs" / f"{name}-abstain-{time.strftime('%Y%m%d-%H%M%S')}"
    s = run_abstain_split(settings, name, out_dir, bench_dir=bench_dir or DEFAULT_BENCH_DIR, limit=limit)
    click.echo(f"{name}, half of the corpus indexed ({s['documents_indexed']} of {s['documents']} documents): "
               f"abstain recall {s['abstain_recall']:.3f} over {s['unanswerable']} questions answered only in the "
               f"other half, false abstain {s['false_abstain_rate']:.3f} over {s['answerable']}; {out_dir}")
    return True


def _echo_gate(gate: list[str], has_thresholds: bool) -> None:
    if not has_thresholds:
        click.echo("gate: no thresholds")
    elif not gate:
        click.echo("gate: passed")
    else:
        click.echo("gate: FAILED\n" + "\n".join(f"  {g}" for g in gate))


def _progress(label: str):
    """A tqdm bar on an interactive stderr, else nothing."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="q", file=sys.stderr, desc=label, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update
