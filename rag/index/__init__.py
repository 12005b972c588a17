"""The on-disk clause index of one data dir, behind one facade, `ClauseIndex`.

Layout of a data dir, one module each:
    clauses.sqlite   the commit point (store.py): identity (embedder, dim, parser version), every document
                     with its content hash, every clause record with its BM25 tokens and the id of its vector
    chroma/          the clause vectors (dense.py; or a `chroma run` server)
    bm25/            bm25s index over the clause tokens + ids.json (bm25.py; derived: rebuilt after every change)
    manifest.json    a readable copy of clauses.sqlite's identity and documents (manifest.py; derived)
    vectors.sqlite   the ingest's vector cache by embedder + text (vector_cache.py)

The commit protocol lives here (SIGKILL at any moment leaves the previous or the new state of every document):
- A document changes in one sqlite transaction (its clauses and its manifest entry together).
- Vector ids are content-addressed (`<clause_id>@<hash of the vector>`), and vectors are added to Chroma
  before the transaction and removed after it. So Chroma never changes a vector that a committed clause
  points at; a kill leaves at most unreferenced vectors ("orphans"), which queries skip and the next
  ingest deletes.
- BM25 and manifest.json are derived from sqlite. A reader whose BM25 folder disagrees with sqlite builds
  BM25 in memory from the stored tokens; the next ingest rewrites both.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError
from rag.index import store as clause_store
from rag.index.bm25 import FOLDER as BM25_FOLDER, Bm25Store
from rag.index.dense import DenseStore, drop_collection, forget_embedded, vector_id
from rag.index.manifest import (FILE_PENDING, FORMAT_VERSION, KILL_ENV, MANIFEST, PARSER_VERSION, FileDone, Manifest,
                                file_hash, kill_point)
from rag.index.store import DB, ClauseStore
from rag.index.vector_cache import HEADING_CHARS, TITLE_CHARS, VECTOR_CACHE, VectorCache, embed_text
from rag.records import Clause

__all__ = ["ClauseIndex", "FileDone", "Manifest", "VectorCache", "embed_text", "file_hash", "FILE_PENDING",
           "FORMAT_VERSION", "KILL_ENV", "PARSER_VERSION", "VECTOR_CACHE", "TITLE_CHARS", "HEADING_CHARS", "LEFTOVERS"]

# what a killed write may leave behind
LEFTOVERS = (BM25_FOLDER + ".tmp", BM25_FOLDER + ".old", MANIFEST + ".tmp", DB + ".tmp")


class ClauseIndex:
    """Read and write one data dir: the commit protocol over the clause store, the vectors and BM25."""

    def __init__(self, data_dir: Path, manifest: Manifest, chroma_url: str | None = None,
                 store: ClauseStore | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self.store = store or ClauseStore(self.data_dir / DB)
        self.dense = DenseStore(self.data_dir, chroma_url, self.store, embedder=manifest.embedder,
                                embed_chars=manifest.embed_chars)
        self.bm25 = Bm25Store(self.data_dir, self.store)
        self._dirty = False
        self._seen_version = self.store.data_version()

    # ---- opening ------------------------------------------------------------------------------
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
                raise _old_format(data_dir)
            raise IndexMissingError(f"no index in {data_dir}/; run `policy-rag ingest` first")
        store = ClauseStore(data_dir / DB)
        manifest = store.manifest()
        if manifest is None or manifest.format != FORMAT_VERSION:
            store.close()
            raise _old_format(data_dir)
        return cls(data_dir, manifest, chroma_url, store)

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
            probe = ClauseStore(data_dir / DB)
            stored = probe.manifest()
            probe.close()
        rebuilt = None
        if stored is None or (stored.format, *stored.identity()) != (FORMAT_VERSION, *fresh.identity()):
            if stored is not None:
                rebuilt = (f"the index was built with embedder={stored.embedder}, parser v{stored.parser_version}, "
                           f"embed_chars={stored.embed_chars}, format {stored.format}; this run uses "
                           f"embedder={embedder}, parser v{parser_version}, embed_chars={embed_chars}, format "
                           f"{FORMAT_VERSION}: every document is indexed again, once (texts already embedded come "
                           "from the vector cache)")
            _wipe(data_dir, chroma_url)
            clause_store.create(data_dir / DB, fresh)
            fresh.write(data_dir)
        index = cls.inspect(data_dir, chroma_url)
        index.rebuilt = rebuilt
        index.store.ensure_schema()
        index.repair()
        return index

    def repair(self) -> list[str]:
        """Clean up after a killed ingest: orphan vectors, lost vectors, stale BM25, temporary files, manifest.json."""
        done = []
        for name in LEFTOVERS:
            path = self.data_dir / name
            if path.exists():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                done.append(f"removed {name}")
        if self.interrupted():
            orphans = self.dense.orphan_ids()
            self.dense.delete(orphans)
            if orphans:
                done.append(f"deleted {len(orphans)} orphan vectors")
            restored = self.dense.restore_written()
            if restored:
                done.append(f"wrote {restored} vectors again that Chroma had lost")
        if self.bm25.ids_on_disk() != self.store.all_clause_ids():
            self.rebuild_bm25()
            done.append("rebuilt BM25")
        if not self.manifest_file_agrees():
            self.save()
            done.append("rewrote manifest.json")
        return done

    # ---- the commit protocol ------------------------------------------------------------------
    def interrupted(self) -> bool:
        """An ingest wrote to this index and has not finished (it was killed, or is still running)."""
        return self.store.flag("dirty")

    def _mark_dirty(self) -> None:
        """Committed before this run's first Chroma write and cleared by save(): a clean index needs no orphan scan."""
        if not self._dirty:
            self.store.set_flag("dirty")
            self._dirty = True

    def replace_document(self, doc_id: str, clauses: Sequence[Clause], vectors: np.ndarray,
                         tokens: Sequence[list[str]], entry: dict[str, Any],
                         completes: FileDone | None = None) -> None:
        """Swap a document's clauses for new ones (already fully parsed and embedded) in one commit; when it is
        the last of its file to be written, `completes` marks the whole file done in that same commit."""
        self._mark_dirty()
        self.dense.forget()
        old = set(self.store.vector_ids(doc_id))
        vec_ids = [vector_id(c.clause_id, v) for c, v in zip(clauses, vectors, strict=True)]
        # 1. vectors no committed clause points at (a vector already in `old` is unchanged: skip it)
        new = [i for i in range(len(clauses)) if vec_ids[i] not in old]
        self.dense.add([vec_ids[i] for i in new], [vectors[i] for i in new], [clauses[i] for i in new])
        kill_point("vectors-added")
        # 2. the commit point: the document's clauses and its manifest entry together
        self.store.replace_document(doc_id, clauses, vec_ids, tokens, entry, completes)
        self.manifest.documents[doc_id] = entry
        if completes is not None:
            self._apply_file_done(completes)
        self.dense.forget()
        kill_point("document-committed")
        # 3. the old vectors are unreferenced now
        self.dense.delete(sorted(old - set(vec_ids)))

    def complete_file(self, done: FileDone) -> None:
        """Mark a file whose documents are all committed already (none of them changed) as done."""
        self._mark_dirty()
        self.store.complete_file(done)
        self._apply_file_done(done)
        kill_point("file-completed")

    def _apply_file_done(self, done: FileDone) -> None:
        for doc_id in done.doc_ids:
            if doc_id in self.manifest.documents:
                self.manifest.documents[doc_id].update(file_hash=done.digest, file_docs=len(done.doc_ids))

    def remove_document(self, doc_id: str) -> None:
        self._mark_dirty()
        self.dense.forget()
        old = self.store.vector_ids(doc_id)
        self.store.remove_document(doc_id)
        self.manifest.documents.pop(doc_id, None)
        self.dense.forget()
        kill_point("document-removed")
        self.dense.delete(old)

    def set_meta(self, doc_id: str, meta: dict[str, str]) -> None:
        """Replace a document's metadata (a staff correction); manifest.json follows."""
        self.store.set_meta(doc_id, meta)
        self.manifest.documents[doc_id]["meta"] = meta
        self._committed().write(self.data_dir)

    def rebuild_bm25(self) -> None:
        self.bm25.rebuild()

    def save(self) -> None:
        """Store in-memory manifest entry changes (e.g. a refreshed file hash), then write manifest.json."""
        self.store.finish(self.manifest.documents)
        self._dirty = False
        kill_point("manifest-writing")
        self._committed().write(self.data_dir)

    def _committed(self) -> Manifest:
        manifest = self.store.manifest()
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

    # ---- reading ------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Take in what another process committed since this index last looked (an ingest from the command
        line while the chat server runs): the document list now, BM25 once that ingest has written its new
        BM25 folder. True when something was committed meanwhile."""
        version = self.store.data_version()
        if version == self._seen_version:
            return False
        self._seen_version = version
        self.manifest = self.store.manifest() or self.manifest
        self.bm25.reload_if_swapped()
        return True

    def warm_up(self, dim: int) -> None:
        """Load the vectors (or Chroma's HNSW index) now: meant for a background thread at start-up."""
        if self.manifest.documents:
            self.dense.warm_up(dim)

    def find_documents(self, query: str) -> list[str]:
        """Doc ids whose id equals `query` or whose title/id contains it."""
        docs = self.manifest.documents
        if query in docs:
            return [query]
        return [d for d, e in docs.items() if query in e.get("title", "") or query in d]

    def search_dense(self, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return self.dense.search(vector, k, doc_ids)

    def search_bm25(self, tokens: list[str], k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return self.bm25.search(tokens, k, doc_ids)

    def get(self, clause_ids: Sequence[str]) -> dict[str, Clause]:
        """The committed clauses among `clause_ids`, by id."""
        return self.store.get(clause_ids)

    def clauses(self, doc_ids: Iterable[str] | None = None) -> Iterable[Clause]:
        return self.store.clauses(doc_ids)

    def first_clause(self, doc_id: str) -> Clause | None:
        """The document's opening clause (its 导语 or first article), or None."""
        return self.store.first_clause(doc_id)

    def clause_ids(self, doc_id: str) -> list[str]:
        return self.store.clause_ids(doc_id)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every committed document's manifest entry, read now from clauses.sqlite."""
        return self.store.documents()

    def count(self) -> int:
        return self.store.count()

    @property
    def collection(self):
        return self.dense.collection

    def close(self) -> None:
        self.store.close()


def _old_format(data_dir: Path) -> IndexMismatchError:
    return IndexMismatchError(
        f"the index in {data_dir}/ has an older on-disk format (this version writes format {FORMAT_VERSION}). "
        f"Re-ingest: `policy-rag ingest --data-dir {data_dir}`"
    )


def _wipe(data_dir: Path, chroma_url: str | None) -> None:
    if not chroma_url:
        forget_embedded(data_dir)
    # clauses.sqlite first: it is the commit point, so whatever a kill leaves after it is unreferenced
    for name in (DB, DB + "-wal", DB + "-shm", MANIFEST):
        (data_dir / name).unlink(missing_ok=True)
    for name in ("chroma", BM25_FOLDER, *LEFTOVERS):
        path = data_dir / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if chroma_url:
        drop_collection(data_dir, chroma_url)
