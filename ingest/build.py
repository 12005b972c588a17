"""Walks the corpus, parses changed files into clauses and writes them through ClauseIndex.

One run is a pipeline, so the cores never wait for each other: this thread loads, parses and
tokenises a document (jieba) and writes finished ones, while its vectors are embedded in the
background (ingest.embedding). At most MAX_PENDING_CHARS of parsed text waits for vectors, so memory
stays bounded however large the corpus is; vectors go to the index document by document.
"""

from __future__ import annotations


import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ingest import corrections
from ingest.clauses import split_clauses
from ingest.embedding import PassageVectors, VectorRequest
from ingest.loaders import SUPPORTED_SUFFIXES, OcrOptions, is_sidecar, load_documents
from rag.config import Settings
from rag.embedders import Embedder, settings_embedder
from rag.errors import DocumentReadError, IndexLockedError, IngestInterrupted, PolicyRagError
from rag.index import (FILE_PENDING, PARSER_VERSION, VECTOR_CACHE, ClauseIndex, FileDone, VectorCache, embed_text,
                       file_hash)
from rag.records import Clause, Document
from rag.tokens import tokenize


MAX_PENDING_CHARS = 300_000  # parsed document text waiting for its vectors
Progress = Callable[[int, int], None]  # (characters done, characters to do); the total may be revised
PageProgress = Callable[[str, int, int], None]  # (file, pages read, pages to read) while a scan is OCR'd


@dataclass
class FileResult:
    """One line of the ingest report (one per document; a failed file has no doc_id)."""

    path: str
    doc_id: str | None
    title: str | None
    status: str  # added | updated | unchanged | removed | failed | skipped
    clauses: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # parts of an indexed document not read ("page 3: …")


@dataclass
class IngestReport:
    documents: list[FileResult] = field(default_factory=list)
    clauses_total: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0   # wall-clock seconds during which vectors were being computed
    bm25_seconds: float = 0.0    # jieba tokenising (overlapping the embedding) + building the BM25 index
    embedded: int = 0            # texts actually embedded (cache misses)
    embedded_chars: int = 0
    rebuilt: str | None = None   # why the whole index was built anew (another embedder or parser), if it was

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.documents if r.status == "failed"]

    def to_dict(self) -> dict:
        return {
            "documents": [asdict(r) for r in self.documents],
            "clauses_total": self.clauses_total,
            "seconds": round(self.seconds, 3),
            "embedded": self.embedded,
            "embed_seconds": round(self.embed_seconds, 3),
            "bm25_seconds": round(self.bm25_seconds, 3),
            "rebuilt": self.rebuilt,
        }

    @property
    def changed(self) -> bool:
        """Something was added, updated or removed (else the BM25 index is still current)."""
        return any(r.status in ("added", "updated", "removed") for r in self.documents)


@dataclass
class _Pending:
    """A parsed, tokenised document whose vectors are on their way."""

    doc: Document
    clauses: list[Clause]
    tokens: list[list[str]]
    vectors: VectorRequest
    file: Path


@dataclass
class _OpenFile:
    """A corpus file some of whose changed documents are not written yet."""

    done: FileDone
    remaining: int


class _StopOnSignal:
    """SIGTERM and Ctrl-C end an ingest cleanly: never inside an index write or a hand-over to the embedding
    workers (that step finishes first), then IngestInterrupted. A second signal waits for the step too. Only
    the main thread can take signals, so an ingest on another thread (an upload in the chat) keeps the defaults."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.committed = 0
        self._shielded = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum
        if not self._shielded:
            raise IngestInterrupted(signum, self.committed)

    @contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """A step a signal must not cut in half: an index write, or handing texts to the embedding workers
        (a worker being started reads its set-up from this process; cut off, it dies with a traceback)."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1
        self.check()

    def check(self) -> None:
        if self.signum is not None and not self._shielded:
            raise IngestInterrupted(self.signum, self.committed)


