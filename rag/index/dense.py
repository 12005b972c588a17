"""The clause vectors: stored in Chroma (embedded, or a `chroma run` server), searched exactly in memory
for an index that holds at most EXACT_SEARCH_MAX clauses when it is opened (a dot product over every committed
vector) and through Chroma's HNSW index for a larger one. Only vectors of committed clauses are ever hits."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import PolicyRagError
from rag.index.bm25 import best
from rag.index.store import ClauseStore, to_clause
from rag.index.vector_cache import VECTOR_CACHE, VectorCache, embed_text
from rag.records import Clause

log = logging.getLogger(__name__)
COLLECTION = "clauses"
EXACT_SEARCH_MAX = 20_000  # 20 k vectors: 30 MB in memory, ≈ 2 ms a query; larger indexes query HNSW
FILTER_IN_CHROMA_MAX = 50  # longer document allow-lists are applied after the dense search
ORPHAN_MARGIN = 10  # dense search asks for this many more vectors than it needs, for uncommitted ones
RECHECK_MAX = 2_000  # vectors re-checked after an interrupted ingest: more than Chroma holds back unflushed


def vector_id(clause_id: str, vector: np.ndarray) -> str:
    """`<clause_id>@<hash of the vector>`: a changed clause gets a new id, so a committed vector never changes."""
    digest = hashlib.sha1(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()[:16]
    return f"{clause_id}@{digest}"


def chroma_client(data_dir: Path, chroma_url: str | None):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        from urllib.parse import urlparse

        url = urlparse(chroma_url)
        if not url.hostname:
            raise PolicyRagError(f"Chroma URL {chroma_url!r} is not of the form http://HOST:PORT")
        return chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https",
                                   settings=settings)
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)


def forget_embedded(data_dir: Path) -> None:
    """Stop this process's Chroma system for `data_dir`'s embedded store before its folder is deleted: Chroma
    keeps one per path, and a new client would otherwise reuse the one whose database file is gone."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(str(data_dir / "chroma"), None)
    SharedSystemClient._identifier_to_refcount.pop(str(data_dir / "chroma"), None)
    if system is not None:
        system.stop()


def drop_collection(data_dir: Path, chroma_url: str | None) -> None:
    """Delete the collection on a Chroma server (an embedded store goes with its folder)."""
    client = chroma_client(data_dir, chroma_url)
    if COLLECTION in [c.name for c in client.list_collections()]:
        client.delete_collection(COLLECTION)


