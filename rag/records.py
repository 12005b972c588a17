"""Typed records that flow through the pipeline: Document → Clause → Hit → Citation → Answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OCR_PAGES = "ocr_pages"  # Document.meta key: PDF pages whose text was read by OCR, as "1-3,5"


def pages_in(ranges: str) -> set[int]:
    """The page numbers of a "1-3,5" string (what meta[OCR_PAGES] holds)."""
    pages: set[int] = set()
    for part in ranges.split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            pages.update(range(int(first), int(last or first) + 1))
    return pages


@dataclass(frozen=True, slots=True)
class Document:
    """One cleaned source document, ready for the clause parser."""

    doc_id: str                 # corpus-relative path; "<file>#<id>" for a JSONL collection line
    source: str                 # the file it came from (corpus-relative where possible)
    title: str                  # 秦创原创新驱动平台建设三年行动计划（2024—2026年）
    text: str                   # cleaned text, lines = paragraphs
    content_hash: str           # sha256 of the raw bytes (or the JSONL line) it was read from
    pages: tuple[int, ...] = ()  # PDF only: pages[i] = offset in `text` where page i+1 starts
    meta: dict[str, str] = field(default_factory=dict)  # issuer, date, doc_number (文号) when known
    problems: tuple[str, ...] = ()  # parts that could not be read ("page 3: OCR took over 120 s"), for the report

    def page_at(self, offset: int) -> int | None:
        """The 1-based PDF page holding character `offset`, or None for non-PDF documents."""
        if not self.pages:
            return None
        page = 1
        for i, start in enumerate(self.pages):
            if start <= offset:
                page = i + 1
            else:
                break
        return page


@dataclass(frozen=True, slots=True)
class Clause:
    """One numbered clause (or a window of a long one) of a document."""

    clause_id: str              # f"{doc_id}#{label}" (+ "~N" for windows / repeats), stable across runs
    doc_id: str
    title: str
    path: tuple[str, ...]       # ("二、", "（一）", "3.")
    headings: tuple[str, ...]   # ancestors' heading texts, outermost first
    text: str                   # the clause's own text (its marker included)
    start: int                  # character span in Document.text
    end: int
    page: int | None = None     # PDF page where the clause starts
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The markers only, outermost first: 二、（一）3."""
        return "".join(self.path)

    @property
    def read_by_ocr(self) -> bool:
        """Its text was recognised from a scan (the page it starts on was OCR'd), not read from a text layer."""
        ocr_pages = self.meta.get(OCR_PAGES, "")
        return bool(ocr_pages) and (self.page is None or self.page in pages_in(ocr_pages))

    def index_text(self) -> str:
        """What BM25 and the embedder see: title + heading path + the clause text."""
        parts = [self.title, *self.headings, self.text]
        return "\n".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clause_id": self.clause_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "label": self.label,
            "headings": list(self.headings),
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "page": self.page,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved clause with its fused score and its rank in each retriever (1-based)."""

    clause: Clause
    score: float
    ranks: dict[str, int] = field(default_factory=dict)    # {"dense": 1, "bm25": 3}
    scores: dict[str, float] = field(default_factory=dict)  # raw per-retriever scores (cosine, BM25)


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer: the clause and the sentence quoted from it."""

    n: int
    clause: Clause
    quote: str

    def __str__(self) -> str:
        return f"《{self.clause.title}》{self.clause.label}"

    @property
    def memo(self) -> str:
        """Ready-to-paste memo string: 《title》（文号）二、（一）3.：“quote”; a document without a 文号 is named
        with its date instead (《title》（2020年3月5日）…)."""
        number = self.clause.meta.get("doc_number", "") or _chinese_date(self.clause.meta.get("date", ""))
        head = f"《{self.clause.title}》" + (f"（{number}）" if number else "")
        return f"{head}{self.clause.label}：“{self.quote}”"

    def to_dict(self) -> dict[str, Any]:
        c = self.clause
        return {
            "n": self.n,
            "clause_id": c.clause_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "label": c.label,
            "headings": list(c.headings),
            "text": c.text,
            "quote": self.quote,
            "source": c.source,
            "page": c.page,
            "start": c.start,
            "end": c.end,
            "memo": self.memo,
            # the document's metadata (文号, issuer, dates, what it repeals), without the sentences it came from
            "meta": {k: v for k, v in c.meta.items() if not k.endswith("_from")},
        }


@dataclass(frozen=True, slots=True)
class Unsupported:
    """An answer sentence that failed the citation check, and why."""

    sentence: str
    citation: int | None
    reason: str


@dataclass(slots=True)
class Answer:
    """What `Assistant.ask` returns; `to_dict()` is the `ask --json` contract."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[Hit] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    # what the answer-or-refuse decision saw (rag/abstain.py), and its probability that the corpus answers
    signals: dict[str, float] = field(default_factory=dict, repr=False)
    confidence: float | None = None

    def as_text(self) -> str:
        """The answer as staff paste it: the text, any notices, the numbered memo-ready sources (page where known)
        and sentences that failed the citation check. What `policy-rag ask` prints and the OpenAI endpoint sends."""
        lines = [self.text, *(f"注意：{notice}" for notice in self.notices)]
        if self.citations:
            lines += ["", "来源："]
            lines += [f"[{c.n}] {c.memo}" + (f"（第{c.clause.page}页）" if c.clause.page else "") for c in self.citations]
        lines += [f"⚠ 未通过引用核对：{u.sentence}（{u.reason}）" for u in self.unsupported]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [
                {
                    "rank": i + 1,
                    "clause_id": h.clause.clause_id,
                    "doc_id": h.clause.doc_id,
                    "title": h.clause.title,
                    "label": h.clause.label,
                    "text": h.clause.text,
                    "score": round(h.score, 6),
                }
                for i, h in enumerate(self.retrieved[:10])
            ],
            "unsupported": [asdict(u) for u in self.unsupported],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "notices": list(self.notices),
        }


def _chinese_date(iso: str) -> str:
    """2020-03-05 → 2020年3月5日; anything else (a date kept as written) as it is."""
    parts = iso.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{int(parts[0])}年{int(parts[1])}月{int(parts[2])}日"
    return iso
