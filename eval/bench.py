"""Public benchmarks (../shared/bench/<name>): corpus conversion, ingest, passage-level retrieval scoring.

Each bench folder holds corpus.jsonl (id, title, text) and qa.jsonl with gold evidence as character
spans of the corpus text (see its README). We convert the corpus to a JSONL collection our loader
reads, ingest it into <data dir>/bench/<name>/ (re-used while unchanged) and ask every question
through `Assistant.ask`. A retrieved clause is a hit when it overlaps a gold span; for
ncp_policy_qa we also report the stricter "the clause contains the whole answer span".
Clause offsets are in the cleaned text, gold spans in the raw text: both are mapped onto the
`norm()` form (whitespace removed, width folded), where the two texts agree character for character.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import time
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.metrics import KS, norm
from rag.config import Settings
from rag.errors import PolicyRagError

BENCHES = ("legal_dc", "ncp_policy_qa")
DEFAULT_BENCH_DIR = Path(__file__).resolve().parents[2] / "shared" / "bench"
# The READMEs' character-bigram BM25 over fixed 300-character chunks (all questions), hit@1/5/10.
README_REFERENCE = {
    "legal_dc": {"hit_at_1": 0.585, "hit_at_5": 0.855, "hit_at_10": 0.925},
    "ncp_policy_qa": {"hit_at_1": 0.637, "hit_at_5": 0.860, "hit_at_10": 0.920},
}
REFERENCE_CHUNK = 300
HIT_KINDS = ("overlap", "contains", "lenient")  # the ways a retrieved passage can hit the gold (passage_ranks)
# ncp_policy_qa joins paragraphs with one space; a space beside Chinese text is a paragraph break.
_PARAGRAPH_SPACE = re.compile(r"(?<=[^\x00-\x7f]) +| +(?=[^\x00-\x7f])")


@dataclass(frozen=True, slots=True)
class BenchItem:
    """One bench question with its gold evidence as (doc_id, start, end) spans of the raw text."""

    id: str
    question: str
    spans: tuple[tuple[str, int, int], ...]
    answer: str = ""                       # ncp_policy_qa: the extractive answer span
    type: str = ""
    also: tuple[str, ...] = ()             # ncp_policy_qa: other documents holding the whole answer verbatim


# ---- corpus ---------------------------------------------------------------------------------------
def bench_path(bench_dir: Path, name: str) -> Path:
    if name not in BENCHES:
        raise PolicyRagError(f"unknown bench {name!r}; choose one of {', '.join(BENCHES)}")
    path = Path(bench_dir) / name
    if not (path / "corpus.jsonl").exists():
        raise PolicyRagError(f"{path}/corpus.jsonl not found; pass --bench-dir (the folder holding {name}/)")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def to_record(raw: dict[str, Any]) -> dict[str, str]:
    """A bench corpus line as a collection record our loader reads; offsets of `text` are kept.

    A text without line breaks (ncp_policy_qa) gets its paragraph spaces turned into newlines (one
    character for one, so gold offsets still hold), and an empty title becomes its headline.
    """
    text = raw["text"]
    if "\n" not in text:
        text = _PARAGRAPH_SPACE.sub(lambda m: "\n" * len(m.group()), text)
    title = raw.get("title") or text.split("\n", 1)[0][:80]
    return {"id": raw["id"], "title": title, "text": text}


def select_documents(records: Sequence[dict[str, Any]], items: Sequence[BenchItem], max_docs: int | None,
                     same: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The corpus, or (with `max_docs`) the gold documents of `items` plus distractors in corpus order.

    Gold documents always stay; distractors fill up to `max_docs`. Deterministic, so a re-run re-uses the index.
    """
    if not max_docs or max_docs >= len(records):
        return list(records)
    gold = {doc for item in items for doc, _, _ in item.spans}
    gold |= {twin for doc in list(gold) for twin in (same or {}).get(doc, [])}
    room = max(0, max_docs - len(gold))
    chosen = []
    for record in records:
        if record["id"] in gold:
            chosen.append(record)
        elif room:
            chosen.append(record)
            room -= 1
    return chosen


