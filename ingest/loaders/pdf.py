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
from ingest.loaders.tables import is_table, table_lines
from ingest.loaders.ocr import OcrOptions, PageError, PageReader, needs_ocr, page_ranges
from rag.errors import DocumentReadError
from rag.records import OCR_PAGES

MAX_PDF_SECONDS = 300  # reading a PDF's text layer: a 300-page plan takes under a minute on 2 cores
MAX_TABLE_SECONDS = 120  # looking for ruled tables (pdfplumber, 0.04-0.13 s a page); pages after keep pypdf's text


class _DropWrongPointingObject(logging.Filter):
    """pypdf logs one line per broken xref entry of macOS Quartz PDFs; extraction works regardless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Ignoring wrong pointing object")


logging.getLogger("pypdf._reader").addFilter(_DropWrongPointingObject())
# pdfminer (under pdfplumber) warns once per font of many office PDFs that lack a FontBBox; tables read regardless
logging.getLogger("pdfminer.pdffont").setLevel(logging.ERROR)


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
    _keep_tables(data, pages, skip=set(scanned))
    if scanned and not read and not any(page.strip() for i, page in enumerate(pages) if i not in scanned):
        raise DocumentReadError(f"{name}: no text layer (scanned/image-only PDF), and OCR could read none of its "
                                f"pages ({'; '.join(problems[:3])})")
    if read and not any(page.strip() for page in pages):
        raise DocumentReadError(f"{name}: no text layer (scanned/image-only PDF), and OCR found no text in it")
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
                lines = reader.read(index)
                if not lines or needs_ocr("\n".join(lines)):  # blank, undecodable, or a few stray marks read
                    raise PageError("OCR found no readable text on it")
                pages[index] = "\n".join(lines)
                read.append(index + 1)
            except PageError as error:
                problems.append(f"page {index + 1}: {error}")
            if ocr.on_page:
                ocr.on_page(done + 1, len(scanned))
    return read, problems


def _keep_tables(data: bytes, pages: list[str], skip: set[int], max_seconds: float = MAX_TABLE_SECONDS) -> None:
    """Pages holding a ruled table get their text from pdfplumber: the text above, between and below each table
    as lines, and the table as rows whose cells keep their headers. A table that ends at the foot of a page and
    one with as many columns at the head of the next are one table (the header is not repeated)."""
    import pdfplumber

    deadline = time.monotonic() + max_seconds
    header: list[str] = []
    ended_at_foot = False
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for index, page in enumerate(pdf.pages):
            if index in skip or time.monotonic() > deadline:  # past the budget: the text layer as pypdf read it
                header, ended_at_foot = [], False
                continue
            tables = [t for t in page.find_tables() if is_table(t.extract())]
            if not tables:
                header, ended_at_foot = [], False
                continue
            parts, top = [], 0.0
            for table in sorted(tables, key=lambda t: t.bbox[1]):
                x0, y0, x1, y1 = table.bbox
                parts.append(_text_between(page, top, y0))
                grid = table.extract()
                continues = ended_at_foot and y0 < 0.15 * page.height and header and len(grid[0]) == len(header)
                lines, header = table_lines(grid, header if continues else None)
                parts.append("\n".join(lines))
                top, ended_at_foot = y1, y1 > 0.85 * page.height
            parts.append(_text_between(page, top, page.height))
            pages[index] = "\n".join(part for part in parts if part.strip())
            page.flush_cache()  # pdfplumber keeps every page's layout otherwise: memory would grow with the file


def _text_between(page: Any, top: float, bottom: float) -> str:
    if bottom - top < 1:
        return ""
    return page.crop((0, top, page.width, bottom)).extract_text() or ""


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

