"""The on-disk clause index: Chroma vectors, jieba BM25, clause records and the manifest.

Layout of a data dir:
    manifest.json    embedder, dimension, parser version, every document with its content hash
    clauses.sqlite   clause records (the source of truth for texts and labels) and their BM25 tokens
    chroma/          Chroma PersistentClient (unless a Chroma server URL is configured)
    bm25/            bm25s index over the clause tokens + ids.json (rebuilt after every change)
    vectors.sqlite   vector cache keyed by embedder + text hash: the same text is never embedded twice
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, PolicyRagError
from rag.records import Clause

FORMAT_VERSION = 1
COLLECTION = "clauses"
MANIFEST = "manifest.json"


@dataclass
class Manifest:
    """What the index was built with, and which documents it holds."""

    embedder: str
    dim: int
    parser_version: str
    embed_chars: int
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    updated: float = 0.0

    @classmethod
    def read(cls, data_dir: Path) -> Manifest | None:
        path = data_dir / MANIFEST
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(**raw)

    def write(self, data_dir: Path) -> None:
        """Atomic write: a crash leaves the previous manifest or the new one, never half of one."""
        self.updated = time.time()
        tmp = data_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.__dict__, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, data_dir / MANIFEST)

    def identity(self) -> tuple[str, int, str, int]:
        return (self.embedder, self.dim, self.parser_version, self.embed_chars)


def _clause_to_row(clause: Clause, order: int, tokens: list[str]) -> tuple:
    data = clause.to_dict() | {"path": list(clause.path), "source": clause.source, "meta": clause.meta}
    return (clause.clause_id, clause.doc_id, order, json.dumps(data, ensure_ascii=False), " ".join(tokens))


def _row_to_clause(data: str) -> Clause:
    d = json.loads(data)
    return Clause(
        clause_id=d["clause_id"], doc_id=d["doc_id"], title=d["title"], path=tuple(d["path"]),
        headings=tuple(d["headings"]), text=d["text"], start=d["start"], end=d["end"], page=d["page"],
        source=d.get("source", ""), meta=d.get("meta", {}),
    )


class VectorCache:
    """Vectors by (embedder, text) hash, so re-ingesting unchanged text costs nothing."""

    def __init__(self, path: Path, embedder_name: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")
        self._salt = embedder_name + "\n"

    def key(self, text: str) -> str:
        return hashlib.sha1((self._salt + text).encode("utf-8")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, v FROM vec WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                ((k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items),
            )

    def close(self) -> None:
        self._db.close()


class ClauseIndex:
    """Read and write one data dir. Only this module knows the on-disk format."""

    def __init__(self, data_dir: Path, manifest: Manifest, chroma_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self._chroma_url = chroma_url
        self._db = sqlite3.connect(self.data_dir / "clauses.sqlite", check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS clauses (clause_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL,"
            " ord INTEGER NOT NULL, data TEXT NOT NULL, tokens TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS clauses_doc ON clauses (doc_id, ord)")
        self._collection = None
        self._bm25 = None
        self._bm25_ids: list[str] = []
        self._bm25_pos: dict[str, int] = {}

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: Path, *, embedder: str, parser_version: str, embed_chars: int,
             chroma_url: str | None = None) -> ClauseIndex:
        """Open an existing index for querying; raise if missing or built differently."""
        data_dir = Path(data_dir)
        manifest = Manifest.read(data_dir)
        if manifest is None:
            raise IndexMissingError(f"no index in {data_dir}/; run `policy-rag ingest` first")
        wanted = (embedder, parser_version, embed_chars)
        have = (manifest.embedder, manifest.parser_version, manifest.embed_chars)
        if manifest.format != FORMAT_VERSION or have != wanted:
            raise IndexMismatchError(
                f"the index in {data_dir}/ was built with embedder={have[0]}, parser v{have[1]}, "
                f"embed_chars={have[2]}; this run uses embedder={wanted[0]}, parser v{wanted[1]}, "
                f"embed_chars={wanted[2]}. Re-ingest: `policy-rag ingest --data-dir {data_dir}`"
            )
        return cls(data_dir, manifest, chroma_url)

    @classmethod
    def open_for_write(cls, data_dir: Path, *, embedder: str, dim: int, parser_version: str,
                       embed_chars: int, chroma_url: str | None = None) -> ClauseIndex:
        """Open (or create) for ingest; an index built differently is rebuilt from scratch."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = Manifest(embedder=embedder, dim=dim, parser_version=parser_version, embed_chars=embed_chars)
        manifest = Manifest.read(data_dir)
        if manifest is not None and (manifest.format, *manifest.identity()) != (FORMAT_VERSION, *fresh.identity()):
            cls._wipe(data_dir, chroma_url)
            manifest = None
        return cls(data_dir, manifest or fresh, chroma_url)

    @staticmethod
    def _wipe(data_dir: Path, chroma_url: str | None) -> None:
        for name in ("clauses.sqlite", MANIFEST):
            (data_dir / name).unlink(missing_ok=True)
        for name in ("chroma", "bm25"):
            shutil.rmtree(data_dir / name, ignore_errors=True)
        if chroma_url:
            client = _chroma_client(data_dir, chroma_url)
            if COLLECTION in [c.name for c in client.list_collections()]:
                client.delete_collection(COLLECTION)

    # ---- Chroma ---------------------------------------------------------------------------
    @property
    def collection(self):
        if self._collection is None:
            client = _chroma_client(self.data_dir, self._chroma_url)
            # embedding_function=None: Chroma's default model must never load (it downloads)
            self._collection = client.get_or_create_collection(
                COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        return self._collection

    # ---- writing --------------------------------------------------------------------------
    def replace_document(self, doc_id: str, clauses: Sequence[Clause], vectors: np.ndarray,
                         tokens: Sequence[list[str]], entry: dict[str, Any]) -> None:
        """Swap a document's clauses for new ones (already fully parsed and embedded)."""
        old_ids = set(self.clause_ids(doc_id))
        new_ids = [c.clause_id for c in clauses]
        if clauses:
            for i in range(0, len(clauses), 1000):
                part = clauses[i : i + 1000]
                self.collection.upsert(
                    ids=new_ids[i : i + 1000],
                    embeddings=vectors[i : i + 1000],
                    metadatas=[{"doc_id": c.doc_id, "label": c.label} for c in part],
                )
        stale = sorted(old_ids - set(new_ids))
        if stale:
            self.collection.delete(ids=stale)
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            self._db.executemany(
                "INSERT INTO clauses VALUES (?, ?, ?, ?, ?)",
                (_clause_to_row(c, i, t) for i, (c, t) in enumerate(zip(clauses, tokens, strict=True))),
            )
        self.manifest.documents[doc_id] = entry

    def remove_document(self, doc_id: str) -> None:
        ids = self.clause_ids(doc_id)
        if ids:
            self.collection.delete(ids=ids)
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
        self.manifest.documents.pop(doc_id, None)

    def rebuild_bm25(self) -> None:
        """Rebuild the BM25 index from the stored tokens into a new folder, then swap it in."""
        import bm25s

        ids, corpus = [], []
        for clause_id, tokens in self._db.execute("SELECT clause_id, tokens FROM clauses ORDER BY doc_id, ord"):
            ids.append(clause_id)
            corpus.append(tokens.split(" ") if tokens else [])
        tmp = self.data_dir / "bm25.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if ids:
            retriever = bm25s.BM25()
            retriever.index(corpus, show_progress=False)
            retriever.save(str(tmp))
        (tmp / "ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        old = self.data_dir / "bm25"
        trash = self.data_dir / "bm25.old"
        shutil.rmtree(trash, ignore_errors=True)
        if old.exists():
            os.replace(old, trash)
        os.replace(tmp, old)
        shutil.rmtree(trash, ignore_errors=True)
        self._bm25 = None

    def save(self) -> None:
        self.manifest.write(self.data_dir)

    # ---- reading --------------------------------------------------------------------------
    def clause_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT clause_id FROM clauses WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def clauses(self, doc_ids: Iterable[str] | None = None) -> Iterable[Clause]:
        """All clauses in document order (optionally of some documents only)."""
        if doc_ids is None:
            rows = self._db.execute("SELECT data FROM clauses ORDER BY doc_id, ord")
        else:
            wanted = list(doc_ids)
            marks = ",".join("?" * len(wanted))
            rows = self._db.execute(f"SELECT data FROM clauses WHERE doc_id IN ({marks}) ORDER BY doc_id, ord", wanted)
        for (data,) in rows:
            yield _row_to_clause(data)

    def get(self, clause_ids: Sequence[str]) -> dict[str, Clause]:
        out: dict[str, Clause] = {}
        for i in range(0, len(clause_ids), 500):
            chunk = list(clause_ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for cid, data in self._db.execute(f"SELECT clause_id, data FROM clauses WHERE clause_id IN ({marks})", chunk):
                out[cid] = _row_to_clause(data)
        return out

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM clauses").fetchone()[0]

    def find_documents(self, query: str) -> list[str]:
        """Doc ids whose id equals `query` or whose title/id contains it."""
        docs = self.manifest.documents
        if query in docs:
            return [query]
        return [d for d, e in docs.items() if query in e.get("title", "") or query in d]

    def search_dense(self, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, cosine similarity) of the k nearest clauses."""
        k = min(k, self.count())
        if k <= 0:
            return []
        where = {"doc_id": {"$in": list(doc_ids)}} if doc_ids else None
        res = self.collection.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        return [(cid, 1.0 - dist) for cid, dist in zip(res["ids"][0], res["distances"][0], strict=True)]

    def search_bm25(self, tokens: list[str], k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, BM25 score) of the k best-scoring clauses with a score above zero."""
        self._load_bm25()
        if self._bm25 is None or not tokens:
            return []
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        if doc_ids is not None:
            mask = np.zeros(len(scores), dtype=bool)
            allowed = set(doc_ids)
            for cid, doc in self._bm25_docs():
                if doc in allowed:
                    mask[self._bm25_pos[cid]] = True
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._bm25_ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _bm25_docs(self) -> Iterable[tuple[str, str]]:
        return self._db.execute("SELECT clause_id, doc_id FROM clauses")

    def _load_bm25(self) -> None:
        if self._bm25 is not None:
            return
        folder = self.data_dir / "bm25"
        ids_path = folder / "ids.json"
        if not ids_path.exists():
            return
        import bm25s

        self._bm25_ids = json.loads(ids_path.read_text(encoding="utf-8"))
        self._bm25_pos = {cid: i for i, cid in enumerate(self._bm25_ids)}
        if self._bm25_ids:
            self._bm25 = bm25s.BM25.load(str(folder))

    def close(self) -> None:
        self._db.close()


def _chroma_client(data_dir: Path, chroma_url: str | None):
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