def convert_corpus(source: Path, target: Path, records: Sequence[dict[str, Any]] | None = None) -> bool:
    """Write the converted collection to `target`; leave it untouched (so ingest skips it) when unchanged."""
    records = read_jsonl(source) if records is None else records
    lines = [json.dumps(to_record(r), ensure_ascii=False) for r in records]
    content = "\n".join(lines) + "\n"
    if target.exists() and target.read_text(encoding="utf-8") == content:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return True


def bench_settings(settings: Settings, name: str) -> Settings:
    """The bench's own data dir <data dir>/bench/<name>/, its converted corpus in source/ inside it."""
    data_dir = Path(settings.data_dir) / "bench" / name
    return settings.model_copy(update={"data_dir": data_dir, "corpus_dir": data_dir / "source"})


def prepare_index(settings: Settings, name: str, bench_dir: Path, embedder,
                  records: Sequence[dict[str, Any]] | None = None) -> Settings:
    """Convert and ingest the bench corpus, or `records` of it (incremental: unchanged costs a file hash)."""
    from ingest.build import ingest

    own = bench_settings(settings, name)
    convert_corpus(bench_path(bench_dir, name) / "corpus.jsonl", own.corpus_dir / f"{name}.jsonl", records)
    report = ingest(own, [own.corpus_dir], embedder=embedder)
    if report.failed:
        raise PolicyRagError(f"ingesting bench {name} failed: {report.failed[0].error}")
    return own


def load_items(name: str, bench_dir: Path, limit: int | None = None) -> list[BenchItem]:
    """The bench questions in file order (the first `limit` of them: deterministic)."""
    items = []
    for raw in read_jsonl(bench_path(bench_dir, name) / "qa.jsonl")[: limit or None]:
        spans = [(s["doc_id"], s["start"], s["end"]) for s in raw["evidence_spans"]]
        items.append(BenchItem(
            id=raw["id"], question=raw["question"], spans=tuple(spans),
            answer=raw["answer"] if name == "ncp_policy_qa" else "", type=raw.get("type", ""),
            also=tuple(raw.get("answer_also_in_doc_ids", [])),
        ))
    return items


def identical_docs(name: str, bench_dir: Path) -> dict[str, list[str]]:
    """ncp_policy_qa: doc id → ids of documents with the same text (a hit on any of them counts)."""
    if name != "ncp_policy_qa":
        return {}
    return {r["id"]: r.get("identical_text_doc_ids", []) for r in read_jsonl(bench_path(bench_dir, name) / "corpus.jsonl")}


