"""What an index was built with and which documents it holds (the `Manifest`), the versions that decide
whether an index must be rebuilt, and the test-only kill points of the crash tests."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.tokens import VERSION as TOKENS_VERSION

FORMAT_VERSION = 2  # 2: documents in clauses.sqlite, content-addressed vector ids
# What the clause records were built with: loading, cleaning and the clause parser (ingest/) 4, the metadata
# read from the text (ingest/metadata.py) m2, the BM25 tokens (rag/tokens.py), the embedded text 2
# (rag.index.vector_cache.embed_text). Changing any re-ingests; the vector cache keeps unchanged texts.
PARSER_VERSION = f"4+t{TOKENS_VERSION}+e2+m2"  # 3: table rows keep their headers; 4: OCR quotes and footers
MANIFEST = "manifest.json"
IDENTITY_KEYS = ("format", "embedder", "dim", "parser_version", "embed_chars")
FILE_PENDING = None  # an entry's file_hash while other documents of its file are still to be written
KILL_ENV = "POLICY_RAG_TEST_KILL_AT"  # tests only: "<stage>[:<nth>]" SIGKILLs this process at that point


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


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (the manifest records it per corpus file)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
