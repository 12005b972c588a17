"""PDF loader: the text layer read with pypdf, page by page; pages without one are read by OCR (ingest.loaders.ocr)."""

from __future__ import annotations

import io
import logging
import time
import zlib
from pathlib import PurePosixPath
from typing import Any

from ingest.clean import clean_pages
from ingest.loaders.common import Parsed, _first_line_title, _leading_title, _nonempty, clean_title, looks_like_title
from ingest.loaders.ocr import OcrOptions, PageError, PageReader, needs_ocr, page_ranges
from rag.errors import DocumentReadError
from rag.records import OCR_PAGES

MAX_PDF_SECONDS = 300  # reading a PDF's text layer: a 300-page plan takes under a minute on 2 cores


class _DropWrongPointingObject(logging.Filter):
    """pypdf logs one line per broken xref entry of macOS Quartz PDFs; extraction works regardless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Ignoring wrong pointing object")


logging.getLogger("pypdf._reader").addFilter(_DropWrongPointingObject())


def load_pdf(data: bytes, name: str, ocr: OcrOptions | None = None) -> Parsed:
    """A .pdf: each page's text layer (pypdf), or OCR for a page without one (see ingest.loaders.ocr); pages
    cleaned and re-joined, page offsets kept. A page OCR cannot read is reported and the rest is kept."""
    ocr = ocr or OcrOptions()
    reader = _open_pdf(data, name)
    pages = _pdf_page_texts(reader, name)
    scanned = [i for i, page in enumerate(pages) if ocr.mode == "force" or needs_ocr(page)]
    if ocr.mode == "off":
        scanned = []
        if not any(page.strip() for page in pages):
            raise DocumentReadError(f"{name}: no text layer (scanned/image-only PDF) and OCR is off "
                                    "(POLICY_RAG_OCR=off); set POLICY_RAG_OCR=auto to read it")
    read, problems = _ocr_pages(data, pages, scanned, ocr)
    if scanned and not read and not any(page.strip() for i, page in enumerate(pages) if i not in scanned):
        raise DocumentReadError(f"{name}: OCR could read none of its pages without a text layer ({'; '.join(problems[:3])})")
    text, offsets = clean_pages(pages)
    text = _nonempty(text, name)
    meta = {OCR_PAGES: page_ranges(read)} if read else {}
    return Parsed(text, _pdf_title(reader, text, name), offsets, meta, tuple(problems))


def _ocr_pages(data: bytes, pages: list[str], scanned: list[int], ocr: OcrOptions) -> tuple[list[int], list[str]]:
    """Replace the text of the `scanned` pages (0-based) by what OCR reads: the 1-based pages read, and one
    problem line per page it could not read (that page keeps its text layer, if any)."""
    read: list[int] = []
    problems: list[str] = []
    if not scanned:
        return read, problems
    with PageReader(data, ocr.page_seconds) as reader:
        for done, index in enumerate(scanned):
            try:
                pages[index] = "\n".join(reader.read(index))
                read.append(index + 1)
            except PageError as error:
                problems.append(f"page {index + 1}: {error}")
            if ocr.on_page:
                ocr.on_page(done + 1, len(scanned))
    return read, problems


def _pdf_title(reader: Any, text: str, name: str) -> str:
    """Metadata /Title when it reads like a title (site suffix removed), else one in the first lines, else the name."""
    from pypdf.errors import PyPdfError

    try:
        meta_title = str((reader.metadata or {}).get("/Title") or "")
    except PyPdfError:
        meta_title = ""
    candidates = [clean_title(meta_title), _leading_title(text), clean_title(PurePosixPath(name).stem)]
    return next((title for title in candidates if looks_like_title(title)), "") or _first_line_title(text, name)


def _pdf_errors() -> tuple[type[Exception], ...]:
    from pypdf.errors import PyPdfError

    # pypdf raises its own errors for most damage, and plain ones for some malformed objects
    return (PyPdfError, ValueError, KeyError, IndexError, TypeError, AssertionError, NotImplementedError, zlib.error)


def _open_pdf(data: bytes, name: str) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentReadError(f"{name}: password-protected PDF")
    except DependencyError as error:
        raise DocumentReadError(f"{name}: encrypted PDF; reading it needs `pip install cryptography`") from error
    except _pdf_errors() as error:
        raise DocumentReadError(f"{name}: unreadable PDF, truncated or corrupt ({error})") from error
    return reader


def _pdf_page_texts(reader: Any, name: str, max_seconds: float = MAX_PDF_SECONDS) -> list[str]:
    """Each page's text; a PDF whose pages take longer than `max_seconds` in all (a hostile content stream)
    fails with the page it had reached, so no file holds up the ingest for long."""
    texts = []
    deadline = time.monotonic() + max_seconds
    try:
        for page in reader.pages:
            if time.monotonic() > deadline:
                raise DocumentReadError(f"{name}: reading its text took over {max_seconds:g} s "
                                        f"(stopped at page {len(texts) + 1}); not indexed")
            texts.append(page.extract_text() or "")
    except _pdf_errors() as error:
        raise DocumentReadError(f"{name}: unreadable PDF page {len(texts) + 1} ({error})") from error
    return texts

