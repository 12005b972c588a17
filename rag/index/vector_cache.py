"""The ingest's vector cache (vectors.sqlite): vectors by (embedder, embedded text), so re-ingesting
unchanged text costs nothing; and `embed_text`, what the embedder sees of a clause."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.records import Clause

VECTOR_CACHE = "vectors.sqlite"
TITLE_CHARS = 16
HEADING_CHARS = 16


def embed_text(clause: Clause, embed_chars: int) -> str:
    """What the embedder sees: the start of the title and of the innermost heading, then the clause text,
    cut to `embed_chars` characters (0: the whole clause). A whole title and heading path would fill a short
    cut on their own and give every clause of a document nearly the same vector (docs/evaluation.md)."""
    parts = [clause.title[:TITLE_CHARS], *(h[:HEADING_CHARS] for h in clause.headings[-1:]), clause.text]
    text = "\n".join(p for p in parts if p)
    return text[:embed_chars] if embed_chars > 0 else text


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