class _Progress:
    """Characters of document text done / to do. Files not read yet count as bytes / 3 (UTF-8 Chinese)."""

    def __init__(self, callback: Progress | None, files: Sequence[Path]) -> None:
        self.callback = callback
        self.estimates = {f: _size(f) // 3 for f in files}
        self.total = sum(self.estimates.values())
        self.done = 0

    def read(self, file: Path, chars: int) -> None:
        """`file` was read: `chars` of its text are to be indexed (0 when unchanged or failed)."""
        self.total += chars - self.estimates.pop(file, 0)
        self._report()

    def advance(self, chars: int) -> None:
        self.done += chars
        self._report()

    def _report(self) -> None:
        if self.callback:
            self.callback(self.done, max(self.total, self.done))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def iter_files(paths: Sequence[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, root) for every corpus file under `paths`, sorted, sidecars and hidden files skipped."""
    for given in paths:
        if given.is_dir():
            for file in sorted(given.rglob("*")):
                rel = file.relative_to(given)
                # a symlink that resolves to nothing (a loop, a dangling link) is yielded to be reported as failed
                wanted = file.is_file() or (file.is_symlink() and not file.exists())
                if wanted and not any(p.startswith(".") for p in rel.parts) and not is_sidecar(file):
                    yield file, given
        else:
            yield given, given.parent



class Ingester:
    """One ingest run over a data dir: incremental, file by file, bad files reported not fatal."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, progress: Progress | None = None,
                 pages: PageProgress | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or settings_embedder(settings)
        self.progress = progress
        self.pages = pages
        self._open_files: dict[str, _OpenFile] = {}
        self._stop = _StopOnSignal()
        self._corrections: dict[str, dict[str, str]] = {}  # staff's metadata corrections (ingest/corrections.py)

    def run(self, paths: Sequence[Path]) -> IngestReport:
        with self._locked(), self._stop:
            return self._run_locked(paths)

    def remove(self, doc_ids: Sequence[str]) -> IngestReport:
        """Take documents out of the index, as a run does when their file is gone (staff withdrew them)."""
        started = time.perf_counter()
        report = IngestReport()
        with self._locked(), self._stop:
            index = self._open_existing()
            try:
                missing = [d for d in doc_ids if d not in index.manifest.documents]
                if missing:
                    raise PolicyRagError(f"{'、'.join(missing)}: no such document in the index")
                with self._stop.uninterrupted():
                    for doc_id in doc_ids:
                        entry = index.manifest.documents[doc_id]
                        index.remove_document(doc_id)
                        report.documents.append(FileResult(entry.get("file", ""), doc_id, entry.get("title"), "removed"))
                    index.rebuild_bm25()
                    index.save()
                report.clauses_total = index.count()
            finally:
                index.close()
        report.seconds = time.perf_counter() - started
        return report

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The ingest lock of the data dir: one writer at a time (ingest, `policy-rag meta`, the UI)."""
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
            yield
        finally:
            lock.release()

    def _open_existing(self) -> ClauseIndex:
        """The index as it is, whatever it was built with (never rebuilt: removing must not wipe it), repaired."""
        index = ClauseIndex.inspect(self.settings.data_dir, self.settings.chroma_url)
        index.store.ensure_schema()
        index.repair()
        return index

    def _run_locked(self, paths: Sequence[Path]) -> IngestReport:
        started = time.perf_counter()
        self._corrections = corrections.load(Path(self.settings.data_dir))
        report = IngestReport()
        index = ClauseIndex.open_for_write(
            self.settings.data_dir, embedder=self.embedder.name, dim=self.embedder.dim,
            parser_version=PARSER_VERSION, embed_chars=self.settings.embed_chars,
            chroma_url=self.settings.chroma_url,
        )
        report.rebuilt = index.rebuilt
        if index.rebuilt:
            log(index.rebuilt)
        cache = VectorCache(Path(self.settings.data_dir) / VECTOR_CACHE, self.embedder.name)
        vectors = PassageVectors(self.embedder, cache, self.settings.embed_workers)
        try:
            seen = self._ingest_files(index, vectors, paths, report)
            with self._stop.uninterrupted():
                self._remove_missing(index, paths, seen, report)
                if report.changed:  # an unchanged corpus re-ingests in seconds: no BM25 rebuild
                    t = time.perf_counter()
                    index.rebuild_bm25()
                    report.bm25_seconds += time.perf_counter() - t
                index.save()
            report.clauses_total = index.count()
        finally:
            vectors.close()
            cache.close()
            index.close()
        report.embed_seconds = vectors.busy_seconds()
        report.embedded, report.embedded_chars = vectors.embedded, vectors.embedded_chars
        report.seconds = time.perf_counter() - started
        return report

    # ---- per file ---------------------------------------------------------------------------
    def _ingest_files(self, index: ClauseIndex, vectors: PassageVectors, paths: Sequence[Path],
                      report: IngestReport) -> set[str]:
        seen: set[str] = set()
        files = list(iter_files([Path(p) for p in paths]))
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        progress = _Progress(self.progress, [f for f, _ in files])
        folders = {Path(p) for p in paths if Path(p).is_dir()}
        pending: deque[_Pending] = deque()
        for file, root in files:
            self._stop.check()
            source = _display_path(file)
            docs: list[Document] = []
            if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                report.documents.append(FileResult(source, None, None, "skipped",
                                                   error=f"unsupported file type {file.suffix or '(none)'}"))
            else:
                try:
                    if root in folders:
                        _refuse_links_outside(file, root, source)
                    docs = self._changed_documents(index, file, root, max_bytes, seen, report)
                except DocumentReadError as err:
                    report.documents.append(FileResult(source, None, None, "failed", error=str(err)))
                    # keep whatever this file had in the index: a failed re-read must not lose it
                    seen.update(d for d, e in index.manifest.documents.items() if e.get("file") == source)
            progress.read(file, sum(len(d.text) for d in docs))
            for doc in docs:
                pending.append(self._start_document(doc, file, vectors, report))
                self._write_ready(index, pending, report, progress)
        self._write_ready(index, pending, report, progress, drain=True)
        return seen

    def _changed_documents(self, index: ClauseIndex, file: Path, root: Path, max_bytes: int,
                           seen: set[str], report: IngestReport) -> list[Document]:
        """Documents of `file` that are new or changed; unchanged ones are reported and skipped."""
        source = _display_path(file)
        try:
            digest = file_hash(file)
        except OSError as error:  # a symlink loop, a dangling link, an unreadable file: one failed line
            raise DocumentReadError(f"{source}: cannot read ({error.strerror or error})") from error
        known = {d: e for d, e in index.manifest.documents.items() if e.get("file") == source}
        # done when every document of the file was committed from this very content (see ClauseIndex.complete_file)
        if known and all(e.get("file_hash") == digest and e.get("file_docs") == len(known) for e in known.values()):
            for doc_id, entry in known.items():
                seen.add(doc_id)
                report.documents.append(FileResult(source, doc_id, entry["title"], "unchanged", entry["clauses"]))
            return []
        # `source` is the path users see in citations (corpus/x.txt), not the root-relative doc_id
        docs = [replace(d, source=source) for d in load_documents(file, root=root, max_bytes=max_bytes,
                                                                  ocr=self._ocr_options(source))]
        changed = []
        for doc in docs:
            seen.add(doc.doc_id)
            entry = index.manifest.documents.get(doc.doc_id)
            if entry and entry.get("hash") == doc.content_hash:
                report.documents.append(FileResult(source, doc.doc_id, doc.title, "unchanged", entry["clauses"]))
            else:
                changed.append(doc)
        done = FileDone(source, digest, tuple(dict.fromkeys(d.doc_id for d in docs)))
        if changed:
            self._open_files[str(file)] = _OpenFile(done, len(changed))
        else:
            with self._stop.uninterrupted():
                index.complete_file(done)
        return changed

    def _ocr_options(self, source: str) -> OcrOptions:
        """How this run reads scanned PDF pages; each page read is reported with the file's name."""
        pages = self.pages
        on_page = (lambda done, total: pages(source, done, total)) if pages is not None else None
        return OcrOptions(self.settings.ocr, self.settings.ocr_page_seconds, on_page)

    def _start_document(self, doc: Document, file: Path, vectors: PassageVectors, report: IngestReport) -> _Pending:
        """Parse `doc`, send its texts to be embedded, and tokenise it while they are."""
        doc = replace(doc, meta=corrections.apply(doc.meta, self._corrections.get(doc.doc_id)))
        clauses = split_clauses(doc)  # parse fully before anything old is replaced
        with self._stop.uninterrupted():
            request = vectors.request([embed_text(c, self.settings.embed_chars) for c in clauses])
        t = time.perf_counter()
        tokens = [tokenize(c.index_text()) for c in clauses]  # BM25 sees the full text
        report.bm25_seconds += time.perf_counter() - t
        return _Pending(doc, clauses, tokens, request, file)

    def _write_ready(self, index: ClauseIndex, pending: deque[_Pending], report: IngestReport,
                     progress: _Progress, drain: bool = False) -> None:
        """Write the oldest documents whose vectors are ready; wait for them when too much is pending."""
        while pending:
            waiting = sum(len(p.doc.text) for p in pending)
            if not (drain or waiting > MAX_PENDING_CHARS or pending[0].vectors.done()):
                return
            job = pending.popleft()
            self._write_document(index, job, report)
            progress.advance(len(job.doc.text))

    def _write_document(self, index: ClauseIndex, job: _Pending, report: IngestReport) -> None:
        doc = job.doc
        vectors = job.vectors.result(self.embedder.dim)
        status = "updated" if doc.doc_id in index.manifest.documents else "added"
        entry = {
            "file": doc.source, "file_hash": FILE_PENDING, "hash": doc.content_hash,
            "title": doc.title, "clauses": len(job.clauses), "meta": doc.meta,
        }
        with self._stop.uninterrupted():
            index.replace_document(doc.doc_id, job.clauses, vectors, job.tokens, entry, self._last_of_file(job.file))
            self._stop.committed += 1
        report.documents.append(FileResult(doc.source, doc.doc_id, doc.title, status, len(job.clauses),
                                           warnings=list(doc.problems)))

    def _last_of_file(self, file: Path) -> FileDone | None:
        """Count one more document of `file` written; its FileDone when that was the last one."""
        open_file = self._open_files[str(file)]
        open_file.remaining -= 1
        if open_file.remaining:
            return None
        del self._open_files[str(file)]
        return open_file.done

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


def _refuse_links_outside(file: Path, root: Path, source: str) -> None:
    """A file of a corpus folder that is a link to somewhere outside the folder (/etc/passwd, a home folder)
    is not read: its text would be shown to every user of the chat."""
    try:
        real, inside = file.resolve(strict=True), root.resolve()
    except (OSError, RuntimeError):
        return  # a loop or a dangling link: reading it fails with its own message
    if not real.is_relative_to(inside):
        raise DocumentReadError(f"{source}: a link to {real}, outside the corpus folder {root}; not indexed "
                                "(copy the file into the folder to index it)")


def _is_under(file: str, root: str) -> bool:
    return root in ("", ".") or file == root or file.startswith(root.rstrip("/") + "/")


def _display_path(path: Path) -> str:
    """The path as shown to users and stored as `source`: relative to the working dir when inside it. A
    linked file is shown as the link (its own name, not its target's), as are a loop and a dangling link."""
    if path.is_symlink() and not path.is_dir():
        resolved = path.parent.resolve() / path.name
    else:
        resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def ingest(settings: Settings, paths: Iterable[Path] | None = None, embedder: Embedder | None = None,
           progress: Callable[[int, int], None] | None = None, pages: PageProgress | None = None) -> IngestReport:
    """Ingest `paths` (default: the corpus dir) into the settings' data dir; `pages` hears of each page OCR'd."""
    chosen = [Path(p) for p in (paths or [settings.corpus_dir])]
    for p in chosen:
        if not p.exists():
            raise PolicyRagError(f"{p}: no such file or folder")
    return Ingester(settings, embedder, progress, pages).run(chosen)


def remove(settings: Settings, doc_ids: Sequence[str], embedder: Embedder | None = None) -> IngestReport:
    """Take documents out of the settings' data dir under the ingest lock (their files are the caller's)."""
    return Ingester(settings, embedder).remove(doc_ids)


def log(message: str) -> None:
    print(message, file=sys.stderr)
