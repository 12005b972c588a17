"""clauses.sqlite, the commit point of an index: its identity, every document's manifest entry, every clause
record with its BM25 tokens and the id of its vector, and the documents an unfinished ingest has written."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.index.manifest import FORMAT_VERSION, IDENTITY_KEYS, FileDone, Manifest
from rag.records import Clause

DB = "clauses.sqlite"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, entry TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clauses (clause_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL,"
    " ord INTEGER NOT NULL, vec_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL, tokens TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS clauses_doc ON clauses (doc_id, ord)",
    # documents committed by an ingest that has not finished, in order: repair re-checks their vectors
    "CREATE TABLE IF NOT EXISTS written (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL)",
)


def _to_row(clause: Clause, order: int, vec_id: str, tokens: list[str]) -> tuple:
    data = clause.to_dict() | {"path": list(clause.path), "source": clause.source, "meta": clause.meta}
    return (clause.clause_id, clause.doc_id, order, vec_id, json.dumps(data, ensure_ascii=False), " ".join(tokens))


def to_clause(data: str) -> Clause:
    """A clause record as stored back into a Clause."""
    d = json.loads(data)
    return Clause(
        clause_id=d["clause_id"], doc_id=d["doc_id"], title=d["title"], path=tuple(d["path"]),
        headings=tuple(d["headings"]), text=d["text"], start=d["start"], end=d["end"], page=d["page"],
        source=d.get("source", ""), meta=d.get("meta", {}),
    )


def create(path: Path, manifest: Manifest) -> None:
    """A new empty store, made in a temporary file and renamed into place: it exists whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode = WAL")  # readers (the chat server) never block the ingest's writes
    with db:
        for statement in SCHEMA:
            db.execute(statement)
        values = {"format": FORMAT_VERSION, **dict(zip(IDENTITY_KEYS[1:], manifest.identity(), strict=True))}
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
    db.close()
    os.replace(tmp, path)


