"""The on-disk clause index: clause records and documents (the commit point), Chroma vectors, jieba BM25.

Layout of a data dir:
    clauses.sqlite   the commit point: identity (embedder, dim, parser version), every document with its
                     content hash, every clause record with its BM25 tokens and the id of its vector
    chroma/          Chroma PersistentClient (unless a Chroma server URL is configured)
    bm25/            bm25s index over the clause tokens + ids.json (derived: rebuilt after every change)
    manifest.json    a readable copy of clauses.sqlite's identity and documents (derived, written atomically)
    vectors.sqlite   vector cache keyed by embedder + text hash: the same text is never embedded twice

Crash safety (SIGKILL at any moment leaves the previous or the new state of every document):
- A document changes in one sqlite transaction (its clauses and its manifest entry together).
- Vector ids are content-addressed (`<clause_id>@<hash of the vector>`), and vectors are added to Chroma
  before the transaction and removed after it. So Chroma never changes a vector that a committed clause
  points at; a kill leaves at most unreferenced vectors ("orphans"), which queries skip and the next
  ingest deletes.
- BM25 and manifest.json are derived from sqlite. A reader whose BM25 folder disagrees with sqlite builds
  BM25 in memory from the stored tokens; the next ingest rewrites both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, PolicyRagError
from rag.records import Clause
from rag.tokens import VERSION as TOKENS_VERSION

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: documents in clauses.sqlite, content-addressed vector ids
# What the clause records were built with: the clause parser (ingest/clauses.py) 1, the BM25 tokens
# (rag/tokens.py), the embedded text 2 (embed_text). Changing any re-ingests; the vector cache keeps unchanged texts.
PARSER_VERSION = f"1+t{TOKENS_VERSION}+e2"
COLLECTION = "clauses"
MANIFEST = "manifest.json"
DB = "clauses.sqlite"
VECTOR_CACHE = "vectors.sqlite"
LEFTOVERS = ("bm25.tmp", "bm25.old", MANIFEST + ".tmp", DB + ".tmp")  # what a killed write may leave behind
FILTER_IN_CHROMA_MAX = 50  # longer document allow-lists are applied after the dense search
# Up to this many committed vectors, dense search is an exact dot product over an in-memory copy of them
# (policy corpus, 5,853 vectors: 0.5 ms a query against 1.6-2.4 ms for a Chroma query; 20 k: 30 MB, ≈ 1.7 ms);
# larger indexes (the laws' 126 k) query Chroma's HNSW index. Chroma stays the store either way.
EXACT_SEARCH_MAX = 20_000
RECHECK_MAX = 2_000  # vectors re-checked after an interrupted ingest: more than Chroma holds back unflushed
ORPHAN_MARGIN = 10  # dense search asks for this many more vectors than it needs, for uncommitted ones
KILL_ENV = "POLICY_RAG_TEST_KILL_AT"  # tests only: "<stage>[:<nth>]" SIGKILLs this process at that point
_IDENTITY_KEYS = ("format", "embedder", "dim", "parser_version", "embed_chars")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, entry TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clauses (clause_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL,"
    " ord INTEGER NOT NULL, vec_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL, tokens TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS clauses_doc ON clauses (doc_id, ord)",
    # documents committed by an ingest that has not finished, in order: repair re-checks their vectors
    "CREATE TABLE IF NOT EXISTS written (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL)",
)


FILE_PENDING = None  # an entry's file_hash while other documents of its file are still to be written


@dataclass(frozen=True)
class FileDone:
    """A corpus file whose every document is committed: its hash and all the document ids it holds."""

    file: str
    digest: str
    doc_ids: tuple[str, ...]


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
        """The manifest.json copy (None when missing); clauses.sqlite is what the index holds."""
        path = Path(data_dir) / MANIFEST
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


_passed: Counter[str] = Counter()


def kill_point(stage: str) -> None:
    """Crash tests: signal this process at `stage` when POLICY_RAG_TEST_KILL_AT names it: `stage` or `stage:3`
    (the 3rd time) sends SIGKILL, `stage:3:TERM` or `stage:1:INT` that signal instead."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    name, _, rest = wanted.partition(":")
    nth, _, signame = rest.partition(":")
    if name == stage:
        _passed[stage] += 1
        if _passed[stage] == int(nth or 1):
            os.kill(os.getpid(), getattr(signal, "SIG" + (signame or "KILL")))


