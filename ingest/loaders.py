"""Document loaders: one function per format turns a corpus file into cleaned `Document`s."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ingest.metadata import extract as extract_metadata
from ingest.metadata import merged
from ingest.clean import clean_pages, clean_text, starts_with_marker, strip_markdown
from ingest.encoding import decode_text
from rag.errors import DocumentReadError, UnsupportedFormatError
from rag.records import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".html", ".htm", ".docx", ".jsonl")
SIDECAR_SUFFIX = ".meta.json"  # x.pdf.meta.json: {"title", "issuer", "date", "doc_number", …}
JSONL_META_FIELDS = ("doc_number", "issuer", "year", "date", "url", "doc_type", "version_date")
_MB = 1024 * 1024
MAX_HTML_MB = 20       # a policy page is well under 1 MB; parsing takes about a second per MB
MAX_UNZIPPED_MB = 200  # what a .docx may unpack to (its XML parts)
MAX_ZIP_RATIO = 100    # unpacked : packed, per entry over 1 MB (Word's XML packs about 5-10 : 1)
MAX_PDF_SECONDS = 300  # reading a PDF's text layer: a 300-page plan takes under a minute on 2 cores


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a format function returns: cleaned text, title, PDF page offsets, metadata."""

    text: str
    title: str
    pages: tuple[int, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)


def is_sidecar(path: Path) -> bool:
    """A `<file>.meta.json` metadata sidecar: read with its file, never loaded as a document."""
    return path.name.endswith(SIDECAR_SUFFIX)


def load_documents(path: Path, root: Path | None = None, max_bytes: int | None = None) -> list[Document]:
    """Read one corpus file: one Document, or one per line of a .jsonl collection."""
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
    parsed = _parse(suffix, data, name)
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
        )
    ]


def _parse(suffix: str, data: bytes, name: str) -> Parsed:
    """The format's parser; whatever a hostile or broken file makes a parser raise becomes one error naming it."""
    from rag.errors import IngestInterrupted

    try:
        return _PARSERS[suffix](data, name)
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


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f}".removesuffix(".0")


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
    return {str(key): _meta_value(value) for key, value in values.items() if value not in (None, "")}


def _meta_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- titles

_DOC_TYPE_END = re.compile(
    r"(?:意见|通知|办法|规划|计划|条例|决定|方案|规定|报告|批复|细则|措施|纲要|法|规则|决议|公告|通告|函|准则"
    r"|指南|要点|章程|守则|令|公报|通报|清单|目录|标准|制度)$"
)
_TRAILING_NOTE = re.compile(r"(?:[（(][^（）()]{1,30}[）)]|[》」”])+$")
_DOC_NUMBER = re.compile(r"[〔\[［(（]\d{4}[〕\]］)）]\d+号")
_DATE = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$")
_SITE_SUFFIX = re.compile(r"\s*(?:_|\s[-–—|]|[-–—|]\s).*$", re.DOTALL)
_WORD_PREFIX = re.compile(r"^Microsoft Word\s*-\s*")


def looks_like_title(text: str) -> bool:
    """A Chinese document title: 4–80 characters ending in a document type (意见, 通知, 条例, 规划（2024—2026年）…)."""
    core = _TRAILING_NOTE.sub("", text)
    return 4 <= len(text) <= 80 and bool(_DOC_TYPE_END.search(core)) and not _DOC_NUMBER.search(text)


def looks_like_heading(line: str) -> bool:
    """A short line that is not a sentence and not a numbered clause."""
    return 2 <= len(line) <= 60 and not line.endswith(("。", "！", "？", "；", "：", "，")) and not starts_with_marker(line)


def clean_title(raw: str) -> str:
    """A title from metadata or a page title: site suffixes (`_中国政府网`, ` - 政策文件`) removed, text cleaned."""
    text = _SITE_SUFFIX.sub("", _WORD_PREFIX.sub("", raw.strip()))
    return clean_text(text).replace("\n", "") if text.strip() else ""


def _first_line_title(text: str, name: str) -> str:
    """The first line when it reads like a title, else the file name without extension."""
    first = text.split("\n", 1)[0]
    return first if looks_like_heading(first) else PurePosixPath(name).stem


def _leading_title(text: str, lines_to_search: int = 5) -> str:
    """A title among a PDF's first lines, possibly wrapped over two (`国务院办公厅关于印发` + `…规划的通知`)."""
    lines = text.split("\n")[:lines_to_search]
    usable = [not (_DOC_NUMBER.search(line) or _DATE.match(line) or line.endswith(("。", "："))) for line in lines]
    for i, line in enumerate(lines):
        if not usable[i]:
            continue
        if looks_like_title(line):
            return line
        if i + 1 < len(lines) and usable[i + 1] and looks_like_title(line + lines[i + 1]):
            return line + lines[i + 1]
    return ""