# ---- offsets ---------------------------------------------------------------------------------------
def folded(text: str) -> tuple[str, list[int]]:
    """`norm(text)` with, for each of its characters, the offset in `text` it came from."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for f in norm(ch):
            chars.append(f)
            where.append(i)
    return "".join(chars), where


@dataclass
class DocText:
    """One bench document: its folded raw text and how cleaned-text offsets map onto it."""

    raw: str
    folded: str
    raw_where: list[int]
    clean_where: list[int] | None = None   # folded position of each folded cleaned char (None: identical)
    clean_index: list[int] = field(default_factory=list)

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """A raw-text span as a folded span."""
        return bisect_left(self.raw_where, start), bisect_left(self.raw_where, end)

    def clean_span(self, start: int, end: int) -> tuple[int, int]:
        """A cleaned-text span (a clause) as a folded span of the raw text."""
        a, b = bisect_left(self.clean_index, start), bisect_left(self.clean_index, end)
        if self.clean_where is None:
            return a, b
        if a >= len(self.clean_where):
            return len(self.folded), len(self.folded)
        return self.clean_where[a], (self.clean_where[b - 1] + 1 if b > a else self.clean_where[a])


def doc_texts(raw_records: Sequence[dict[str, Any]], documents: Sequence[Any]) -> dict[str, DocText]:
    """Folded texts of every bench document, aligned with the loader's cleaned texts (by bench id)."""
    from difflib import SequenceMatcher

    cleaned = {d.doc_id.rsplit("#", 1)[-1]: d.text for d in documents}
    out: dict[str, DocText] = {}
    for raw in raw_records:
        f_raw, raw_where = folded(to_record(raw)["text"])
        doc = DocText(raw["text"], f_raw, raw_where)
        f_clean, doc.clean_index = folded(cleaned.get(raw["id"], ""))
        if f_clean != f_raw:  # the cleaner changed more than whitespace and width: align the two
            where = [0] * len(f_clean)
            matcher = SequenceMatcher(None, f_clean, f_raw, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                for k in range(i1, i2):
                    where[k] = min(j1 + (k - i1), max(j2 - 1, j1))
            doc.clean_where = where
        out[raw["id"]] = doc
    return out


# ---- scoring ---------------------------------------------------------------------------------------
def gold_spans(item: BenchItem, docs: dict[str, DocText], same: dict[str, list[str]]) -> dict[str, list[tuple[int, int]]]:
    """Folded gold spans per doc id, including the answer's place in identical-text documents."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for doc_id, start, end in item.spans:
        if doc_id in docs:
            spans.setdefault(doc_id, []).append(docs[doc_id].raw_span(start, end))
        for twin in same.get(doc_id, []):
            if twin in docs and item.answer:
                pos = docs[twin].folded.find(norm(item.answer))
                if pos >= 0:
                    spans.setdefault(twin, []).append((pos, pos + len(norm(item.answer))))
    return spans


def passage_ranks(item: BenchItem, retrieved: Sequence[tuple[str, int, int, str]], docs: dict[str, DocText],
                  same: dict[str, list[str]]) -> dict[str, int | None]:
    """Ranks of the first retrieved passage (doc_id, start, end, text) that overlaps / contains the gold;
    `lenient`: that overlaps it, or holds the whole answer in a document the bench lists as also holding it
    (a repost the bench does not count as identical; its README suggests this for a lenient score)."""
    spans = gold_spans(item, docs, same)
    answer = norm(item.answer)
    ranks: dict[str, int | None] = dict.fromkeys(HIT_KINDS)
    for rank, (doc_id, start, end, text) in enumerate(retrieved, 1):
        holds_answer = bool(answer) and (doc_id in item.also or doc_id in spans) and answer in norm(text)
        if doc_id in item.also and holds_answer:
            ranks["lenient"] = ranks["lenient"] or rank
        if doc_id not in spans:
            continue
        a, b = docs[doc_id].clean_span(start, end) if start >= 0 else (-1, -1)
        if any(a < e and s < b for s, e in spans[doc_id]):
            ranks["overlap"] = ranks["overlap"] or rank
            ranks["lenient"] = ranks["lenient"] or rank
        if holds_answer:
            ranks["contains"] = ranks["contains"] or rank
    return ranks


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float | None]:
    if not ranks:
        return {f"hit_at_{k}": None for k in KS} | {"mrr": None}
    n = len(ranks)
    metrics: dict[str, float | None] = {f"hit_at_{k}": sum(1 for r in ranks if r and r <= k) / n for k in KS}
    metrics["mrr"] = sum(1 / r for r in ranks if r) / n
    return metrics


# ---- answers ---------------------------------------------------------------------------------------
ANSWER_METRICS = ("answer_contains_gold", "answer_char_f1", "citation_covers_gold", "false_abstain_rate",
                  "median_answer_chars")


def bare(text: str) -> str:
    """`text` for comparing answers: folded as `norm` does, without punctuation or symbols."""
    return "".join(ch for ch in norm(text) if not unicodedata.category(ch).startswith(("P", "S")))


def char_f1(answer: str, gold: str) -> float:
    """Character-overlap F1 of an answer with the gold span (the usual score for Chinese extractive QA)."""
    a, g = Counter(bare(answer)), Counter(bare(gold))
    common = sum((a & g).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def answer_scores(item: BenchItem, answer: Any, docs: dict[str, DocText], same: dict[str, list[str]]) -> dict[str, Any]:
    """How one answer reads against the gold: the answer span in its text (ncp_policy_qa), its character F1,
    a cited clause covering the gold (holding the whole answer span where there is one, else overlapping the
    gold evidence: legal_dc's articles), refused, and its length."""
    cited = [(c.clause.doc_id.rsplit("#", 1)[-1], c.clause.start, c.clause.end, c.clause.text) for c in answer.citations]
    ranks = passage_ranks(item, cited, docs, same)
    gold = bare(item.answer)
    return {
        "contains_gold": bool(gold) and gold in bare(answer.text) if item.answer else None,
        "char_f1": char_f1(answer.text, item.answer) if item.answer else None,
        "citation_covers_gold": (ranks["contains"] if item.answer else ranks["overlap"]) is not None,
        "abstained": answer.abstained,
        "chars": len(answer.text),
    }


def answer_metrics(scores: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """ANSWER_METRICS over every question of a bench (all of them answerable)."""
    if not scores:
        return dict.fromkeys(ANSWER_METRICS)
    spans = [s for s in scores if s["contains_gold"] is not None]
    return {
        "answer_contains_gold": sum(s["contains_gold"] for s in spans) / len(spans) if spans else None,
        "answer_char_f1": sum(s["char_f1"] for s in spans) / len(spans) if spans else None,
        "citation_covers_gold": sum(s["citation_covers_gold"] for s in scores) / len(scores),
        "false_abstain_rate": sum(s["abstained"] for s in scores) / len(scores),
        "median_answer_chars": float(statistics.median(s["chars"] for s in scores)),
    }


# ---- the reference ---------------------------------------------------------------------------------
def reference_bm25(raw_records: Sequence[dict[str, Any]], items: Sequence[BenchItem], docs: dict[str, DocText],
                   same: dict[str, list[str]], k: int = 10) -> list[dict[str, int | None]]:
    """The READMEs' reference: character-bigram BM25 (k1 1.2, b 0.75) over fixed 300-character chunks."""
    import bm25s

    chunks: list[tuple[str, int, int, str]] = []
    for raw in raw_records:
        text = raw["text"]
        chunks += [(raw["id"], i, min(i + REFERENCE_CHUNK, len(text)), text[i : i + REFERENCE_CHUNK])
                   for i in range(0, len(text), REFERENCE_CHUNK)]
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index([_bigrams(c[3]) for c in chunks], show_progress=False)
    # reference chunks are raw-text spans: map them as if the raw text were the cleaned one
    raw_docs = {d: replace(t, clean_where=None, clean_index=t.raw_where) for d, t in docs.items()}
    out = []
    for item in items:
        grams = [g for g in _bigrams(item.question) if g in retriever.vocab_dict]
        if not grams:
            out.append(dict.fromkeys(HIT_KINDS))
            continue
        scores = retriever.get_scores(grams)
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        out.append(passage_ranks(item, [chunks[i] for i in top], raw_docs, same))
    return out


def _bigrams(text: str) -> list[str]:
    t = re.sub(r"\s+", "", text)
    return [t[i : i + 2] for i in range(len(t) - 1)] or ([t] if t else [])


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class BenchSummary:
    name: str
    n: int
    corpus_docs: int                              # documents in the index (the full corpus unless --max-docs)
    corpus_chars: int
    metrics: dict[str, dict[str, float | None]]   # {"policy-rag (overlap)": {...}, "reference BM25": {...}}
    readme_reference: dict[str, float]
    data_dir: str
    out_dir: str
    ingest_seconds: float = 0.0
    ask_seconds: float = 0.0
    answers: dict[str, float | None] = field(default_factory=dict)  # ANSWER_METRICS of the answers themselves
    gate: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.gate

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"passed": self.passed}


def run_bench(settings: Settings, name: str, out_dir: Path, *, bench_dir: Path = DEFAULT_BENCH_DIR,
              limit: int | None = None, max_docs: int | None = None, thresholds: dict[str, float] | None = None,
              embedder=None,
              progress: Callable[[int, int], None] | None = None) -> BenchSummary:
    """Ingest bench `name` (if changed), ask its first `limit` questions, score passage hits.

    `max_docs` bounds the corpus (and the embedding time) to the gold documents plus distractors;
    the reference BM25 is then recomputed on that same corpus.
    """
    from eval.harness import write_jsonl
    from eval.metrics import check_thresholds
    from ingest.loaders import load_documents
    from rag.assistant import Assistant

    items = load_items(name, bench_dir, limit)
    same = identical_docs(name, bench_dir)
    all_records = read_jsonl(bench_path(bench_dir, name) / "corpus.jsonl")
    raw_records = select_documents(all_records, items, max_docs, same)
    assistant = Assistant(settings, embedder=embedder)
    t0 = time.perf_counter()
    own = prepare_index(settings, name, bench_dir, assistant.embedder, raw_records)
    ingest_seconds = time.perf_counter() - t0
    assistant = Assistant(own, embedder=assistant.embedder)
    docs = doc_texts(raw_records, load_documents(own.corpus_dir / f"{name}.jsonl"))

    t1 = time.perf_counter()
    rows, ours, read = [], [], []
    for n, item in enumerate(items, 1):
        answer = assistant.ask(item.question)
        hits = [(h.clause.doc_id.rsplit("#", 1)[-1], h.clause.start, h.clause.end, h.clause.text)
                for h in answer.retrieved]
        ranks = passage_ranks(item, hits, docs, same)
        ours.append(ranks)
        read.append(answer_scores(item, answer, docs, same))
        rows.append({"id": item.id, "ranks": ranks, "answer_scores": read[-1], **answer.to_dict()})
        if progress:
            progress(n, len(items))
    ask_seconds = time.perf_counter() - t1
    reference = reference_bm25(raw_records, items, docs, same)

    metrics = {"policy-rag (overlap)": rank_metrics([r["overlap"] for r in ours])}
    if name == "ncp_policy_qa":
        metrics["policy-rag (contains answer)"] = rank_metrics([r["contains"] for r in ours])
        metrics["policy-rag (lenient: or the answer in a repost)"] = rank_metrics([r["lenient"] for r in ours])
    metrics["reference bigram BM25, 300 chars (overlap)"] = rank_metrics([r["overlap"] for r in reference])
    if name == "ncp_policy_qa":
        metrics["reference bigram BM25, 300 chars (contains answer)"] = rank_metrics([r["contains"] for r in reference])
        metrics["reference bigram BM25, 300 chars (lenient)"] = rank_metrics([r["lenient"] for r in reference])
    summary = BenchSummary(name, len(items), len(raw_records), sum(len(r["text"]) for r in raw_records), metrics, README_REFERENCE[name], str(own.data_dir), str(out_dir),
                           ingest_seconds, ask_seconds, answer_metrics(read), thresholds=dict(thresholds or {}))
    summary.gate = check_thresholds(metrics["policy-rag (overlap)"], summary.thresholds)
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "results.jsonl", rows)
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(render_bench_report(summary, items, rows), encoding="utf-8")
    return summary


def split_halves(records: Sequence[dict[str, Any]], items: Sequence[BenchItem], same: dict[str, list[str]]) -> set[str]:
    """The ids of a fixed half of the corpus: documents kept together with their identical reposts and with the
    other documents a question names as holding its answer, each group placed by a hash of its first id."""
    parent = {r["id"]: r["id"] for r in records}

    def root(doc: str) -> str:
        while parent[doc] != doc:
            parent[doc] = parent[parent[doc]]
            doc = parent[doc]
        return doc

    links = [[doc, *twins] for doc, twins in same.items()]
    links += [[doc for doc, _, _ in item.spans] + list(item.also) for item in items]
    for group in links:
        known = [d for d in group if d in parent]
        for doc in known[1:]:
            parent[root(doc)] = root(known[0])
    groups: dict[str, list[str]] = {}
    for doc in parent:
        groups.setdefault(root(doc), []).append(doc)
    return {doc for members in groups.values()
            if int(hashlib.sha1(min(members).encode()).hexdigest(), 16) % 2 == 0 for doc in members}


def index_half(settings: Settings, name: str, bench_dir: Path, items: Sequence[BenchItem],
               records: Sequence[dict[str, Any]], embedder) -> tuple[Settings, set[str]]:
    """Ingest the fixed half of the bench corpus (split_halves) into <data dir>/abstain-split/; its settings
    and the ids of the documents in it."""
    half = split_halves(records, items, identical_docs(name, bench_dir))
    half_settings = settings.model_copy(update={"data_dir": Path(settings.data_dir) / "abstain-split"})
    own = prepare_index(half_settings, name, bench_dir, embedder, [r for r in records if r["id"] in half])
    return own, half


def run_abstain_split(settings: Settings, name: str, out_dir: Path, *, bench_dir: Path = DEFAULT_BENCH_DIR,
                      limit: int | None = None, embedder=None) -> dict[str, Any]:
    """Index a fixed half of the bench corpus (split_halves) and ask every question: one whose gold documents
    are all in the other half must be refused, any other answered. Returns abstain recall and false abstain."""
    from eval.harness import write_jsonl
    from rag.assistant import Assistant
    from rag.embedders import settings_embedder

    items = load_items(name, bench_dir, limit)
    records = read_jsonl(bench_path(bench_dir, name) / "corpus.jsonl")
    embedder = embedder or settings_embedder(settings)
    own, half = index_half(settings, name, bench_dir, items, records, embedder)
    assistant = Assistant(own, embedder=embedder)
    rows = []
    for item in items:
        answerable = any(doc in half for doc, _, _ in item.spans)
        answer = assistant.ask(item.question)
        rows.append({"id": item.id, "answerable": answerable, "abstained": answer.abstained, "answer": answer.text})
    refuse = [r for r in rows if not r["answerable"]]
    answer_ = [r for r in rows if r["answerable"]]
    summary = {
        "name": name, "documents_indexed": len(half), "documents": len(records),
        "unanswerable": len(refuse), "answerable": len(answer_),
        "abstain_recall": sum(r["abstained"] for r in refuse) / len(refuse) if refuse else None,
        "false_abstain_rate": sum(r["abstained"] for r in answer_) / len(answer_) if answer_ else None,
    }
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "results.jsonl", rows)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


