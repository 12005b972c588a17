"""Citation markers [n] and the citation check: figures and quotes in a sentence must be in its clause."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rag.records import Citation, Unsupported

MARKER = re.compile(r"\[(\d{1,3})\]")
# numbers with their units/percent, dates and years: 6000亿元, 3.2万家, 65%, 2026年, 1000名
FIGURE = re.compile(r"\d+(?:[.,．]\d+)*\s*(?:%|％|万亿|亿|万|千|百)?")
QUOTED = re.compile(r"[“\"「『]([^”\"」』]{2,40})[”\"」』]")
SENTENCE_END = re.compile(r"(?<=[。；！？!?;])")
# an answer's own list numbering ("1. …", "2、…") at a line's start: not a figure of the clause (3.5亿元 is one)
ENUMERATOR = re.compile(r"^\s*\d{1,3}[.．、](?!\d)\s*")
_CN_DIGITS = str.maketrans("０１２３４５６７８９．，％", "0123456789.,%")


_WIDE = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}  # full-width → ASCII (NFKC's own)
_WIDE_CHAR = re.compile("[\uff01-\uff5e\u3000]")


def _narrow(match: re.Match[str]) -> str:
    return _WIDE[match.group()]


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Normalise for comparison: no whitespace, full-width digits/punctuation folded (NFKC).
    Cached: every answer folds the same clause sentences again (a quarter of an answer's own time).
    The full-width forms are mapped first, as NFKC maps them (a regex: 7 µs for a 400-character clause
    against 24 µs for `str.translate`); what is left is nearly always NFKC already, which `is_normalized`
    tells without building a new string. `str.split()` splits at exactly the characters `\\s` matches."""
    text = _WIDE_CHAR.sub(_narrow, text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return "".join(text.split())


def split_sentences(text: str) -> list[str]:
    """Split at 。；！？ (keeping the mark); newlines also end a sentence."""
    out: list[str] = []
    for line in text.split("\n"):
        out += [s.strip() for s in SENTENCE_END.split(line) if s.strip()]
    return out


def markers_in(text: str) -> list[int]:
    return [int(m) for m in MARKER.findall(text)]


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def sentences_with_markers(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences (a line or a 。-terminated span) with the markers that follow each."""
    parts: list[tuple[str, list[int]]] = []
    for line in answer.split("\n"):
        line = ENUMERATOR.sub("", line, count=1)
        for chunk in re.split(r"(?<=[。；！？!?])(?!\[)|(?<=\])(?=[^\[])", line):
            chunk = chunk.strip()
            if not chunk:
                continue
            nums = markers_in(chunk)
            body = strip_markers(chunk).strip(" \t-•*")
            if body.strip("。；，、 "):
                parts.append((body, nums))
    # markers placed after the sentence end belong to the previous sentence
    merged: list[tuple[str, list[int]]] = []
    for body, nums in parts:
        if merged and not body.strip("。；！？ ") and nums:
            merged[-1][1].extend(nums)
        else:
            merged.append((body, nums))
    return merged


def check_citations(answer: str, citations: list[Citation]) -> list[Unsupported]:
    """Every figure and quoted phrase of a sentence must occur in (one of) the clause(s) it cites, or in the
    title of a cited clause's document (《…（2024—2026年）》 before a comparison's quotes)."""
    by_n = {c.n: c for c in citations}
    problems: list[Unsupported] = []
    for sentence, nums in sentences_with_markers(answer):
        claims = [m.group(0).strip() for m in FIGURE.finditer(sentence)] + QUOTED.findall(sentence)
        claims = [c for c in claims if fold(c)]
        if not claims:
            continue
        if not nums:
            problems.append(Unsupported(sentence, None, "cites no source but states " + "、".join(claims[:3])))
            continue
        cited = [by_n[n] for n in nums if n in by_n]
        haystack = "".join(fold(c.clause.text) + "\0" + fold(c.clause.title) for c in cited)
        missing = [c for c in claims if fold(c) not in haystack]
        if missing:
            where = ",".join(f"[{n}]" for n in nums)
            problems.append(Unsupported(sentence, nums[0], f"{'、'.join(missing[:3])} not found in cited clause {where}"))
    return problems
