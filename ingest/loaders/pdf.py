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
from rag.errors import DocumentReadError

MAX_PDF_SECONDS = 300  # reading a PDF's text layer: a 300-page plan takes under a minute on 2 cores


class _DropWrongPointingObject(logging.Filter):
    """pypdf logs one line per broken xref entry of macOS Quartz PDFs; extraction works regardless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Ignoring wrong pointing object")


logging.getLogger("pypdf._reader").addFilter(_DropWrongPointingObject())


def load_pdf(data: bytes, name: str) -> Parsed:
    """A .pdf with a text layer: pages extracted with pypdf, cleaned and re-joined, page offsets kept."""
    reader = _open_pdf(data, name)
    pages = _pdf_page_texts(reader, name)
    if not any(page.strip() for page in pages):
        raise DocumentReadError(f"{name}: no text layer (scanned/image-only PDF); run OCR first")
    text, offsets = clean_pages(pages)
    text = _nonempty(text, name)
    return Parsed(text, _pdf_title(reader, text, name), offsets)


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

