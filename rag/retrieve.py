"""Hybrid retrieval: dense (Chroma) and BM25 (jieba) candidates fused into ranked Hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from rag.embedders import Embedder
from rag.errors import PolicyRagError
from rag.index import ClauseIndex
from rag.question import Question
from rag.records import Hit

CANDIDATES = 50
RRF_K = 60


class Reranker(Protocol):
    depth: int  # how many of the fused candidates it re-orders

    def rerank(self, question: Question, hits: Sequence[Hit]) -> list[Hit]: ...


class Retriever:
    """`search(question)` → fused Hits; every Hit keeps its rank and raw score in each retriever."""

    def __init__(self, index: ClauseIndex, embedder: Embedder, *,
                 fusion: Literal["rrf", "weighted"] = "weighted", dense_weight: float = 0.5,
                 bm25_weight: float = 1.0, rerankers: Sequence[Reranker] = ()) -> None:
        self.index = index
        self.embedder = embedder
        self.fusion = fusion
        self.weights = {"dense": dense_weight, "bm25": bm25_weight}
        self.rerankers = list(rerankers)
        self._last_query: tuple[str, object] | None = None  # (question, its vector): see `embed`

    def resolve_docs(self, doc: str | Sequence[str] | None) -> list[str] | None:
        """Doc ids matching a title substring or doc id (several allowed); error when none match."""
        if not doc:
            return None
        queries = [doc] if isinstance(doc, str) else list(doc)
        found: list[str] = []
        for q in queries:
            found += [d for d in self.index.find_documents(q) if d not in found]
        if not found:
            titles = "、".join(e["title"] for e in list(self.index.manifest.documents.values())[:5])
            raise PolicyRagError(f"no indexed document matches {doc!r}; indexed titles include: {titles}")
        return found

    def search(self, question: Question | str, k: int = 10, doc: str | Sequence[str] | None = None,
               mode: Literal["hybrid", "dense", "bm25"] = "hybrid") -> list[Hit]:
        question = Question.of(question)
        doc_ids = self.resolve_docs(doc)
        lists: dict[str, list[tuple[str, float]]] = {}
        # BM25 first: in a new process its loading (jieba, the BM25 index) overlaps the vector index's
        # (Assistant.warm_up), so the first dense search finds it loaded
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = self.index.search_bm25(list(question.tokens), CANDIDATES, doc_ids)
        if mode in ("hybrid", "dense"):
            lists["dense"] = self.index.search_dense(self.embed(question.text), CANDIDATES, doc_ids)
        fused = self._fuse(lists)
        rerankers = self.rerankers if mode == "hybrid" else []  # dense or BM25 alone: that ranking, as is
        top = fused[: max([k, *(r.depth for r in rerankers)])]
        clauses = self.index.get([cid for cid, _ in top])
        placed = {name: {c: (r, s) for r, (c, s) in enumerate(lst, 1)} for name, lst in lists.items()}
        hits = []
        for cid, score in top:
            if cid not in clauses:  # a stale BM25 entry of a clause removed since: skip it
                continue
            found = {name: where[cid] for name, where in placed.items() if cid in where}
            hits.append(Hit(clauses[cid], score, {n: r for n, (r, _) in found.items()},
                            {n: s for n, (_, s) in found.items()}))
        for reranker in rerankers:
            hits = reranker.rerank(question, hits)
        return hits[:k]

    def embed(self, question: str):
        """The question's vector; the last one is kept, since a comparison searches each of its two
        documents with the same question again (it was embedded three times: 2 × 16 ms more)."""
        last = self._last_query  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == question:
            return last[1]
        vector = self.embedder.embed_query(question)
        self._last_query = (question, vector)
        return vector

    def _fuse(self, lists: dict[str, list[tuple[str, float]]]) -> list[tuple[str, float]]:
        scores: dict[str, float] = {}
        for name, lst in lists.items():
            w = self.weights[name]
            if self.fusion == "rrf":
                for rank, (cid, _) in enumerate(lst, 1):
                    scores[cid] = scores.get(cid, 0.0) + w / (RRF_K + rank)
            elif lst:  # weighted sum of min-max normalised scores (cosines bunch near 0.9: raw sums flatten them)
                hi, lo = lst[0][1], min(s for _, s in lst)
                span = (hi - lo) or 1.0
                for cid, s in lst:
                    scores[cid] = scores.get(cid, 0.0) + w * (s - lo) / span
        return sorted(scores.items(), key=lambda kv: -kv[1])