def _pick_title(candidates: list[str], text: str, name: str) -> str:
    """The first candidate that looks like a title, else the first line or the file name."""
    titles = [clean_title(c) for c in candidates if c and c.strip()]
    return next((t for t in titles if looks_like_title(t)), "") or _first_line_title(text, name)


# ---------------------------------------------------------------- plain text and markdown


def load_txt(data: bytes, name: str) -> Parsed:
    """A .txt file: lines are paragraphs (hard-wrapped text is re-joined)."""
    text = _nonempty(clean_text(decode_text(data, name)), name)
    return Parsed(text, _first_line_title(text, name))


def load_markdown(data: bytes, name: str) -> Parsed:
    """A .md file: headings, emphasis, comments and link syntax stripped."""
    text = _nonempty(clean_text(strip_markdown(decode_text(data, name))), name)
    return Parsed(text, _first_line_title(text, name))


def _nonempty(text: str, name: str) -> str:
    if not text.strip():
        raise DocumentReadError(f"{name}: no text left after cleaning (only page furniture or markup)")
    return text


# ---------------------------------------------------------------- PDF


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


# ---------------------------------------------------------------- HTML

_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "button",
              "select", "template", "svg")
_CONTENT_HINT = re.compile(r"content|zoom|article|TRS_Editor|detail", re.IGNORECASE)
_BLOCK_TAGS = ("p", "div", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table",
               "section", "article", "main", "blockquote", "pre", "center", "hr", "figure", "figcaption", "address")
_CJK = re.compile(r"[\u3400-\u9fff]")
_WHITESPACE = re.compile(r"\s+")


def load_html(data: bytes, name: str) -> Parsed:
    """An .html page: the main content container only, block elements as lines."""
    from bs4 import BeautifulSoup

    if len(data) > MAX_HTML_MB * _MB:
        raise DocumentReadError(f"{name}: an HTML page of {_megabytes(len(data))} MB; at most {MAX_HTML_MB} MB is read "
                                "(a policy page has well under 1 MB)")
    soup = BeautifulSoup(decode_text(data, name), "html.parser")
    candidates = _html_title_candidates(soup)
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    text = _nonempty(clean_text(_block_text(_main_content(soup))), name)
    return Parsed(text, _pick_title(candidates, text, name))


def _html_title_candidates(soup: Any) -> list[str]:
    """<meta name="ArticleTitle">, then <h1>s, then <title>, in that order of trust."""
    meta = soup.find("meta", attrs={"name": re.compile("^ArticleTitle$", re.IGNORECASE)})
    h1s = [h1.get_text(" ", strip=True) for h1 in soup.find_all("h1")]
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    return [meta.get("content", "") if meta else "", *h1s, page_title]


def _cjk_counts(root: Any) -> dict[int, int]:
    """CJK characters under every element of `root` (by id), in one pass over the tree: counting each element
    with get_text() is quadratic in the nesting depth (a page nested 10,000 deep took a minute)."""
    from bs4 import NavigableString, Tag

    counts: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            counts[id(node)] = sum(counts.get(id(c), 0) if isinstance(c, Tag) else
                                   len(_CJK.findall(c)) if isinstance(c, NavigableString) else 0
                                   for c in node.contents)
        elif isinstance(node, Tag):
            stack.append((node, True))
            stack.extend((child, False) for child in node.contents if isinstance(child, Tag))
    return counts


def _main_content(soup: Any) -> Any:
    """The content container: a named one (<article>, #content, .TRS_Editor…) or the CJK-dense descendant."""
    body = soup.body or soup
    counts = _cjk_counts(body)
    total = counts[id(body)]
    named = [
        element for element in body.find_all(True)
        if element.name in ("article", "main")
        or _CONTENT_HINT.search(" ".join([element.get("id") or "", *element.get("class", [])]))
    ]
    best = max(named, key=lambda e: counts[id(e)], default=None)
    if best is not None and total and counts[id(best)] >= 0.5 * total:
        return best
    return _descend(body, counts)


def _descend(element: Any, counts: dict[int, int], share: float = 0.85) -> Any:
    """Walk down while a single child holds nearly all of the CJK text."""
    while True:
        total = counts[id(element)]
        child = max(element.find_all(True, recursive=False), key=lambda e: counts[id(e)], default=None)
        if child is None or not total or counts[id(child)] < share * total:
            return element
        element = child