@dataclass
class ExactVectors:
    """Committed clauses' vectors as one normalised matrix, for an exact nearest-neighbour search."""

    matrix: np.ndarray        # (clauses, dim) float32, rows of unit length
    clause_ids: list[str]
    doc_codes: dict[str, int]  # doc_id → small integer
    doc_of: np.ndarray        # each row's document code
    version: int              # the store's data_version when read

    @classmethod
    def build(cls, rows: Sequence[tuple[str, str, str]], vectors: dict[str, Any], version: int) -> ExactVectors:
        """`rows` (vec_id, clause_id, doc_id); a clause whose vector Chroma lacks is left out."""
        rows = [r for r in rows if r[0] in vectors]
        dim = len(next(iter(vectors.values()))) if vectors else 0
        matrix = np.asarray([vectors[v] for v, _, _ in rows], dtype=np.float32).reshape(len(rows), dim)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        codes = {d: i for i, d in enumerate(dict.fromkeys(d for _, _, d in rows))}
        doc_of = np.array([codes[d] for _, _, d in rows], dtype=np.int32)
        return cls(matrix, [c for _, c, _ in rows], codes, doc_of, version)

    def search(self, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, cosine similarity) of the k nearest rows (of `doc_ids`' documents, when given)."""
        if not len(self.clause_ids):
            return []
        query = np.asarray(vector, dtype=np.float32)
        # einsum, not `@`: a BLAS product runs OpenBLAS's threads, which spin on after it and took the cores
        # from the next query's embedding; einsum computes on this thread alone
        query = query / max(float(np.sqrt(np.einsum("i,i", query, query))), 1e-12)
        sims = np.einsum("ij,j->i", self.matrix, query)
        if doc_ids is not None:
            allowed = [self.doc_codes[d] for d in doc_ids if d in self.doc_codes]
            sims = np.where(np.isin(self.doc_of, allowed), sims, -np.inf)
        top = best(sims, k)
        return [(self.clause_ids[i], s) for i, s in zip(top.tolist(), sims[top].tolist()) if s > -np.inf]


class DenseStore:
    """Chroma's collection of clause vectors, and the search over the committed ones."""

    def __init__(self, data_dir: Path, chroma_url: str | None, store: ClauseStore, *, embedder: str,
                 embed_chars: int) -> None:
        self.data_dir = Path(data_dir)
        self.chroma_url = chroma_url
        self.store = store
        self.embedder, self.embed_chars = embedder, embed_chars  # what the vector cache is keyed by
        self.exact = store.count() <= EXACT_SEARCH_MAX  # the search, chosen once
        self._collection = None
        self._lock = threading.Lock()  # the collection and the exact vectors: warm_up() may build them
        self._exact: ExactVectors | None = None

    @property
    def collection(self):
        with self._lock:
            if self._collection is None:
                # embedding_function=None: Chroma's default model must never load (it downloads)
                self._collection = chroma_client(self.data_dir, self.chroma_url).get_or_create_collection(
                    COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
            return self._collection

    def forget(self) -> None:
        """Drop the in-memory vectors: this connection's own commits do not change its data_version."""
        self._exact = None

    def warm_up(self, dim: int) -> None:
        """Load what the first search needs (the vectors of a small index, else Chroma's HNSW index: ≈ 1 s
        for the laws' 126 k vectors), for a background thread while the main one loads jieba and BM25."""
        try:
            if self.exact:
                self._exact_vectors()
            else:
                self.collection.query(query_embeddings=[np.full(dim, dim ** -0.5, dtype=np.float32)], n_results=1,
                                      include=[])
        except Exception as err:  # noqa: BLE001 - a failed warm-up only means the first query pays
            log.debug("warm-up skipped: %s", err)

    # ---- writing ------------------------------------------------------------------------------
    def add(self, vec_ids: Sequence[str], vectors: Sequence[np.ndarray], clauses: Sequence[Clause]) -> None:
        for start in range(0, len(vec_ids), 1000):
            end = start + 1000
            self.collection.upsert(
                ids=list(vec_ids[start:end]), embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                metadatas=[{"doc_id": c.doc_id, "label": c.label, "clause_id": c.clause_id} for c in clauses[start:end]],
            )

    def delete(self, vec_ids: Sequence[str]) -> None:
        for i in range(0, len(vec_ids), 1000):
            self.collection.delete(ids=list(vec_ids[i : i + 1000]))

    def all_ids(self) -> list[str]:
        """Every vector id in Chroma, referenced or not."""
        ids: list[str] = []
        for offset in range(0, self.collection.count(), 5000):
            ids += self.collection.get(include=[], limit=5000, offset=offset)["ids"]
        return ids

    def orphan_ids(self) -> list[str]:
        """Vectors in Chroma that no committed clause points at (left by a killed ingest)."""
        if self.collection.count() == self.store.count():  # every clause has its own vector in Chroma
            return []
        refs = self.store.vector_refs()
        return sorted(v for v in self.all_ids() if v not in refs)

    def restore_written(self) -> int:
        """The vectors of the documents an interrupted ingest committed (newest first, up to RECHECK_MAX) that
        Chroma lacks or whose search does not find them are written again, from Chroma's record of them or
        from the vector cache. Chroma persists its search index in batches, so a process killed right after
        a commit may leave a stored vector its search misses."""
        rows = self.store.written_vectors(RECHECK_MAX)
        if not rows:
            return 0
        stored = self.collection.get(ids=[v for v, _ in rows], include=["embeddings"])
        vectors = dict(zip(stored["ids"], stored["embeddings"], strict=True))
        n = min(ORPHAN_MARGIN, self.collection.count())
        lost = []
        for start in range(0, len(stored["ids"]), 100):
            ids = stored["ids"][start : start + 100]
            found = self.collection.query(query_embeddings=[vectors[v] for v in ids], n_results=n, include=[])["ids"]
            lost += [v for v, near in zip(ids, found, strict=True) if v not in near]
        missing = [(v, data) for v, data in rows if v not in vectors]
        vectors.update(self._cached_vectors(missing))
        again = [v for v in (*lost, *(v for v, _ in missing)) if v in vectors]
        if lost:
            self.collection.delete(ids=lost)
        clauses = self.store.clauses_of_vectors(again)
        self.add(again, [vectors[v] for v in again], [clauses[v] for v in again])
        return len(again)

    def _cached_vectors(self, rows: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """The vector cache's vectors for `rows` (vec_id, clause record), each checked against the digest in its
        vector id, so it is the very vector Chroma holds."""
        path = self.data_dir / VECTOR_CACHE
        if not rows or not path.exists():
            return {}
        wanted: dict[str, list[str]] = {}  # cache key → vector ids (clauses whose embedded text is the same)
        try:
            cache = VectorCache(path, self.embedder, read_only=True)
            try:
                for vec_id, data in rows:
                    wanted.setdefault(cache.key(embed_text(to_clause(data), self.embed_chars)), []).append(vec_id)
                found = cache.get_many(list(wanted))
            finally:
                cache.close()
        except sqlite3.Error as err:
            log.debug("vector cache not read: %s", err)
            return {}
        vectors = {}
        for key, vector in found.items():
            digest = hashlib.sha1(vector.tobytes()).hexdigest()[:16]
            vectors.update((v, vector) for v in wanted[key] if v.endswith("@" + digest))
        return vectors

    # ---- searching ----------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, cosine similarity) of the k nearest committed clauses."""
        committed = self.store.count()
        k = min(k, committed)
        if k <= 0:
            return []
        if self.exact:
            exact = self._exact_vectors()
            return exact.search(vector, k, doc_ids) if exact is not None else []
        if doc_ids and len(doc_ids) > FILTER_IN_CHROMA_MAX:
            # a long allow-list (all documents but another province's) is slow as a Chroma filter: search
            # unfiltered and keep the allowed, unless too few of the nearest are allowed
            hits, _ = self._hits(vector, 4 * k + ORPHAN_MARGIN, None, allowed=set(doc_ids))
            if len(hits) >= k:
                return hits[:k]
        where = {"doc_id": {"$in": list(doc_ids)}} if doc_ids else None
        hits, full = self._hits(vector, k + ORPHAN_MARGIN, where)
        if len(hits) < k and full:
            # vectors no committed clause owns (a killed or running ingest's) took places: ask for that many more
            hits, _ = self._hits(vector, k + max(0, self.collection.count() - committed), where)
        return hits[:k]

    def _exact_vectors(self) -> ExactVectors | None:
        """The committed clauses' vectors in memory, read again when any connection has committed since: another
        process's ingest is seen at the next query. None while Chroma cannot be read.

        They are read from the ingest's vector cache, Chroma giving only what the cache lacks: an embedded
        Chroma client does not see what another process (an ingest from the command line while the app runs)
        wrote after it opened ("Error finding id" until restarted), and a new process need not import chromadb."""
        with self._lock:
            exact = self._exact
        version = self.store.data_version()
        if exact is None or exact.version != version:
            rows = self.store.vector_rows()
            vectors: dict[str, Any] = self._cached_vectors(self.store.vector_records())
            ids = [v for v, _, _ in rows if v not in vectors]
            for start in range(0, len(ids), 5000):
                part = ids[start : start + 5000]
                got = self._read_chroma(lambda part=part: self.collection.get(ids=part, include=["embeddings"]))
                if got is None:
                    return None
                vectors.update(zip(got["ids"], got["embeddings"], strict=True))
            exact = ExactVectors.build(rows, vectors, version)
            with self._lock:
                self._exact = exact
        return exact

    def _hits(self, vector: np.ndarray, n: int, where: dict | None,
              allowed: set[str] | None = None) -> tuple[list[tuple[str, float]], bool]:
        """(clause_id, cosine) of the n nearest vectors that belong to committed clauses (of `allowed`
        documents only, when given); and whether Chroma returned all n (so more may exist)."""
        res = self._read_chroma(lambda: self.collection.query(query_embeddings=[vector], n_results=n, where=where,
                                                               include=["distances"]))
        if res is None:
            return [], False
        found = self.store.owners_of_vectors(res["ids"][0])
        hits = [(found[v][0], 1.0 - d) for v, d in zip(res["ids"][0], res["distances"][0], strict=True)
                if v in found and (allowed is None or found[v][1] in allowed)]
        return hits, len(res["ids"][0]) >= n

    def _read_chroma(self, read: Callable[[], Any], attempts: int = 3) -> Any | None:
        """A Chroma read, retried when another process's ingest is mid-write.

        Chroma's embedded store is written by one process at a time; a reader in another process can meet a
        segment being flushed ("Error finding id"). If it persists, this returns None and says so in the log:
        the query goes without dense candidates (BM25 still answers) rather than failing."""
        from chromadb.errors import ChromaError

        for attempt in range(attempts):
            try:
                return read()
            except ChromaError as err:
                if attempt == attempts - 1:
                    log.warning("dense search skipped: Chroma is being written by another process (%s)", err)
                    return None
                time.sleep(0.1 * (attempt + 1))
                with self._lock:
                    self._collection = None
        raise AssertionError("unreachable")
