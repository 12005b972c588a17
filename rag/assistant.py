"""The one entry point for CLI, UI and eval: `Assistant.ask(question) -> Answer`."""

from __future__ import annotations

from datetime import date

import re
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cached_property

from rag.answer import ExtractiveAnswerer
from rag.config import Settings
from rag.embedders import Embedder, settings_embedder
from rag.errors import PolicyRagError
from rag.index import ClauseIndex
from rag.question import Question, defined_term, places_in
from rag.records import Answer, Clause, Hit
from rag.retrieve import Retriever
from rag.target_answers import answer_from_targets, asks_for_targets
from rag.validity import current_first

def current_day() -> date:
    """Today, for validity (a function, so a test can move the clock)."""
    return date.today()


class Assistant:
    """Opens the index lazily, keeps the embedder and jieba warm, answers questions."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.abstain_model = None  # the answer-or-refuse model: None for the fitted one (rag/abstain.py)

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
        extractive = ExtractiveAnswerer(related=self.related, model=self.abstain_model)
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

    def validity_notices(self, answer: Answer) -> list[str]:
        """A cited document that is repealed, expired or not yet in force is named as such, with its replacement."""
        cited = {c.clause.doc_id for c in answer.citations}
        if not cited:
            return []
        found = self._validity
        return [found[d].warning for d in sorted(cited) if d in found and found[d].warning]

    @property
    def _validity(self) -> dict:
        """Every document's status today, computed again when the index changes or the day does (a server
        running past a document's expiry date says so the next morning)."""
        from rag.validity import statuses

        today = current_day()
        cached = self.__dict__.get("_validity_cache")
        if cached is None or cached[0] != today:
            cached = self.__dict__["_validity_cache"] = (today, statuses(self.index.manifest.documents, today))
        return cached[1]

    def targets(self) -> list:
        """Every quantitative target of the indexed documents (rag/targets.py), in document order; read again
        when the index changes."""
        from rag.targets import extract

        self.refresh()
        cached = self.__dict__.get("_targets")
        if cached is None:
            cached = self.__dict__["_targets"] = extract(self.index.clauses())
        return cached

    def refresh(self) -> None:
        """See documents another process committed since the last question (an ingest while the app runs)."""
        if self.index.refresh():
            for name in ("_document_places", "_validity_cache", "_targets"):
                self.__dict__.pop(name, None)

    def search(self, question: Question | str, k: int = 10, doc: str | Sequence[str] | None = None,
               in_force: bool = False) -> list[Hit]:
        """Hits for `question`, within `doc` (titles or ids) when given, and only in documents in force today when
        `in_force` is set."""
        self.refresh()
        question = Question.of(question)
        chosen = doc
        if not doc and not question.intent.compare:
            doc = self.documents_of_place(question)
        if in_force:
            doc = self.in_force_documents(doc)
        hits = self.retriever.search(question, k=k, doc=doc)
        hits = current_first(hits, self._validity)
        if question.intent.compare and not chosen:
            hits = self._per_document(question, hits, k)
        elif question.intent.purpose and hits:
            hits = self._with_opening(hits)
        elif "definition" in question.kinds and hits:
            hits = self._with_definition(question, hits)
        return hits

    def in_force_documents(self, doc: str | Sequence[str] | None = None) -> list[str]:
        """The ids of the documents among `doc` (all when None) that are 现行有效 today (rag/validity.py)."""
        from rag.validity import IN_FORCE

        ids = self.retriever.resolve_docs(doc) or list(self.index.manifest.documents)
        kept = [d for d in ids if d in self._validity and self._validity[d].status == IN_FORCE]
        if not kept:
            raise PolicyRagError("没有现行有效的文件可查：要查的文件都已废止、过期或尚未施行（不限现行有效可查全部文件）")
        return kept

    def _with_opening(self, hits: list[Hit]) -> list[Hit]:
        """A "why was it issued" question: the leading document's opening clause (its 导语, or a law's 第一条
        为了…制定本法) states the purpose, whatever words the question uses; put it second."""
        opening = self.index.first_clause(hits[0].clause.doc_id)
        if opening is None or opening.clause_id in {h.clause.clause_id for h in hits[:2]}:
            return hits
        rest = [h for h in hits if h.clause.clause_id != opening.clause_id]
        return [rest[0], Hit(opening, rest[0].score, {}, {}), *rest[1:]]

    def _with_definition(self, question: Question, hits: list[Hit]) -> list[Hit]:
        """A "what is X" question: the clause of the leading document that defines X (本法所称X，是指… / X是指…)
        answers it, though every clause of a law about X repeats the word; put it first."""
        term = defined_term(question.text)
        if not term:
            return hits
        defines = re.compile(rf"所称的?{re.escape(term)}|{re.escape(term)}[”，,]?\s*(?:是指|指的是|系指)")
        found = next((c for c in self.index.clauses([hits[0].clause.doc_id]) if defines.search(c.text)), None)
        if found is None or found.clause_id == hits[0].clause.clause_id:
            return hits
        return [Hit(found, hits[0].score, {}, {}), *(h for h in hits if h.clause.clause_id != found.clause_id)]

    def documents_of_place(self, question: Question | str) -> list[str] | None:
        """When the question names one province, leave out documents about other provinces only.

        Documents that name no province (national laws, news notices) stay in: a filter on the named
        province alone lost answers on the public policy benchmark.
        """
        question = Question.of(question)
        if len(question.places) != 1:
            return None
        (place,) = question.places
        docs = [d for d, found in self._document_places.items() if not found or place in found]
        return docs if 0 < len(docs) < len(self._document_places) else None

    @cached_property
    def _document_places(self) -> dict[str, frozenset[str]]:
        """Provinces each document is about, read from its title and the opening of its text."""
        found: dict[str, frozenset[str]] = {}
        for doc_id, entry in self.index.manifest.documents.items():
            opening = self.index.first_clause(doc_id)
            found[doc_id] = document_places(entry.get("title", ""), opening.text[:300] if opening else "")
        return found

    def _per_document(self, question: Question, hits: list[Hit], k: int) -> list[Hit]:
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

    def ask(self, question: Question | str, *, k: int | None = None, doc: str | Sequence[str] | None = None,
            answerer: str | None = None, in_force: bool = False) -> Answer:
        """Retrieve, answer, check citations; timings in milliseconds."""
        *_, answer = self.ask_stream(question, k=k, doc=doc, answerer=answerer, in_force=in_force)
        return answer

    def ask_stream(self, question: Question | str, *, k: int | None = None, doc: str | Sequence[str] | None = None,
                   answerer: str | None = None, in_force: bool = False) -> Iterator[str | Answer]:
        """Like `ask`, but yields the answer text as it is written (LLM chunks), then the Answer."""
        t0 = time.perf_counter()
        question = Question.of(question)
        hits = self.search(question, k=max(k or self.settings.top_k, 10), doc=doc, in_force=in_force)
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
        if asks_for_targets(question):
            shaped = answer_from_targets(question, answer, self.targets(), hits,
                                         lambda clause_id: self.index.get([clause_id])[clause_id])
            answer = shaped or answer
        t2 = time.perf_counter()
        answer.retrieved = hits[:10]
        answer.notices += self.validity_notices(answer)
        answer.timings_ms = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        yield answer


# A national notice's addressee line: "各省、自治区、直辖市人民政府，新疆生产建设兵团：" names no province it is about.
NATIONAL_ADDRESSEE = re.compile(r"新疆生产建设兵团")


def document_places(title: str, opening: str) -> frozenset[str]:
    """Provinces a document is about, read from its title and the opening of its text (the 新疆生产建设兵团
    every national notice is addressed to left out)."""
    return places_in(title + NATIONAL_ADDRESSEE.sub("", opening))