def _block_text(root: Any) -> str:
    """Text with a line per block element and per table row (`cell | cell`); source line breaks are spaces.

    One walk over the tree, rewriting nothing: bs4's replace_with looks the node up among its siblings, so
    rewriting each string made a flat page of many paragraphs quadratic."""
    from bs4 import CData, NavigableString, Tag

    out: list[str] = []
    stack: list[tuple[Any, bool]] = [(child, False) for child in reversed(root.contents)]
    while stack:
        node, in_pre = stack.pop()
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # not comments, doctypes or processing instructions
                out.append(node if in_pre else _WHITESPACE.sub(" ", node))
            elif type(node) is CData:
                out.append(node)
            continue
        if isinstance(node, str):  # a block's closing line break
            out.append(node)
            continue
        if not isinstance(node, Tag):
            continue
        if node.name == "br":
            out.append("\n")
        elif node.name == "tr":
            cells = [_WHITESPACE.sub(" ", cell.get_text(" ", strip=True)) for cell in node.find_all(["td", "th"])]
            out.append("\n" + " | ".join(cell for cell in cells if cell) + "\n")
        else:
            block = node.name in _BLOCK_TAGS
            if block:
                out.append("\n")
                stack.append(("\n", True))  # the line break after the block, once its children are out
            in_pre = in_pre or node.name == "pre"
            stack.extend((child, in_pre) for child in reversed(node.contents))
    return "".join(out)


# ---------------------------------------------------------------- DOCX


def load_docx(data: bytes, name: str) -> Parsed:
    """A .docx: body paragraphs and tables in document order, table rows as `cell | cell` lines."""
    from docx.table import Table

    document = _open_docx(data, name)
    lines: list[str] = []
    for block in document.iter_inner_content():
        lines += _table_lines(block) if isinstance(block, Table) else [block.text]
    text = _nonempty(clean_text("\n".join(lines)), name)
    headings = [p.text for p in document.paragraphs if p.style is not None and p.style.name in ("Title", "Heading 1")]
    return Parsed(text, _pick_title([document.core_properties.title or "", *headings[:1]], text, name))


def _open_docx(data: bytes, name: str) -> Any:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    _check_zip(data, name)
    try:
        return docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as error:
        raise DocumentReadError(f"{name}: not a readable .docx ({error or type(error).__name__})") from error


def _check_zip(data: bytes, name: str) -> None:
    """Refuse a .docx that could not be unpacked safely: encrypted or oddly compressed entries, or one that would
    unpack to far more than its size (a zip bomb). Reading stops at each entry's declared size, so checking the
    declared sizes bounds the memory."""
    import zipfile

    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        return  # python-docx names it as not a .docx
    total = 0
    for entry in entries:
        if entry.flag_bits & 0x1:
            raise DocumentReadError(f"{name}: encrypted .docx ({entry.filename}); save it again without a password")
        if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DocumentReadError(f"{name}: {entry.filename} uses a compression method Word does not write "
                                    f"(method {entry.compress_type})")
        if entry.file_size > _MB and entry.file_size > MAX_ZIP_RATIO * max(entry.compress_size, 1):
            raise DocumentReadError(f"{name}: {entry.filename} would unpack {entry.compress_size} bytes to "
                                    f"{_megabytes(entry.file_size)} MB (a zip bomb?); not read")
        total += entry.file_size
    if total > MAX_UNZIPPED_MB * _MB:
        raise DocumentReadError(f"{name}: unpacks to {_megabytes(total)} MB, over the {MAX_UNZIPPED_MB} MB a .docx may have")


def _table_lines(table: Any) -> list[str]:
    """One `cell | cell` line per row; a merged cell is repeated by python-docx, so it is kept once."""
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(_WHITESPACE.sub(" ", cell.text).strip())
        lines.append(" | ".join(cell for cell in cells if cell))
    return lines


# ---------------------------------------------------------------- JSONL collections


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
                  {key: _meta_value(record[key]) for key in JSONL_META_FIELDS if record.get(key) not in (None, "")})
    content_hash = hashlib.sha256(raw).hexdigest()
    return Document(doc_id=doc_id, source=name, title=title, text=text, content_hash=content_hash, meta=meta)


_PARSERS: dict[str, Callable[[bytes, str], Parsed]] = {
    ".txt": load_txt,
    ".md": load_markdown,
    ".pdf": load_pdf,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
}
