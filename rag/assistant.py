"""The one entry point for CLI, UI and eval: `Assistant.ask(question) -> Answer`."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cached_property

from rag.answer import ExtractiveAnswerer, document_places, intent, places_in, warm_sentences
from rag.config import Settings
from rag.embedders import Embedder, settings_embedder
from rag.errors import PolicyRagError
from rag.index import ClauseIndex
from rag.records import Answer, Clause, Hit
from rag.retrieve import Retriever

log = logging.getLogger(__name__)


class Assistant:
    """Opens the index lazily, keeps the embedder and jieba warm, answers questions."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, *, many_questions: bool = False) -> None:
        """`many_questions`: this process answers question after question (the app, eval, bench, the ask
        prompt). Once its first answer is out, a background thread reads every clause of a small index
        (≤ 20 k clauses) into memory and splits and folds its sentences (0.5 s of CPU for the 5.8 k of the
        policy corpus), so no later answer reads SQLite or splits a clause: 6.6-7.2 → 4.6-5.0 ms of what an
        answer spends besides the query embedding. A one-question process skips all that."""
        self.settings = settings
        self._embedder = embedder
        self._warm_sentences = many_questions
        self._warming: threading.Thread | None = None

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or settings_embedder(self.settings)

    @cached_property
    def index(self) -> ClauseIndex:
        from rag.index import PARSER_VERSION

        return ClauseIndex.open(
            self.settings.data_dir, embedder=self.embedder.name, parser_version=PARSER_VERSION,
            embed_chars=self.settings.embed_chars, chroma_url=self.settings.chroma_url,
        )

    def warm_up(self) -> None:
        """Start loading the vector index and the query encoder in a background thread while this one loads
        jieba and BM25: a new process's first answer comes sooner (laws corpus: the vector index alone takes
        ≈ 1 s; the onnx query encoder 0.2 s)."""
        try:
            index = self.index
        except PolicyRagError:
            return  # the question itself reports it
        threading.Thread(target=index.warm_up, args=(self.embedder.dim,), daemon=True, name="warm-up").start()
        if hasattr(self.embedder, "warm_up"):
            threading.Thread(target=self.embedder.warm_up, daemon=True, name="warm-up-encoder").start()

    @cached_property
    def retriever(self) -> Retriever:
        from rag.rerank import CrossEncoderReranker, LexicalReranker, YearReranker

        s = self.settings
        rerankers = [LexicalReranker()] if s.lexical_rerank else []
        if s.reranker:
            rerankers.append(CrossEncoderReranker(s.reranker))
        rerankers.append(YearReranker())
        return Retriever(self.index, self.embedder, fusion=s.fusion, dense_weight=s.dense_weight,
                         bm25_weight=s.bm25_weight, rerankers=rerankers)

    def answerer(self, name: str | None = None):
        name = name or self.settings.answerer
        extractive = ExtractiveAnswerer(related=self.related)
        if name == "llm":
            from rag.llm import LLMAnswerer

            return LLMAnswerer.from_settings(self.settings, fallback=extractive)
        return extractive

    def related(self, clause: Clause) -> list[Clause]:
        """The items of the list `clause` belongs to: its children, or else its siblings."""
        doc_clauses = [c for c in self.index.clauses([clause.doc_id]) if "~" not in c.clause_id.rsplit("#", 1)[-1]]
        depth = len(clause.path)
        children = [c for c in doc_clauses if len(c.path) == depth + 1 and c.path[:depth] == clause.path]
        if len(children) >= 2:
            return children
        if depth == 0:
            return []
        return [c for c in doc_clauses if len(c.path) == depth and c.path[: depth - 1] == clause.path[:-1]]

    def refresh(self) -> None:
        """See documents another process committed since the last question (an ingest while the app runs)."""
        if self.index.refresh():
            self.__dict__.pop("_document_places", None)

    def search(self, question: str, k: int = 10, doc: str | Sequence[str] | None = None) -> list[Hit]:
        self.refresh()
        asks = intent(question)
        if not doc and not asks["compare"]:
            doc = self.documents_of_place(question)
        hits = self.retriever.search(question, k=k, doc=doc)
        if asks["compare"] and not doc:
            hits = self._per_document(question, hits, k)
        elif asks["purpose"] and hits:
            hits = self._with_opening(hits)
        return hits

    def _with_opening(self, hits: list[Hit]) -> list[Hit]:
        """A "why was it issued" question: the leading document's opening clause (its 导语, or a law's 第一条
        为了…制定本法) states the purpose, whatever words the question uses; put it second."""
        opening = self.index.first_clause(hits[0].clause.doc_id)
        if opening is None or opening.clause_id in {h.clause.clause_id for h in hits[:2]}:
            return hits
        rest = [h for h in hits if h.clause.clause_id != opening.clause_id]
        return [rest[0], Hit(opening, rest[0].score, {}, {}), *rest[1:]]

    def documents_of_place(self, question: str) -> list[str] | None:
        """When the question names one province, leave out documents about other provinces only.

        Documents that name no province (national laws, news notices) stay in: a filter on the named
        province alone lost answers on the public policy benchmark.
        """
        places = places_in(question)
        if len(places) != 1:
            return None
        (place,) = places
        docs = [d for d, found in self._document_places.items() if not found or place in found]
        return docs if 0 < len(docs) < len(self._document_places) else None

    @cached_property
    def _document_places(self) -> dict[str, set[str]]:
        """Provinces each document is about, read from its title and the opening of its text."""
        found: dict[str, set[str]] = {}
        for doc_id, entry in self.index.manifest.documents.items():
            opening = self.index.first_clause(doc_id)
            found[doc_id] = document_places(entry.get("title", ""), opening.text[:300] if opening else "")
        return found

    def _per_document(self, question: str, hits: list[Hit], k: int) -> list[Hit]:
        """For a comparison, the best hits of each of the two leading documents, interleaved."""
        docs: list[str] = []
        for h in hits:
            if h.clause.doc_id not in docs:
                docs.append(h.clause.doc_id)
        if len(docs) < 2:
            return hits
        per_doc = [self.retriever.search(question, k=max(3, k // 2), doc=[d]) for d in docs[:2]]
        merged: list[Hit] = []
        for pair in zip(*per_doc):
            merged += [h for h in pair if h.clause.clause_id not in {m.clause.clause_id for m in merged}]
        return merged[:k]

    def ask(self, question: str, *, k: int | None = None, doc: str | Sequence[str] | None = None,
            answerer: str | None = None) -> Answer:
        """Retrieve, answer, check citations; timings in milliseconds."""
        *_, answer = self.ask_stream(question, k=k, doc=doc, answerer=answerer)
        return answer

    def ask_stream(self, question: str, *, k: int | None = None, doc: str | Sequence[str] | None = None,
                   answerer: str | None = None) -> Iterator[str | Answer]:
        """Like `ask`, but yields the answer text as it is written (LLM chunks), then the Answer."""
        question = question.strip()
        t0 = time.perf_counter()
        hits = self.search(question, k=max(k or self.settings.top_k, 10), doc=doc)
        t1 = time.perf_counter()
        chosen = self.answerer(answerer)
        if hasattr(chosen, "stream"):
            for part in chosen.stream(question, hits):
                if isinstance(part, Answer):
                    answer = part
                else:
                    yield part
        else:
            answer = chosen.answer(question, hits)
            yield answer.text
        t2 = time.perf_counter()
        answer.retrieved = hits[:10]
        answer.timings_ms = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        if self._warm_sentences and self._warming is None:
            self._warming = threading.Thread(target=self._warm_clauses, daemon=True, name="warm-sentences")
            self._warming.start()
        yield answer

    def wait_warm(self, timeout: float = 60.0) -> None:
        """Wait for the sentence caches to be filled (`many_questions`), e.g. before timing steady-state answers."""
        if self._warming is not None:
            self._warming.join(timeout)

    def _warm_clauses(self) -> None:
        """Hold a small index's clauses in memory and split and fold each into the sentence caches."""
        import sqlite3

        try:  # the lowest priority: the query embedding's threads must not lose their cores to it
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # Linux: one thread's nice value
        except (AttributeError, OSError):
            pass
        if sqlite3.threadsafety != 3:  # this SQLite build does not let threads share a connection
            return
        try:
            held = self.index.hold_in_memory()
            if held is not None:  # None: too large for the caches (the laws' 126 k clauses): read on demand
                warm_sentences(c.text for c in list(held.values()))
        except Exception as err:  # noqa: BLE001 - a failed warm-up only means the answers pay as before
            log.debug("sentence warm-up skipped: %s", err)
