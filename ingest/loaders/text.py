"""Plain-text formats: .txt, .md and .jsonl collections (one document per line)."""

from __future__ import annotations

import codecs
import hashlib
import json

from ingest.clean import clean_text, strip_markdown
from ingest.encoding import decode_text
from ingest.loaders.common import Parsed, _first_line_title, _nonempty, clean_title, meta_value
from ingest.metadata import extract as extract_metadata
from ingest.metadata import merged
from rag.errors import DocumentReadError
from rag.records import Document

JSONL_META_FIELDS = ("doc_number", "issuer", "year", "date", "url", "doc_type", "version_date")


def load_txt(data: bytes, name: str) -> Parsed:
    """A .txt file: lines are paragraphs (hard-wrapped text is re-joined)."""
    text = _nonempty(clean_text(decode_text(data, name)), name)
    return Parsed(text, _first_line_title(text, name))


def load_markdown(data: bytes, name: str) -> Parsed:
    """A .md file: headings, emphasis, comments and link syntax stripped."""
    text = _nonempty(clean_text(strip_markdown(decode_text(data, name))), name)
    return Parsed(text, _first_line_title(text, name))



def load_jsonl(data: bytes, name: str) -> list[Document]:
    """A .jsonl collection: one document per line with `id`, `title`, `text` (markdown) and optional metadata."""
    documents = []
    lines: dict[str, int] = {}  # doc_id → the line that holds it
    for number, raw in enumerate(data.splitlines(), 1):
        if raw.strip():
            document = _jsonl_document(raw, name, number)
            if document.doc_id in lines:
                raise DocumentReadError(f"{name}: lines {lines[document.doc_id]} and {number} have the same id "
                                        f"{document.doc_id.split('#', 1)[1]!r}; give each document its own id")
            lines[document.doc_id] = number
            documents.append(document)
    if not documents:
        raise DocumentReadError(f"{name}: empty file")
    return documents


def _jsonl_document(raw: bytes, name: str, number: int) -> Document:
    try:
        record = json.loads(raw.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DocumentReadError(f"{name}: line {number}: not UTF-8 (byte {error.start})") from error
    except RecursionError as error:
        raise DocumentReadError(f"{name}: line {number}: JSON nested too deeply") from error
    except json.JSONDecodeError as error:
        raise DocumentReadError(f"{name}: line {number}: invalid JSON ({error.msg}, column {error.colno})") from error
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DocumentReadError(f"{name}: line {number}: expected an object with a \"text\" string")
    text = clean_text(strip_markdown(record["text"]))
    if not text:
        raise DocumentReadError(f"{name}: line {number}: empty text")
    doc_id = f"{name}#{record.get('id') or f'line{number}'}"
    title = clean_title(str(record.get("title") or "")) or text.split("\n", 1)[0][:80]
    meta = merged(extract_metadata(title, text),
                  {key: meta_value(record[key]) for key in JSONL_META_FIELDS if record.get(key) not in (None, "")})
    content_hash = hashlib.sha256(raw).hexdigest()
    return Document(doc_id=doc_id, source=name, title=title, text=text, content_hash=content_hash, meta=meta)
