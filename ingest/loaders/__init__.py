"""Document loaders: one module per format turns a corpus file into cleaned `Document`s.

`load_documents(path)` is the entry point; `pdf.py`, `ocr.py` (pages without a text layer), `html.py`,
`docx.py`, `text.py` (.txt, .md, .jsonl) and `tables.py` (table rows that keep their column headers) do the work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from ingest.loaders.common import (Parsed, _megabytes, clean_title, looks_like_heading, looks_like_title,
                                   meta_value)
from ingest.loaders.docx import MAX_UNZIPPED_MB, MAX_ZIP_RATIO, load_docx
from ingest.loaders.ocr import OcrOptions
from ingest.loaders.html import MAX_HTML_MB, load_html
from ingest.loaders.pdf import MAX_PDF_SECONDS, _pdf_page_texts, load_pdf
from ingest.loaders.text import JSONL_META_FIELDS, load_jsonl, load_markdown, load_txt
from ingest.metadata import extract as extract_metadata
from ingest.metadata import merged
from rag.errors import DocumentReadError, UnsupportedFormatError
from rag.records import Document

__all__ = ["SUPPORTED_SUFFIXES", "SIDECAR_SUFFIX", "JSONL_META_FIELDS", "MAX_HTML_MB", "MAX_UNZIPPED_MB",
           "MAX_ZIP_RATIO", "MAX_PDF_SECONDS", "Parsed", "is_sidecar", "load_documents", "load_txt", "load_markdown",
           "load_pdf", "load_html", "load_docx", "load_jsonl", "looks_like_title", "looks_like_heading", "clean_title",
           "_pdf_page_texts", "OcrOptions"]

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".html", ".htm", ".docx", ".jsonl")
SIDECAR_SUFFIX = ".meta.json"  # x.pdf.meta.json: {"title", "issuer", "date", "doc_number", …}


def is_sidecar(path: Path) -> bool:
    """A `<file>.meta.json` metadata sidecar: read with its file, never loaded as a document."""
    return path.name.endswith(SIDECAR_SUFFIX)


def load_documents(path: Path, root: Path | None = None, max_bytes: int | None = None,
                   ocr: OcrOptions | None = None) -> list[Document]:
    """Read one corpus file: one Document, or one per line of a .jsonl collection. `ocr` says how a PDF's pages
    without a text layer are read (default: by OCR)."""
    name = path.relative_to(root).as_posix() if root is not None else path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = " ".join(SUPPORTED_SUFFIXES)
        raise UnsupportedFormatError(f"{name}: unsupported file type '{suffix or path.name}' (supported: {supported})")
    data = _read_bytes(path, name, max_bytes)
    if not data:  # else each format names its own symptom ("File is not a zip file" for a .docx)
        raise DocumentReadError(f"{name}: empty file (0 bytes)")
    if suffix == ".jsonl":
        return load_jsonl(data, name)
    parsed = _parse(suffix, data, name, ocr)
    sidecar = _read_sidecar(path, name)
    title = sidecar.pop("title", "") or parsed.title
    return [
        Document(
            doc_id=name,
            source=name,
            title=title,
            text=parsed.text,
            content_hash=hashlib.sha256(data).hexdigest(),
            pages=parsed.pages,
            meta=merged(extract_metadata(title, parsed.text), parsed.meta, sidecar),
            problems=parsed.problems,
        )
    ]


def _parse(suffix: str, data: bytes, name: str, ocr: OcrOptions | None = None) -> Parsed:
    """The format's parser; whatever a hostile or broken file makes a parser raise becomes one error naming it."""
    from rag.errors import IngestInterrupted

    try:
        return load_pdf(data, name, ocr) if suffix == ".pdf" else _PARSERS[suffix](data, name)
    except (DocumentReadError, IngestInterrupted):
        raise
    except RecursionError as error:
        raise DocumentReadError(f"{name}: nested too deeply to read") from error
    except Exception as error:  # noqa: BLE001 - a third-party parser's failure on one file must not end the ingest
        raise DocumentReadError(f"{name}: not a readable {suffix} file ({type(error).__name__}: {error})") from error


def _read_bytes(path: Path, name: str, max_bytes: int | None) -> bytes:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DocumentReadError(f"{name}: {_megabytes(size)} MB is over the {_megabytes(max_bytes)} MB limit")
        return path.read_bytes()
    except OSError as error:
        raise DocumentReadError(f"{name}: cannot read ({error.strerror or error})") from error


def _read_sidecar(path: Path, name: str) -> dict[str, str]:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        values = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except RecursionError as error:
        raise DocumentReadError(f"{name}{SIDECAR_SUFFIX}: JSON nested too deeply") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DocumentReadError(f"{name}{SIDECAR_SUFFIX}: not readable JSON ({error})") from error
    if not isinstance(values, dict):
        raise DocumentReadError(f"{name}{SIDECAR_SUFFIX}: expected a JSON object like {{\"title\": …}}")
    return {str(key): meta_value(value) for key, value in values.items() if value not in (None, "")}





_PARSERS: dict[str, Callable[[bytes, str], Parsed]] = {
    ".txt": load_txt,
    ".md": load_markdown,
    ".pdf": load_pdf,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
}

