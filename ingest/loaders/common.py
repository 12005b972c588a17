"""What every loader shares: the `Parsed` result, titles read from text and metadata, size formatting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ingest.clean import clean_text, starts_with_marker
from rag.errors import DocumentReadError

_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a format function returns: cleaned text, title, PDF page offsets, metadata."""

    text: str
    title: str
    pages: tuple[int, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # parts that could not be read ("page 3: OCR took over 120 s")


def meta_value(value: Any) -> str:
    """A metadata value as stored: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f}".removesuffix(".0")



def _nonempty(text: str, name: str) -> str:
    if not text.strip():
        raise DocumentReadError(f"{name}: no text left after cleaning (only page furniture or markup)")
    return text



# ---------------------------------------------------------------- titles

_DOC_TYPE_END = re.compile(
    r"(?:意见|通知|办法|规划|计划|条例|决定|方案|规定|报告|批复|细则|措施|纲要|法|规则|决议|公告|通告|函|准则"
    r"|指南|要点|章程|守则|令|公报|通报|清单|目录|标准|制度)$"
)
_TRAILING_NOTE = re.compile(r"(?:[（(][^（）()]{1,30}[）)]|[》」”])+$")
_DOC_NUMBER = re.compile(r"[〔\[［(（【]\d{4}[〕\]］)）】]\d+号")
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