class ClauseStore:
    """One connection to clauses.sqlite. Safe to share between threads (SQLite serializes its use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA busy_timeout = 30000")

    def close(self) -> None:
        self._db.close()

    # ---- identity and documents --------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        """Identity and documents as committed; None for a format-1 or unfinished file."""
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            documents = self.documents()
        except sqlite3.DatabaseError:  # no meta table: an index of format 1
            return None
        if not all(key in meta for key in IDENTITY_KEYS):
            return None
        return Manifest(embedder=meta["embedder"], dim=int(meta["dim"]), parser_version=meta["parser_version"],
                        embed_chars=int(meta["embed_chars"]), documents=documents, format=int(meta["format"]))

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every committed document's manifest entry."""
        return {d: json.loads(e) for d, e in self._db.execute("SELECT doc_id, entry FROM documents ORDER BY doc_id")}

    def ensure_schema(self) -> None:
        """Tables an index written by an older release lacks (the table of written documents)."""
        with self._db:
            self._db.execute(SCHEMA[-1])

    def flag(self, key: str) -> bool:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bool(row) and row[0] == "1"

    def set_flag(self, key: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (key,))

    def data_version(self) -> int:
        """Changes whenever another connection (any process) has committed since the last read."""
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def integrity(self) -> str:
        """SQLite's own verdict: "ok" or what is damaged."""
        return "; ".join(r[0] for r in self._db.execute("PRAGMA integrity_check"))

    # ---- the commits --------------------------------------------------------------------------
    def replace_document(self, doc_id: str, clauses: Sequence[Clause], vec_ids: Sequence[str],
                         tokens: Sequence[list[str]], entry: dict[str, Any], completes: FileDone | None) -> None:
        """One transaction: the document's clauses and its manifest entry (and its file's, when `completes`)."""
        rows = [_to_row(c, i, vec_ids[i], t) for i, (c, t) in enumerate(zip(clauses, tokens, strict=True))]
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            self._db.executemany("INSERT INTO clauses VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?)",
                             (doc_id, json.dumps(entry, ensure_ascii=False)))
            self._db.execute("INSERT INTO written (doc_id) VALUES (?)", (doc_id,))
            if completes is not None:
                self._mark_file_done(completes)

    def complete_file(self, done: FileDone) -> None:
        with self._db:
            self._mark_file_done(done)

    def _mark_file_done(self, done: FileDone) -> None:
        """Inside a transaction: the file's hash and document count go into each of its documents' entries.

        A file's hash in an entry is what makes the next ingest skip the file, so it is written for all of the
        file's documents at once, and only when the last of them is committed: a collection stopped half-way
        keeps entries without it (`FILE_PENDING`) and is read again."""
        for doc_id in done.doc_ids:
            row = self._db.execute("SELECT entry FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            entry = (json.loads(row[0]) if row else {}) | {"file_hash": done.digest, "file_docs": len(done.doc_ids)}
            self._db.execute("UPDATE documents SET entry = ? WHERE doc_id = ?",
                             (json.dumps(entry, ensure_ascii=False), doc_id))

    def set_meta(self, doc_id: str, meta: dict[str, str]) -> None:
        """One transaction: the document's metadata in its entry and in every clause record."""
        with self._db:
            row = self._db.execute("SELECT entry FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            entry = (json.loads(row[0]) if row else {}) | {"meta": meta}
            self._db.execute("UPDATE documents SET entry = ? WHERE doc_id = ?",
                             (json.dumps(entry, ensure_ascii=False), doc_id))
            rows = self._db.execute("SELECT clause_id, data FROM clauses WHERE doc_id = ?", (doc_id,)).fetchall()
            self._db.executemany("UPDATE clauses SET data = ? WHERE clause_id = ?",
                                 [(json.dumps(json.loads(d) | {"meta": meta}, ensure_ascii=False), c) for c, d in rows])

    def remove_document(self, doc_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def finish(self, documents: dict[str, dict[str, Any]]) -> None:
        """The end of an ingest: its entries stored, the dirty flag and the written list cleared."""
        with self._db:
            self._db.executemany("UPDATE documents SET entry = ? WHERE doc_id = ?",
                                 [(json.dumps(e, ensure_ascii=False), d) for d, e in documents.items()])
            self._db.execute("DELETE FROM meta WHERE key = 'dirty'")
            self._db.execute("DELETE FROM written")

    # ---- reading ------------------------------------------------------------------------------
    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM clauses").fetchone()[0]

    def clause_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT clause_id FROM clauses WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def vector_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT vec_id FROM clauses WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def all_clause_ids(self) -> list[str]:
        """Every clause id in BM25 order (document, then position)."""
        return [r[0] for r in self._db.execute("SELECT clause_id FROM clauses ORDER BY doc_id, ord")]

    def clause_docs(self) -> list[tuple[str, str]]:
        """(clause_id, doc_id) of every clause in BM25 order."""
        return self._db.execute("SELECT clause_id, doc_id FROM clauses ORDER BY doc_id, ord").fetchall()

    def vector_rows(self) -> list[tuple[str, str, str]]:
        """(vec_id, clause_id, doc_id) of every clause in BM25 order."""
        return self._db.execute("SELECT vec_id, clause_id, doc_id FROM clauses ORDER BY doc_id, ord").fetchall()

    def vector_records(self) -> list[tuple[str, str]]:
        """(vec_id, clause record) of every committed clause."""
        return self._db.execute("SELECT vec_id, data FROM clauses").fetchall()

    def vector_refs(self) -> dict[str, tuple[str, str]]:
        """vec_id → (clause_id, doc_id) for every committed clause."""
        return {v: (c, d) for v, c, d in self._db.execute("SELECT vec_id, clause_id, doc_id FROM clauses")}

    def _where_in(self, columns: str, key: str, values: Sequence[str]) -> Iterable[tuple]:
        """`SELECT columns FROM clauses WHERE key IN values`, in chunks of 500 (SQLite bounds the parameters)."""
        for i in range(0, len(values), 500):
            chunk = list(values[i : i + 500])
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(f"SELECT {columns} FROM clauses WHERE {key} IN ({marks})", chunk)

    def clauses_of_vectors(self, vec_ids: Sequence[str]) -> dict[str, Clause]:
        """vec_id → clause, of the committed clauses among `vec_ids`."""
        return {v: to_clause(d) for v, d in self._where_in("vec_id, data", "vec_id", vec_ids)}

    def owners_of_vectors(self, vec_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """vec_id → (clause_id, doc_id) of the committed clauses among `vec_ids`."""
        return {v: (c, d) for v, c, d in self._where_in("vec_id, clause_id, doc_id", "vec_id", vec_ids)}

    def written_vectors(self, limit: int) -> list[tuple[str, str]]:
        """(vec_id, clause record) of the documents an unfinished ingest committed, newest first."""
        rows = self._db.execute(
            "SELECT c.vec_id, c.data FROM written w JOIN clauses c ON c.doc_id = w.doc_id ORDER BY w.seq DESC, c.ord"
            " LIMIT ?", (limit,)).fetchall()
        return list({v: (v, data) for v, data in rows}.values())

    def rows(self) -> Iterable[tuple[str, str, str, str]]:
        """(clause_id, doc_id, vec_id, record) of every committed clause, for `policy-rag check`."""
        return self._db.execute("SELECT clause_id, doc_id, vec_id, data FROM clauses ORDER BY doc_id, ord")

    def clauses(self, doc_ids: Iterable[str] | None = None) -> Iterable[Clause]:
        """All clauses in document order (optionally of some documents only)."""
        if doc_ids is None:
            rows = self._db.execute("SELECT data FROM clauses ORDER BY doc_id, ord")
        else:
            wanted = list(doc_ids)
            marks = ",".join("?" * len(wanted))
            rows = self._db.execute(f"SELECT data FROM clauses WHERE doc_id IN ({marks}) ORDER BY doc_id, ord", wanted)
        for (data,) in rows:
            yield to_clause(data)

    def first_clause(self, doc_id: str) -> Clause | None:
        row = self._db.execute("SELECT data FROM clauses WHERE doc_id = ? ORDER BY ord LIMIT 1", (doc_id,)).fetchone()
        return to_clause(row[0]) if row else None

    def get(self, clause_ids: Sequence[str]) -> dict[str, Clause]:
        return {cid: to_clause(data) for cid, data in self._where_in("clause_id, data", "clause_id", clause_ids)}

    def tokens(self) -> tuple[list[str], list[list[str]]]:
        """Every clause's BM25 tokens in BM25 order. Interned: the laws corpus holds ~25 M tokens of ~1 M
        distinct strings, so each token costs a pointer instead of a 50-byte string."""
        ids, corpus = [], []
        for clause_id, tokens in self._db.execute("SELECT clause_id, tokens FROM clauses ORDER BY doc_id, ord"):
            ids.append(clause_id)
            corpus.append([sys.intern(t) for t in tokens.split(" ")] if tokens else [])
        return ids, corpus
