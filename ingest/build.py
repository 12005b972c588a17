"""Walks the corpus, parses changed files into clauses and writes them through ClauseIndex."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ingest.clauses import PARSER_VERSION, split_clauses
from ingest.loaders import SUPPORTED_SUFFIXES, is_sidecar, load_documents
from rag.config import Settings
from rag.embedders import Embedder, make_embedder
from rag.errors import DocumentReadError, IndexLockedError, PolicyRagError
from rag.index import ClauseIndex, VectorCache
from rag.records import Clause, Document
from rag.tokens import tokenize

EMBED_BATCH = 16


@dataclass
class FileResult:
    """One line of the ingest report (one per document; a failed file has no doc_id)."""

    path: str
    doc_id: str | None
    title: str | None
    status: str  # added | updated | unchanged | removed | failed | skipped
    clauses: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    documents: list[FileResult] = field(default_factory=list)
    clauses_total: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    bm25_seconds: float = 0.0
    embedded: int = 0  # texts actually embedded (cache misses)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.documents if r.status == "failed"]

    def to_dict(self) -> dict:
        return {
            "documents": [asdict(r) for r in self.documents],
            "clauses_total": self.clauses_total,
            "seconds": round(self.seconds, 3),
        }


def embed_text(clause: Clause, embed_chars: int) -> str:
    """What the embedder sees: title + heading path + clause text, cut to `embed_chars` characters."""
    return clause.index_text()[:embed_chars]


def iter_files(paths: Sequence[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, root) for every corpus file under `paths`, sorted, sidecars and hidden files skipped."""
    for given in paths:
        if given.is_dir():
            for file in sorted(given.rglob("*")):
                rel = file.relative_to(given)
                if file.is_file() and not any(p.startswith(".") for p in rel.parts) and not is_sidecar(file):
                    yield file, given
        else:
            yield given, given.parent


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Ingester:
    """One ingest run over a data dir: incremental, file by file, bad files reported not fatal."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or make_embedder(
            settings.embedder, base_url=settings.embed_base_url, api_key=settings.embed_api_key
        )
        self.progress = progress
        self._file_hashes: dict[str, str] = {}

    def run(self, paths: Sequence[Path]) -> IngestReport:
        from filelock import FileLock, Timeout

        data_dir = Path(self.settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(data_dir / "ingest.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise IndexLockedError(
                f"another `policy-rag ingest` is writing to {data_dir}/; wait for it to finish"
            ) from None
        try:
            return self._run_locked(paths)
        finally:
            lock.release()

    def _run_locked(self, paths: Sequence[Path]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        index = ClauseIndex.open_for_write(
            self.settings.data_dir, embedder=self.embedder.name, dim=self.embedder.dim,
            parser_version=PARSER_VERSION, embed_chars=self.settings.embed_chars,
            chroma_url=self.settings.chroma_url,
        )
        cache = VectorCache(Path(self.settings.data_dir) / "vectors.sqlite", self.embedder.name)
        try:
            seen = self._ingest_files(index, cache, paths, report)
            self._remove_missing(index, paths, seen, report)
            t = time.perf_counter()
            index.rebuild_bm25()
            report.bm25_seconds += time.perf_counter() - t
            index.save()
            report.clauses_total = index.count()
        finally:
            cache.close()
            index.close()
        report.seconds = time.perf_counter() - started
        return report

    # ---- per file ---------------------------------------------------------------------------
    def _ingest_files(self, index: ClauseIndex, cache: VectorCache, paths: Sequence[Path],
                      report: IngestReport) -> set[str]:
        seen: set[str] = set()
        files = list(iter_files([Path(p) for p in paths]))
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        for n, (file, root) in enumerate(files, 1):
            source = _display_path(file)
            if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                report.documents.append(FileResult(source, None, None, "skipped",
                                                   error=f"unsupported file type {file.suffix or '(none)'}"))
                continue
            try:
                docs = self._changed_documents(index, file, root, max_bytes, seen, report)
                for doc in docs:
                    self._ingest_document(index, cache, doc, report)
            except DocumentReadError as err:
                report.documents.append(FileResult(source, None, None, "failed", error=str(err)))
                # keep whatever this file had in the index: a failed re-read must not lose it
                seen.update(d for d, e in index.manifest.documents.items() if e.get("file") == source)
            if self.progress:
                self.progress(n, len(files))
        return seen

    def _changed_documents(self, index: ClauseIndex, file: Path, root: Path, max_bytes: int,
                           seen: set[str], report: IngestReport) -> list[Document]:
        """Documents of `file` that are new or changed; unchanged ones are reported and skipped."""
        source = _display_path(file)
        digest = file_hash(file)
        known = {d: e for d, e in index.manifest.documents.items() if e.get("file") == source}
        if known and all(e.get("file_hash") == digest for e in known.values()):
            for doc_id, entry in known.items():
                seen.add(doc_id)
                report.documents.append(FileResult(source, doc_id, entry["title"], "unchanged", entry["clauses"]))
            return []
        # `source` is the path users see in citations (corpus/x.txt), not the root-relative doc_id
        docs = [replace(d, source=source) for d in load_documents(file, root=root, max_bytes=max_bytes)]
        changed = []
        for doc in docs:
            seen.add(doc.doc_id)
            entry = index.manifest.documents.get(doc.doc_id)
            if entry and entry.get("hash") == doc.content_hash:
                entry["file_hash"] = digest
                report.documents.append(FileResult(source, doc.doc_id, doc.title, "unchanged", entry["clauses"]))
            else:
                changed.append(doc)
        self._file_hashes[source] = digest
        return changed

    def _ingest_document(self, index: ClauseIndex, cache: VectorCache, doc: Document,
                         report: IngestReport) -> None:
        clauses = split_clauses(doc)  # parse fully before anything old is replaced
        tokens = [tokenize(c.index_text()) for c in clauses]
        vectors = self._embed(cache, [embed_text(c, self.settings.embed_chars) for c in clauses], report)
        status = "updated" if doc.doc_id in index.manifest.documents else "added"
        entry = {
            "file": doc.source, "file_hash": self._file_hashes.get(doc.source), "hash": doc.content_hash,
            "title": doc.title, "clauses": len(clauses), "meta": doc.meta,
        }
        index.replace_document(doc.doc_id, clauses, vectors, tokens, entry)
        report.documents.append(FileResult(doc.source, doc.doc_id, doc.title, status, len(clauses)))

    def _embed(self, cache: VectorCache, texts: list[str], report: IngestReport) -> np.ndarray:
        """Vectors for `texts`, from the cache where possible; misses embedded in length-sorted batches."""
        keys = [cache.key(t) for t in texts]
        found = cache.get_many(keys)
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in found}.items(), key=lambda kv: len(kv[1]))
        t0 = time.perf_counter()
        for i in range(0, len(missing), EMBED_BATCH):
            batch = missing[i : i + EMBED_BATCH]
            vecs = self.embedder.embed_passages([t for _, t in batch])
            cache.put_many(zip([k for k, _ in batch], vecs))
            found.update(zip([k for k, _ in batch], vecs))
        report.embed_seconds += time.perf_counter() - t0
        report.embedded += len(missing)
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def _remove_missing(self, index: ClauseIndex, paths: Sequence[Path], seen: set[str],
                        report: IngestReport) -> None:
        """Drop documents whose file lies under an ingested folder but is gone (or no longer holds them)."""
        roots = [_display_path(Path(p)) for p in paths if Path(p).is_dir()]
        files = {_display_path(Path(p)) for p in paths if not Path(p).is_dir()}
        for doc_id, entry in list(index.manifest.documents.items()):
            if doc_id in seen:
                continue
            file = entry.get("file", "")
            if file in files or any(_is_under(file, r) for r in roots):
                index.remove_document(doc_id)
                report.documents.append(FileResult(file, doc_id, entry.get("title"), "removed"))


def _is_under(file: str, root: str) -> bool:
    return root in ("", ".") or file == root or file.startswith(root.rstrip("/") + "/")


def _display_path(path: Path) -> str:
    """The path as shown to users and stored as `source`: relative to the working dir when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def ingest(settings: Settings, paths: Iterable[Path] | None = None, embedder: Embedder | None = None,
           progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Ingest `paths` (default: the corpus dir) into the settings' data dir."""
    chosen = [Path(p) for p in (paths or [settings.corpus_dir])]
    for p in chosen:
        if not p.exists():
            raise PolicyRagError(f"{p}: no such file or folder")
    return Ingester(settings, embedder, progress).run(chosen)


def log(message: str) -> None:
    print(message, file=sys.stderr)
