"""DOCX loader: body paragraphs and tables in document order (python-docx), the zip checked before it is opened."""

from __future__ import annotations

import io
import re
from typing import Any

from ingest.clean import clean_text
from ingest.loaders.common import _MB, Parsed, _megabytes, _nonempty, _pick_title
from ingest.loaders.tables import is_table, table_lines
from rag.errors import DocumentReadError

MAX_UNZIPPED_MB = 200  # what a .docx may unpack to (its XML parts)
MAX_ZIP_RATIO = 100    # unpacked : packed, per entry over 1 MB (Word's XML packs about 5-10 : 1)
_WHITESPACE = re.compile(r"\s+")


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
    """Its rows as lines whose cells keep their column headers (ingest.loaders.tables); python-docx repeats a
    merged cell in every row and column it spans, and the header pairing writes it once."""
    grid = [[_WHITESPACE.sub(" ", cell.text).strip() for cell in row.cells] for row in table.rows]
    if not is_table(grid):
        return [" ".join(cell for cell in dict.fromkeys(row) if cell) for row in grid]
    return table_lines(grid)[0]