def vector_id(clause_id: str, vector: np.ndarray) -> str:
    """`<clause_id>@<hash of the vector>`: a changed clause gets a new id, so a committed vector never changes."""
    digest = hashlib.sha1(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()[:16]
    return f"{clause_id}@{digest}"


def _clause_to_row(clause: Clause, order: int, vec_id: str, tokens: list[str]) -> tuple:
    data = clause.to_dict() | {"path": list(clause.path), "source": clause.source, "meta": clause.meta}
    return (clause.clause_id, clause.doc_id, order, vec_id, json.dumps(data, ensure_ascii=False), " ".join(tokens))


def _row_to_clause(data: str) -> Clause:
    d = json.loads(data)
    return Clause(
        clause_id=d["clause_id"], doc_id=d["doc_id"], title=d["title"], path=tuple(d["path"]),
        headings=tuple(d["headings"]), text=d["text"], start=d["start"], end=d["end"], page=d["page"],
        source=d.get("source", ""), meta=d.get("meta", {}),
    )


def _connect(path: Path) -> sqlite3.Connection:
    # WAL: readers (the chat server) never block the ingest's writes, nor it theirs
    db = sqlite3.connect(path, check_same_thread=False, timeout=30)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def _stored_manifest(db: sqlite3.Connection) -> Manifest | None:
    """Identity and documents as committed in clauses.sqlite; None for a format-1 or unfinished file."""
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        documents = {d: json.loads(e) for d, e in db.execute("SELECT doc_id, entry FROM documents ORDER BY doc_id")}
    except sqlite3.DatabaseError:  # no meta table: an index of format 1
        return None
    if not all(key in meta for key in _IDENTITY_KEYS):
        return None
    return Manifest(embedder=meta["embedder"], dim=int(meta["dim"]), parser_version=meta["parser_version"],
                    embed_chars=int(meta["embed_chars"]), documents=documents, format=int(meta["format"]))


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (the manifest records it per corpus file)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TITLE_CHARS = 16
HEADING_CHARS = 16


def embed_text(clause: Clause, embed_chars: int) -> str:
    """What the embedder sees: the start of the title and of the innermost heading, then the clause text,
    cut to `embed_chars` characters.

    A whole title and heading path would fill the 64 default characters on their own (a policy notice's
    title runs to ~24 characters), giving every clause of a document nearly the same vector. Measured,
    passage hit@5 with whole title + headings → this: eval/qa.jsonl 0.958 → 0.969, ncp_policy_qa
    0.887 → 0.900, legal_dc 0.900 → 0.900 (text alone: 0.958 / 0.873 / 0.900; 24 title characters and
    no heading: 0.969 / 0.897 / 0.890).
    """
    parts = [clause.title[:TITLE_CHARS], *(h[:HEADING_CHARS] for h in clause.headings[-1:]), clause.text]
    return "\n".join(p for p in parts if p)[:embed_chars]


class VectorCache:
    """Vectors by (embedder, text) hash, so re-ingesting unchanged text costs nothing."""

    def __init__(self, path: Path, embedder_name: str, *, read_only: bool = False) -> None:
        if read_only:  # a reader: never creates the file or its table, never takes a write lock
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                       timeout=5)
        else:
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

    def __init__(self, data_dir: Path, manifest: Manifest, chroma_url: str | None = None,
                 db: sqlite3.Connection | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self._chroma_url = chroma_url
        self._db = db or _connect(self.data_dir / DB)
        self._collection = None
        self._collection_lock = threading.Lock()
        self._dirty = False
        self._bm25 = None
        self._bm25_ids: list[str] = []
        self._bm25_doc_codes: dict[str, int] = {}
        self._bm25_doc_of = np.zeros(0, dtype=np.int32)
        self._exact: ExactVectors | None = None
        self._memory: tuple[int, dict[str, Clause] | None] | None = None  # (data_version, clauses of a small index)
        self._hold = False  # hold_in_memory() sets it
        self._prefetched: dict[str, Any] | None = None  # vectors read ahead by warm_up()
        self._vectors_lock = threading.Lock()
        self._seen_version = self._data_version()
        self._bm25_stamp: tuple[int, int] | None = None  # the BM25 folder loaded (inode, mtime of ids.json)

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: Path, *, embedder: str, parser_version: str, embed_chars: int,
             chroma_url: str | None = None) -> ClauseIndex:
        """Open an existing index for querying; raise if missing or built differently."""
        index = cls.inspect(data_dir, chroma_url)
        manifest = index.manifest
        wanted = (embedder, parser_version, embed_chars)
        have = (manifest.embedder, manifest.parser_version, manifest.embed_chars)
        if have != wanted:
            index.close()
            raise IndexMismatchError(
                f"the index in {data_dir}/ was built with embedder={have[0]}, parser v{have[1]}, "
                f"embed_chars={have[2]}; this run uses embedder={wanted[0]}, parser v{wanted[1]}, "
                f"embed_chars={wanted[2]}. Re-ingest: `policy-rag ingest --data-dir {data_dir}`"
            )
        return index

    @classmethod
    def inspect(cls, data_dir: Path, chroma_url: str | None = None) -> ClauseIndex:
        """Open an existing index whatever it was built with (for `policy-rag check`)."""
        data_dir = Path(data_dir)
        if not (data_dir / DB).is_file():
            if (data_dir / MANIFEST).is_file():  # format 1 kept no identity in its sqlite
                raise cls._old_format(data_dir)
            raise IndexMissingError(f"no index in {data_dir}/; run `policy-rag ingest` first")
        db = _connect(data_dir / DB)
        manifest = _stored_manifest(db)
        if manifest is None or manifest.format != FORMAT_VERSION:
            db.close()
            raise cls._old_format(data_dir)
        return cls(data_dir, manifest, chroma_url, db)

    @staticmethod
    def _old_format(data_dir: Path) -> IndexMismatchError:
        return IndexMismatchError(
            f"the index in {data_dir}/ has an older on-disk format (this version writes format {FORMAT_VERSION}). "
            f"Re-ingest: `policy-rag ingest --data-dir {data_dir}`"
        )

    @classmethod
    def open_for_write(cls, data_dir: Path, *, embedder: str, dim: int, parser_version: str,
                       embed_chars: int, chroma_url: str | None = None) -> ClauseIndex:
        """Open (or create) for ingest under the ingest lock; repairs what a killed ingest left behind.

        An index built differently (other embedder, parser version or format) is rebuilt from scratch.
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = Manifest(embedder=embedder, dim=dim, parser_version=parser_version, embed_chars=embed_chars)
        stored = None
        if (data_dir / DB).is_file():
            db = _connect(data_dir / DB)
            stored = _stored_manifest(db)
            db.close()
        if stored is None or (stored.format, *stored.identity()) != (FORMAT_VERSION, *fresh.identity()):
            cls._create(data_dir, fresh, chroma_url)
        index = cls.inspect(data_dir, chroma_url)
        with index._db:  # an index written by an older release lacks the table of written documents
            index._db.execute(_SCHEMA[-1])
        index.repair()
        return index

    @classmethod
    def _create(cls, data_dir: Path, manifest: Manifest, chroma_url: str | None) -> None:
        """A new empty index, made in a temporary file and renamed into place: it exists whole or not at all."""
        cls._wipe(data_dir, chroma_url)
        tmp = data_dir / (DB + ".tmp")
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(tmp)
        db.execute("PRAGMA journal_mode = WAL")
        with db:
            for statement in _SCHEMA:
                db.execute(statement)
            values = {"format": FORMAT_VERSION, **dict(zip(_IDENTITY_KEYS[1:], manifest.identity(), strict=True))}
            db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
        db.close()
        os.replace(tmp, data_dir / DB)
        manifest.write(data_dir)

    @staticmethod
    def _wipe(data_dir: Path, chroma_url: str | None) -> None:
        # clauses.sqlite first: it is the commit point, so whatever a kill leaves after it is unreferenced
        for name in (DB, DB + "-wal", DB + "-shm", MANIFEST):
            (data_dir / name).unlink(missing_ok=True)
        for name in ("chroma", "bm25", *LEFTOVERS):
            path = data_dir / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        if chroma_url:
            client = _chroma_client(data_dir, chroma_url)
            if COLLECTION in [c.name for c in client.list_collections()]:
                client.delete_collection(COLLECTION)

    def repair(self) -> list[str]:
        """Clean up after a killed ingest: orphan vectors, stale BM25, temporary files, manifest.json."""
        done = []
        for name in LEFTOVERS:
            path = self.data_dir / name
            if path.exists():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                done.append(f"removed {name}")
        orphans = self.orphan_vector_ids() if self.interrupted() else []
        for i in range(0, len(orphans), 1000):
            self.collection.delete(ids=orphans[i : i + 1000])
        if orphans:
            done.append(f"deleted {len(orphans)} orphan vectors")
        restored = self._restore_written_vectors() if self.interrupted() else 0
        if restored:
            done.append(f"wrote {restored} vectors again that Chroma had lost")
        if self.bm25_ids_on_disk() != self.all_clause_ids():
            self.rebuild_bm25()
            done.append("rebuilt BM25")
        if not self.manifest_file_agrees():
            self.save()
            done.append("rewrote manifest.json")
        return done

    def _restore_written_vectors(self) -> int:
        """The vectors of the documents an interrupted ingest committed (newest first, up to RECHECK_MAX) that
        Chroma lacks or whose search does not find them are written again, from Chroma's record of them or
        from the vector cache. Chroma persists its search index in batches, so a process killed right after
        a commit may leave a stored vector its search misses."""
        rows = self._db.execute(
            "SELECT c.vec_id, c.data FROM written w JOIN clauses c ON c.doc_id = w.doc_id ORDER BY w.seq DESC, c.ord"
            " LIMIT ?", (RECHECK_MAX,)).fetchall()
        rows = list({v: (v, data) for v, data in rows}.values())
        if not rows:
            return 0
        stored = self.collection.get(ids=[v for v, _ in rows], include=["embeddings", "metadatas"])
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
        for start in range(0, len(again), 1000):
            part = again[start : start + 1000]
            refs = self.vector_refs_of(part)
            self.collection.add(ids=part, embeddings=np.asarray([vectors[v] for v in part], dtype=np.float32),
                                metadatas=[{"doc_id": refs[v][1], "label": refs[v][2], "clause_id": refs[v][0]}
                                           for v in part])
        return len(again)

    def vector_refs_of(self, vec_ids: Sequence[str]) -> dict[str, tuple[str, str, str]]:
        """vec_id → (clause_id, doc_id, label) of committed clauses."""
        marks = ",".join("?" * len(vec_ids))
        rows = self._db.execute(f"SELECT vec_id, data FROM clauses WHERE vec_id IN ({marks})", list(vec_ids))
        return {v: (c.clause_id, c.doc_id, c.label) for v, c in ((v, _row_to_clause(d)) for v, d in rows)}

    # ---- Chroma ---------------------------------------------------------------------------
    @property
    def collection(self):
        with self._collection_lock:  # warm_up() may be opening it in another thread
            if self._collection is None:
                client = _chroma_client(self.data_dir, self._chroma_url)
                # embedding_function=None: Chroma's default model must never load (it downloads)
                self._collection = client.get_or_create_collection(
                    COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
            return self._collection

    def warm_up(self, dim: int) -> None:
        """Load what the first dense search needs now, while the main thread loads jieba and BM25: every
        vector of a small index (see EXACT_SEARCH_MAX; from the vector cache, else from Chroma), or else
        Chroma's vector index (≈ 1 s for the laws' 126 k vectors). Safe in a background thread: SQLite
        through connections of its own."""
        try:
            if not self.manifest.documents:
                return
            db = _connect(self.data_dir / DB)
            try:
                committed = db.execute("SELECT COUNT(*) FROM clauses").fetchone()[0]
                if committed <= EXACT_SEARCH_MAX:
                    with self._vectors_lock:
                        self._prefetched = self._read_vectors(db, None)
                    return
            finally:
                db.close()
            vector = np.full(dim, dim ** -0.5, dtype=np.float32)
            self.collection.query(query_embeddings=[vector], n_results=1, include=[])
        except Exception as err:  # noqa: BLE001 - a failed warm-up only means the first query pays
            log.debug("warm-up skipped: %s", err)

    # ---- writing --------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def interrupted(self) -> bool:
        """An ingest wrote to this index and has not finished (it was killed, or is still running)."""
        return self._meta("dirty") == "1"

    def _mark_dirty(self) -> None:
        """Committed before this run's first Chroma write and cleared by save(): a clean index needs no orphan scan."""
        if not self._dirty:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dirty', '1')")
            self._dirty = True

    def replace_document(self, doc_id: str, clauses: Sequence[Clause], vectors: np.ndarray,
                         tokens: Sequence[list[str]], entry: dict[str, Any],
                         completes: FileDone | None = None) -> None:
        """Swap a document's clauses for new ones (already fully parsed and embedded) in one commit; when it is
        the last of its file to be written, `completes` marks the whole file done in that same commit."""
        self._mark_dirty()
        self._forget_committed()
        old = set(self._vector_ids(doc_id))
        vec_ids = [vector_id(c.clause_id, v) for c, v in zip(clauses, vectors, strict=True)]
        # 1. vectors no committed clause points at (a vector already in `old` is unchanged: skip it)
        new = [(i, c) for i, c in enumerate(clauses) if vec_ids[i] not in old]
        for start in range(0, len(new), 1000):
            part = new[start : start + 1000]
            self.collection.upsert(
                ids=[vec_ids[i] for i, _ in part],
                embeddings=np.asarray([vectors[i] for i, _ in part], dtype=np.float32),
                metadatas=[{"doc_id": c.doc_id, "label": c.label, "clause_id": c.clause_id} for _, c in part],
            )
        kill_point("vectors-added")
        # 2. the commit point: the document's clauses and its manifest entry together
        rows = [_clause_to_row(c, i, vec_ids[i], t) for i, (c, t) in enumerate(zip(clauses, tokens, strict=True))]
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            self._db.executemany("INSERT INTO clauses VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?)",
                             (doc_id, json.dumps(entry, ensure_ascii=False)))
            self._db.execute("INSERT INTO written (doc_id) VALUES (?)", (doc_id,))
            if completes is not None:
                self._mark_file_done(completes)
        self.manifest.documents[doc_id] = entry
        if completes is not None:
            self._apply_file_done(completes)
        self._forget_committed()
        kill_point("document-committed")
        # 3. the old vectors are unreferenced now
        self._delete_vectors(sorted(old - set(vec_ids)))

    def complete_file(self, done: FileDone) -> None:
        """Mark a file whose documents are all committed already (none of them changed) as done."""
        self._mark_dirty()
        with self._db:
            self._mark_file_done(done)
        self._apply_file_done(done)
        kill_point("file-completed")

    def _mark_file_done(self, done: FileDone) -> None:
        """Inside a transaction: the file's hash and document count go into each of its documents' entries.

        A file's hash in an entry is what makes the next ingest skip the file, so it is written for all of the
        file's documents at once, and only when the last of them is committed: a collection stopped half-way
        keeps entries without it (see `FILE_PENDING`) and is read again."""
        for doc_id in done.doc_ids:
            entry = self._entry_for(doc_id) | {"file_hash": done.digest, "file_docs": len(done.doc_ids)}
            self._db.execute("UPDATE documents SET entry = ? WHERE doc_id = ?",
                             (json.dumps(entry, ensure_ascii=False), doc_id))

    def _entry_for(self, doc_id: str) -> dict[str, Any]:
        row = self._db.execute("SELECT entry FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def _apply_file_done(self, done: FileDone) -> None:
        for doc_id in done.doc_ids:
            if doc_id in self.manifest.documents:
                self.manifest.documents[doc_id].update(file_hash=done.digest, file_docs=len(done.doc_ids))

    def remove_document(self, doc_id: str) -> None:
        self._mark_dirty()
        self._forget_committed()
        old = self._vector_ids(doc_id)
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        self.manifest.documents.pop(doc_id, None)
        self._forget_committed()
        kill_point("document-removed")
        self._delete_vectors(old)

    def _forget_committed(self) -> None:
        """Drop the in-memory copies of the committed state: this connection's own commits do not change
        its data_version, so the next query must not take them for current."""
        self._exact = None
        self._memory = None

    def _delete_vectors(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), 1000):
            self.collection.delete(ids=list(ids[i : i + 1000]))

    def rebuild_bm25(self) -> None:
        """Rebuild the BM25 index from the stored tokens into a new folder, then swap it in."""
        ids, corpus = self._tokens()
        tmp = self.data_dir / "bm25.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if ids:
            _bm25_from(corpus).save(str(tmp))
        (tmp / "ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        kill_point("bm25-written")
        old = self.data_dir / "bm25"
        trash = self.data_dir / "bm25.old"
        shutil.rmtree(trash, ignore_errors=True)
        if old.exists():
            os.replace(old, trash)
        kill_point("bm25-swapping")
        os.replace(tmp, old)
        shutil.rmtree(trash, ignore_errors=True)
        self._bm25 = None

    def save(self) -> None:
        """Store in-memory manifest entry changes (e.g. a refreshed file hash), then write manifest.json."""
        with self._db:
            self._db.executemany(
                "UPDATE documents SET entry = ? WHERE doc_id = ?",
                [(json.dumps(e, ensure_ascii=False), d) for d, e in self.manifest.documents.items()],
            )
            self._db.execute("DELETE FROM meta WHERE key = 'dirty'")
            self._db.execute("DELETE FROM written")
        self._dirty = False
        kill_point("manifest-writing")
        self._committed().write(self.data_dir)

    def _committed(self) -> Manifest:
        manifest = _stored_manifest(self._db)
        assert manifest is not None  # opened through inspect(), which checked
        return manifest

    def manifest_file_agrees(self) -> bool:
        """manifest.json holds the identity and documents that clauses.sqlite has committed."""
        try:
            copy = Manifest.read(self.data_dir)
        except (OSError, ValueError, TypeError):
            return False
        committed = self._committed()
        return copy is not None and copy.documents == committed.documents and (
            (copy.format, *copy.identity()) == (committed.format, *committed.identity())
        )

    # ---- reading --------------------------------------------------------------------------
    def clause_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT clause_id FROM clauses WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def _vector_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT vec_id FROM clauses WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def all_clause_ids(self) -> list[str]:
        """Every clause id in BM25 order (document, then position)."""
        return [r[0] for r in self._db.execute("SELECT clause_id FROM clauses ORDER BY doc_id, ord")]

    def vector_refs(self) -> dict[str, tuple[str, str]]:
        """vec_id → (clause_id, doc_id) for every committed clause."""
        return {v: (c, d) for v, c, d in self._db.execute("SELECT vec_id, clause_id, doc_id FROM clauses")}

    def chroma_ids(self) -> list[str]:
        """Every vector id in Chroma, referenced or not."""
        ids: list[str] = []
        total = self.collection.count()
        for offset in range(0, total, 5000):
            ids += self.collection.get(include=[], limit=5000, offset=offset)["ids"]
        return ids

    def orphan_vector_ids(self) -> list[str]:
        """Vectors in Chroma that no committed clause points at (left by a killed ingest)."""
        if self.collection.count() == self.count():  # every clause has its own vector in Chroma
            return []
        refs = self.vector_refs()
        return sorted(v for v in self.chroma_ids() if v not in refs)

    def bm25_ids_on_disk(self) -> list[str] | None:
        """The clause ids of the BM25 folder (None when missing or unreadable)."""
        try:
            ids = json.loads((self.data_dir / "bm25" / "ids.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return ids if isinstance(ids, list) else None

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every committed document's manifest entry, read now from clauses.sqlite."""
        return {d: json.loads(e) for d, e in self._db.execute("SELECT doc_id, entry FROM documents ORDER BY doc_id")}

    def rows(self) -> Iterable[tuple[str, str, str, str]]:
        """(clause_id, doc_id, vec_id, data) of every committed clause, for `policy-rag check`."""
        return self._db.execute("SELECT clause_id, doc_id, vec_id, data FROM clauses ORDER BY doc_id, ord")

    def integrity(self) -> str:
        """SQLite's own verdict on clauses.sqlite: "ok" or what is damaged."""
        return "; ".join(r[0] for r in self._db.execute("PRAGMA integrity_check"))

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

    def first_clause(self, doc_id: str) -> Clause | None:
        """The document's opening clause (its 导语 or first article), or None."""
        row = self._db.execute("SELECT data FROM clauses WHERE doc_id = ? ORDER BY ord LIMIT 1", (doc_id,)).fetchone()
        return _row_to_clause(row[0]) if row else None

    def get(self, clause_ids: Sequence[str]) -> dict[str, Clause]:
        """The committed clauses among `clause_ids`, by id."""
        held = self._in_memory()
        if held is not None:
            return {cid: held[cid] for cid in clause_ids if cid in held}
        out: dict[str, Clause] = {}
        for i in range(0, len(clause_ids), 500):
            chunk = list(clause_ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for cid, data in self._db.execute(f"SELECT clause_id, data FROM clauses WHERE clause_id IN ({marks})", chunk):
                out[cid] = _row_to_clause(data)
        return out

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM clauses").fetchone()[0]

    def hold_in_memory(self) -> dict[str, Clause] | None:
        """From now on keep every committed clause of a small index (≤ EXACT_SEARCH_MAX) in memory, for a
        process that answers many questions: a query reads 20-50 clauses, 0.4 ms from SQLite and nothing from
        here. Reading them takes 0.1 s for the policy corpus's 5.8 k (≈ 12 MB), so a one-question process never
        does. Safe from a background thread (SQLite here is serialized: `sqlite3.threadsafety == 3`).

        The BM25 index, memory-mapped when loaded, is read into memory too (14 MB for the policy corpus): a
        search then slices arrays instead of memmaps, whose Python-level indexing cost 0.1 ms a query."""
        self._hold = True
        held = self._in_memory()
        bm25 = self._bm25
        if held is not None and bm25 is not None:  # one new dict, swapped in whole: a query sees old or new
            bm25.scores = {k: np.array(v) if isinstance(v, np.memmap) else v for k, v in bm25.scores.items()}
        return held

    def _in_memory(self, version: int | None = None) -> dict[str, Clause] | None:
        """The clauses held (`hold_in_memory`), read again whenever any connection has committed since
        (`PRAGMA data_version`, or `version` just read); None when not held or the index is too large (read
        on demand)."""
        if not self._hold:
            return None
        version = self._data_version() if version is None else version
        if self._memory is None or self._memory[0] != version:
            if self._db.execute("SELECT COUNT(*) FROM clauses").fetchone()[0] > EXACT_SEARCH_MAX:
                self._memory = (version, None)
            else:
                rows = self._db.execute("SELECT clause_id, data FROM clauses")
                self._memory = (version, {cid: _row_to_clause(data) for cid, data in rows})
        return self._memory[1]

    def _data_version(self) -> int:
        """Changes whenever another connection (any process) has committed to clauses.sqlite since the last read."""
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def refresh(self) -> bool:
        """Take in what another process committed since this index last looked (an ingest from the command
        line while the chat server runs): the document list now, BM25 once that ingest has written its new
        BM25 folder. True when something was committed meanwhile."""
        version = self._data_version()
        if version == self._seen_version:
            return False
        self._seen_version = version
        self.manifest = _stored_manifest(self._db) or self.manifest
        if self._bm25 is not None and self._bm25_stamp != _stamp(self.data_dir / "bm25" / "ids.json"):
            self._bm25 = None
        return True

    def find_documents(self, query: str) -> list[str]:
        """Doc ids whose id equals `query` or whose title/id contains it."""
        docs = self.manifest.documents
        if query in docs:
            return [query]
        return [d for d, e in docs.items() if query in e.get("title", "") or query in d]

    def search_dense(self, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, cosine similarity) of the k nearest committed clauses."""
        version = self._data_version()  # read once for both checks below
        held = self._in_memory(version)
        committed = len(held) if held is not None else self.count()
        k = min(k, committed)
        if k <= 0:
            return []
        if committed <= EXACT_SEARCH_MAX:
            exact = self._exact_vectors(version)
            return exact.search(vector, k, doc_ids) if exact is not None else []
        if doc_ids and len(doc_ids) > FILTER_IN_CHROMA_MAX:
            # a long allow-list (all documents but another province's) is slow as a Chroma filter: search
            # unfiltered and keep the allowed, unless too few of the nearest are allowed
            hits, _ = self._dense_hits(vector, 4 * k + ORPHAN_MARGIN, None, allowed=set(doc_ids))
            if len(hits) >= k:
                return hits[:k]
        where = {"doc_id": {"$in": list(doc_ids)}} if doc_ids else None
        hits, full = self._dense_hits(vector, k + ORPHAN_MARGIN, where)
        if len(hits) < k and full:
            # vectors no committed clause owns (a killed or running ingest's) took places: ask for that many more
            hits, _ = self._dense_hits(vector, k + max(0, self.collection.count() - committed), where)
        return hits[:k]

    def _exact_vectors(self, version: int | None = None) -> ExactVectors | None:
        """The committed clauses' vectors in memory, re-read when any connection has committed since
        (`PRAGMA data_version`, or `version` just read): another process's ingest is seen at the next query,
        as with Chroma. None while Chroma cannot be read (another process is writing it)."""
        version = self._data_version() if version is None else version
        if self._exact is None or self._exact.version != version:
            rows = self._db.execute("SELECT vec_id, clause_id, doc_id FROM clauses ORDER BY doc_id, ord").fetchall()
            with self._vectors_lock:  # wait for warm_up() if it is reading them
                vectors, self._prefetched = self._prefetched or {}, None
                missing = [v for v, _, _ in rows if v not in vectors]
                if missing:  # clauses committed since (or no warm-up)
                    read = self._read_vectors(self._db, missing)
                    if read is None:
                        self._prefetched = vectors  # what was read is kept for the next query
                        return None
                    vectors.update(read)
            self._exact = ExactVectors.build(rows, vectors, version)
        return self._exact

    def _read_vectors(self, db: sqlite3.Connection, vec_ids: Sequence[str] | None) -> dict[str, Any] | None:
        """The vectors of committed clauses (all, or those of `vec_ids`): from the vector cache where it holds
        them, the rest from Chroma; None when Chroma cannot be read now.

        The cache is the ingest's (vectors.sqlite, by the hash of the text the embedder saw), and each vector
        it gives must hash to the digest in its vector id, so it is the very vector Chroma holds. A small
        index then answers without Chroma at all: a new process never imports chromadb (1.4 s of a 2.6 s
        cold start). Vectors the cache lacks or gets wrong (another embedder's, a cache deleted or written
        meanwhile) come from Chroma as before."""
        wanted = None if vec_ids is None else set(vec_ids)
        rows = [(v, data) for v, data in db.execute("SELECT vec_id, data FROM clauses") if wanted is None or v in wanted]
        vectors = self._cached_vectors(rows)
        missing = [v for v, _ in rows if v not in vectors]
        for start in range(0, len(missing), 5000):
            ids = missing[start : start + 5000]
            got = self._read_chroma(lambda ids=ids: self.collection.get(ids=ids, include=["embeddings"]))
            if got is None:
                return None
            vectors.update(zip(got["ids"], got["embeddings"], strict=True))
        return vectors

    def _cached_vectors(self, rows: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """What `_read_vectors` finds in the vector cache for `rows` (vec_id, clause record), each vector
        checked against its vector id's digest."""
        path = self.data_dir / VECTOR_CACHE
        if not path.exists():
            return {}
        wanted: dict[str, list[str]] = {}  # cache key → vector ids (clauses whose embedded text is the same)
        try:
            cache = VectorCache(path, self.manifest.embedder, read_only=True)
            try:
                for vec_id, data in rows:
                    key = cache.key(embed_text(_row_to_clause(data), self.manifest.embed_chars))
                    wanted.setdefault(key, []).append(vec_id)
                found = cache.get_many(list(wanted))
            finally:
                cache.close()
        except sqlite3.Error as err:  # being written, or not a cache: Chroma has them all
            log.debug("vector cache not read: %s", err)
            return {}
        vectors = {}
        for key, vector in found.items():
            digest = hashlib.sha1(vector.tobytes()).hexdigest()[:16]
            vectors.update((v, vector) for v in wanted[key] if v.endswith("@" + digest))
        return vectors

    def _dense_hits(self, vector: np.ndarray, n: int, where: dict | None,
                    allowed: set[str] | None = None) -> tuple[list[tuple[str, float]], bool]:
        """(clause_id, cosine) of the n nearest vectors that belong to committed clauses (of `allowed`
        documents only, when given); and whether Chroma returned all n (so more may exist)."""
        res = self._query_vectors(vector, n, where)
        found = self._clauses_of_vectors(res["ids"][0])
        hits = [(found[v][0], 1.0 - d) for v, d in zip(res["ids"][0], res["distances"][0], strict=True)
                if v in found and (allowed is None or found[v][1] in allowed)]
        return hits, len(res["ids"][0]) >= n

    def _query_vectors(self, vector: np.ndarray, n: int, where: dict | None) -> dict:
        """Chroma query; without dense candidates (BM25 still answers) while another process's write persists."""
        res = self._read_chroma(lambda: self.collection.query(query_embeddings=[vector], n_results=n, where=where,
                                                               include=["distances"]))
        return res if res is not None else {"ids": [[]], "distances": [[]]}

    def _read_chroma(self, read: Callable[[], Any], attempts: int = 3) -> Any | None:
        """A Chroma read, retried when another process's ingest is mid-write.

        Chroma's embedded store is written by one process at a time; a reader in another process can
        meet a segment being flushed ("Error finding id"). If it persists, this returns None and says so
        in the log: the query goes without dense candidates (BM25 still answers) rather than failing.
        """
        from chromadb.errors import ChromaError

        for attempt in range(attempts):
            try:
                return read()
            except ChromaError as err:
                if attempt == attempts - 1:
                    log.warning("dense search skipped: Chroma is being written by another process (%s)", err)
                    return None
                time.sleep(0.1 * (attempt + 1))
                self._collection = None
        raise AssertionError("unreachable")

    def _clauses_of_vectors(self, vec_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """vec_id → (clause_id, doc_id) of the committed clauses among `vec_ids`."""
        marks = ",".join("?" * len(vec_ids))
        rows = self._db.execute(f"SELECT vec_id, clause_id, doc_id FROM clauses WHERE vec_id IN ({marks})",
                                list(vec_ids))
        return {v: (c, d) for v, c, d in rows}

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
            codes = [self._bm25_doc_codes[d] for d in doc_ids if d in self._bm25_doc_codes]
            scores = np.where(np.isin(self._bm25_doc_of, codes), scores, 0.0)
        top = _best(scores, k)
        return [(self._bm25_ids[i], s) for i, s in zip(top.tolist(), scores[top].tolist()) if s > 0]

    def _tokens(self) -> tuple[list[str], list[list[str]]]:
        """Every clause's tokens. Interned: the laws corpus holds ~25 M tokens of ~1 M distinct strings,
        so each token costs a pointer instead of a 50-byte string (≈ 1.3 GB less at peak)."""
        ids, corpus = [], []
        for clause_id, tokens in self._db.execute("SELECT clause_id, tokens FROM clauses ORDER BY doc_id, ord"):
            ids.append(clause_id)
            corpus.append([sys.intern(t) for t in tokens.split(" ")] if tokens else [])
        return ids, corpus

    def _load_bm25(self) -> None:
        """The BM25 folder when it matches clauses.sqlite, else BM25 built in memory from the stored tokens."""
        if self._bm25 is not None:
            return
        self._bm25_stamp = _stamp(self.data_dir / "bm25" / "ids.json")
        rows = self._db.execute("SELECT clause_id, doc_id FROM clauses ORDER BY doc_id, ord").fetchall()
        ids = [cid for cid, _ in rows]
        bm25 = None
        if ids and self.bm25_ids_on_disk() == ids:
            import bm25s

            try:
                # memory-mapped: a query reads only its tokens' postings, so a new process answers
                # without first reading the whole index (≈ 170 MB for the laws)
                bm25 = bm25s.BM25.load(str(self.data_dir / "bm25"), mmap=True)
            except (OSError, ValueError, KeyError):  # swapped or damaged while being read
                bm25 = None
            if self.bm25_ids_on_disk() != ids:  # an ingest swapped the folder meanwhile
                bm25 = None
        if bm25 is None:
            ids, corpus = self._tokens()
            bm25 = _bm25_from(corpus) if ids else None
            rows = self._db.execute("SELECT clause_id, doc_id FROM clauses").fetchall()
        self._bm25_ids = ids
        # each BM25 row's document as a small integer, for document filters (a mask in microseconds)
        doc_of = dict(rows)
        self._bm25_doc_codes = {d: i for i, d in enumerate(dict.fromkeys(doc_of.values()))}
        self._bm25_doc_of = np.array([self._bm25_doc_codes.get(doc_of.get(cid), -1) for cid in ids], dtype=np.int32)
        self._bm25 = bm25

    def close(self) -> None:
        self._db.close()


@dataclass
class ExactVectors:
    """Committed clauses' vectors as one normalised matrix, for an exact nearest-neighbour search."""

    matrix: np.ndarray        # (clauses, dim) float32, rows of unit length
    clause_ids: list[str]
    doc_codes: dict[str, int]  # doc_id → small integer
    doc_of: np.ndarray        # each row's document code
    version: int              # PRAGMA data_version when read

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
        # from the next query's embedding (measured: 17 → 27 ms); einsum computes on this thread alone
        query = query / max(float(np.sqrt(np.einsum("i,i", query, query))), 1e-12)
        sims = np.einsum("ij,j->i", self.matrix, query)
        if doc_ids is not None:
            allowed = [self.doc_codes[d] for d in doc_ids if d in self.doc_codes]
            sims = np.where(np.isin(self.doc_of, allowed), sims, -np.inf)
        top = _best(sims, k)  # as Python numbers at once: indexing numpy one element at a time costs ≈ 1 µs each
        return [(self.clause_ids[i], s) for i, s in zip(top.tolist(), sims[top].tolist()) if s > -np.inf]


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (a swapped-in folder's file has another inode or time)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, highest first (ties in position order)."""
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _bm25_from(corpus: list[list[str]]):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return retriever


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