def render_bench_report(summary: BenchSummary, items: Sequence[BenchItem] = (),
                        rows: Sequence[dict[str, Any]] = ()) -> str:
    from eval.report import metrics_table

    table = list(summary.metrics.items()) + [("README reference (all questions, full corpus, overlap)",
                                              summary.readme_reference)]
    if summary.thresholds:
        table.append(("gate (min)", summary.thresholds))
    gate = "no thresholds" if not summary.thresholds else "**passed**" if summary.passed else "**FAILED**: " + "; ".join(summary.gate)
    return "\n\n".join([
        f"# Bench {summary.name}: passage-level evidence retrieval",
        f"{summary.n} questions over {summary.corpus_docs} documents ({summary.corpus_chars:,} characters); "
        f"index `{summary.data_dir}` (ingest {summary.ingest_seconds:.0f} s, "
        f"questions {summary.ask_seconds:.0f} s). Gate: {gate}.",
        metrics_table(table, ["hit_at_1", "hit_at_5", "hit_at_10", "mrr"]),
        "## Answers",
        metrics_table([("policy-rag", summary.answers)], list(ANSWER_METRICS)),
        "The gold answer span counts as in the answer when it occurs in it, punctuation and whitespace aside; "
        "character F1 is over the same characters; a citation covers the gold when a cited clause holds the "
        "whole answer span (ncp_policy_qa) or overlaps the gold evidence (legal_dc); every question is answerable, "
        "so each refusal is a false one.",
        "A hit is a retrieved clause (or reference chunk) that overlaps a gold evidence span, mapped onto "
        "whitespace- and width-folded text; `contains answer` requires the whole answer span inside it; "
        "`lenient` also counts a clause holding the whole answer in a document the bench lists in "
        "`answer_also_in_doc_ids` (a repost not identical to the gold one). The gate uses `overlap`. "
        "The reference rows are recomputed here on the same questions.",
        *_misses(items, rows),
    ]) + "\n"


def _misses(items: Sequence[BenchItem], rows: Sequence[dict[str, Any]]) -> list[str]:
    """One entry per question whose gold evidence is not overlapped in our top 5."""
    by_id = {i.id: i for i in items}
    missed = [r for r in rows if not r["ranks"]["overlap"] or r["ranks"]["overlap"] > 5]
    out = [f"## Not in the top 5: {len(missed)}"]
    for row in missed:
        item = by_id[row["id"]]
        gold = {doc for doc, _, _ in item.spans}
        docs = [r["doc_id"].rsplit("#", 1)[-1] for r in row["retrieved"]]
        top = "; ".join(f"{r['rank']}. {d[:10]} {r['label'] or '（导语）'} {r['text'][:30]!r}"
                        for d, r in zip(docs[:3], row["retrieved"][:3]))
        out.append("\n".join([
            f"### {item.id}: overlap rank {row['ranks']['overlap'] or '> 10'}",
            f"- question: {item.question}",
            f"- gold: {', '.join(sorted(gold))}" + (f"; answer: {item.answer[:80]}" if item.answer else ""),
            f"- gold document at ranks: {[i + 1 for i, d in enumerate(docs) if d in gold] or 'none'}",
            f"- top 3: {top}",
        ]))
    return out
