"""Clause parser: splits a Document into Clauses at 第X章 第X条 一、（一）1.（1）① 一是 markers.

Markers nest by the order in which their styles first appear under a parent (一、 → （一） → 1. → 一是);
第X部分/篇/编/分编/章/节 nest by rank and 第X条 is the unit of a law (its （一） items stay in its text).
A clause's `path` holds its markers in display form (（一） not (一), 1. not 1、), so its label reads
二、（二）1.一是 or 第三章第十二条; the text before the first marker is the clause with label "".
`headings` are the ancestors' marker + short heading (二、构建创新生态系统, 第一章 总则). A clause longer
than `max_chars` becomes windows cut at sentence ends, with ids label, label~2, …; later windows also
carry the clause's own heading. Repeated labels get ~2, ~3 the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.records import Clause, Document

# A change to what this parser writes must bump rag.index.PARSER_VERSION, so that indexes are rebuilt.

_CN = "一二三四五六七八九十"
_CN_LAW = _CN + "百千零〇两"
_DIGIT = "0-9０-９"
_ASCII_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# Containers nest in a fixed order; every other marker style nests by order of first appearance.
_CONTAINER_RANK = {"部分": 0, "篇": 0, "分编": 1, "编": 0, "章": 2, "节": 3}  # 分编 before 编: matched by suffix
_ARTICLE = "条"

# 第X条 followed by one of these is a cross-reference (第十条规定, 第四十三条第一款第一项), not an article.
_REFERENCE_TAIL = r"(?:第|之|的|规定|所[称述列规指]|[、，,。；;至到和及或与款项）)》」”])"

_LINE_MARKER = re.compile(
    r"^[^\S\n]*(?:"
    rf"(?P<container>第[{_CN_LAW}{_DIGIT}]{{1,6}}(?:部分|篇|分编|编|章|节))"
    rf"|(?P<article>第[{_CN_LAW}{_DIGIT}]{{1,8}}条(?:之[{_CN}]{{1,3}})?)(?!{_REFERENCE_TAIL})"
    rf"|(?P<subarticle>第[{_CN_LAW}{_DIGIT}]{{1,4}}[款项])(?=[^\S\n])"  # only as "第一款 …"
    rf"|(?P<cn>[{_CN}]{{1,3}}(?:、|[.．](?![{_DIGIT}])))(?![{_CN}]{{1,3}}[、级类等档])"  # 一、 一. not 一、二级
    rf"|(?P<cn_paren>[（(][{_CN}]{{1,3}}[）)])"
    rf"|(?P<num>[{_DIGIT}]{{1,3}}[.．、])(?![{_DIGIT}])"  # 1. but not 3.2万家
    rf"|(?P<num_paren>[（(][{_DIGIT}]{{1,3}}[）)])"
    r"|(?P<circled>[①-⑳])"
    rf"|(?P<point>[{_CN}]{{1,3}}是)(?!否)"
    r")",
    re.MULTILINE,
)
# 一是…。二是… listed inside one paragraph; kept only as a run 一是, 二是, … (see _inline_points).
_INLINE_POINT = re.compile(rf"(?<=[。；：;:])[^\S\n]*(?P<point>[{_CN}]{{1,3}}是)(?!否)")
# A 第X章 line is a heading only if it reads like one: "第四章 乡、镇人民代表大会主席团，主席" or "第六章法律责任",
# not "第七节相应改为第八节，第一百二十三条…。"
_HEADING_LINE = re.compile(
    r"(?:[^\S\n][^；：！？;:!?\n]{0,60}|[^，。；：！？,;:!?\n]{0,30})(?:\n|$)"
)
_HEADING_STOP = re.compile(r"[。：；！？:;!?]")
_WORD_GAP = re.compile(r"(?<=\S\S)\s")  # "指导思想 以习近平…": the heading ends at the gap
_SENTENCE_END = re.compile(r"[。；！？!?;]|\n")
_SOFT_BREAK = re.compile(r"[，,、：:]")
_HEADING_CHARS = 30

# A well-formed label: normalised markers, outermost first ("" for the preamble).
_LABEL_PART = (
    rf"第[{_CN_LAW}0-9]+(?:部分|篇|分编|编|章|节|条(?:之[{_CN}]+)?|款|项)"
    rf"|[{_CN}]+、|（[{_CN}]+）|[0-9]+\.|（[0-9]+）|[①-⑳]|[{_CN}]+是"
)
LABEL_RE = re.compile(rf"(?:{_LABEL_PART})*")
LABEL_PART_RE = re.compile(_LABEL_PART)


@dataclass(frozen=True, slots=True)
class Marker:
    """A clause marker found in a text: where it is, its style and its display form."""

    start: int
    end: int
    style: str  # 部分 篇 编 分编 章 节 条 款 项 cn cn_paren num num_paren circled point
    label: str  # normalised: （一） 1. （1） 第十二条


@dataclass(frozen=True, slots=True)
class _Node:
    marker: Marker
    path: tuple[str, ...]
    ancestors: tuple[int, ...]  # indexes of the enclosing nodes, outermost first


def split_clauses(doc: Document, max_chars: int = 600) -> list[Clause]:
    """Split a cleaned Document into one Clause per numbered clause (long ones into windows)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    text = doc.text
    nodes = _build_tree(find_markers(text))
    starts = [n.marker.start for n in nodes]
    ends = starts[1:] + [len(text)] if nodes else []
    headings = [_heading(text, n.marker, end) for n, end in zip(nodes, ends, strict=True)]
    meta = dict(doc.meta)
    clauses: list[Clause] = []
    seen: dict[str, int] = {}

    def emit(path: tuple[str, ...], ancestry: tuple[str, ...], own: str, start: int, end: int) -> None:
        label = "".join(path)
        for i, (s, e) in enumerate(_windows(text, start, end, max_chars)):
            n = seen[label] = seen.get(label, 0) + 1
            clauses.append(Clause(
                clause_id=f"{doc.doc_id}#{label}" + (f"~{n}" if n > 1 else ""),
                doc_id=doc.doc_id, title=doc.title, path=path,
                # a continuation window repeats its clause's heading so it still says what it is about
                headings=ancestry + (own,) if i and own else ancestry,
                text=text[s:e], start=s, end=e, page=doc.page_at(s), source=doc.source, meta=meta,
            ))

    emit((), (), "", 0, starts[0] if nodes else len(text))  # title and preamble
    for node, end, own in zip(nodes, ends, headings, strict=True):
        emit(node.path, tuple(headings[k] for k in node.ancestors), own, node.marker.start, end)
    return clauses


def find_markers(text: str) -> list[Marker]:
    """Every clause marker in `text` that could open a clause, in text order (before nesting)."""
    markers = []
    for match in _LINE_MARKER.finditer(text):
        kind = match.lastgroup
        start, end = match.span(kind)
        if kind == "container" and not _HEADING_LINE.match(text, end):
            continue  # 第七节相应改为第八节，… is a sentence, not a section heading
        style = _style(kind, match.group(kind))
        markers.append(Marker(start, end, style, _normalise(style, match.group(kind))))
    markers += _inline_points(text, markers)
    markers.sort(key=lambda m: m.start)
    return markers


def _style(kind: str, raw: str) -> str:
    if kind == "container":
        return next(unit for unit in _CONTAINER_RANK if raw.endswith(unit))
    if kind == "article":
        return _ARTICLE
    return raw[-1] if kind == "subarticle" else kind


def _normalise(style: str, raw: str) -> str:
    raw = raw.translate(_ASCII_DIGITS)
    if style in ("cn_paren", "num_paren"):
        return f"（{raw[1:-1]}）"
    if style == "num":
        return raw[:-1] + "."
    if style == "cn":
        return raw[:-1] + "、"
    return raw


def _inline_points(text: str, line_markers: list[Marker]) -> list[Marker]:
    """一是/二是… after 。；： inside a paragraph, kept only where they count up from 一是."""
    line_points = {text.rfind("\n", 0, m.start) + 1: _cn_number(m.label[:-1])
                   for m in line_markers if m.style == "point"}
    by_line: dict[int, list[tuple[Marker, int]]] = {}
    for match in _INLINE_POINT.finditer(text):
        start, end = match.span("point")
        marker = Marker(start, end, "point", match.group("point"))
        by_line.setdefault(text.rfind("\n", 0, start) + 1, []).append((marker, _cn_number(marker.label[:-1])))
    kept = []
    for line_start, candidates in by_line.items():
        first = line_points.get(line_start)  # the point that opens the line, if any
        expected = first + 1 if first else None
        for i, (marker, number) in enumerate(candidates):
            if number == expected:
                kept.append(marker)
                expected += 1
            elif number == 1 and i + 1 < len(candidates) and candidates[i + 1][1] == 2:
                kept.append(marker)
                expected = 2
    return kept


def _cn_number(numeral: str) -> int:
    """一 → 1, 十二 → 12, 二十 → 20 (numerals up to 九十九)."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    if "十" not in numeral:
        return digits.get(numeral, 0) if len(numeral) == 1 else 0
    tens, _, units = numeral.partition("十")
    return (digits.get(tens, 0) if tens else 1) * 10 + (digits.get(units, 0) if units else 0)


def _build_tree(markers: list[Marker]) -> list[_Node]:
    """Nest markers with a stack: a style already open closes back to its level, a new one goes deeper."""
    nodes: list[_Node] = []
    stack: list[int] = []  # indexes into nodes
    for marker in markers:
        if stack and nodes[stack[-1]].marker.style == "point" and marker.style != "point":
            stack.pop()  # 一是/二是 are the innermost level: they never hold （一） or 1.
        rank = _CONTAINER_RANK.get(marker.style)
        if rank is not None:
            while stack and _CONTAINER_RANK.get(nodes[stack[-1]].marker.style, rank) >= rank:
                stack.pop()
        else:
            level = next((i for i, k in enumerate(stack) if nodes[k].marker.style == marker.style), None)
            if level is not None:
                del stack[level:]
            elif any(nodes[k].marker.style == _ARTICLE for k in stack):
                continue  # a law article's items （一）… and 款/项 stay in the article's text
        path = tuple(nodes[k].marker.label for k in stack) + (marker.label,)
        nodes.append(_Node(marker, path, tuple(stack)))
        stack.append(len(nodes) - 1)
    return nodes


def _heading(text: str, marker: Marker, end: int) -> str:
    """The marker and its short heading: 二、构建创新生态系统, 第一章 总则, 1.构建重大技术创新体系."""
    line_end = text.find("\n", marker.end, end)
    rest = text[marker.end : line_end if line_end != -1 else end].strip()
    rest = _HEADING_STOP.split(rest, maxsplit=1)[0]
    rest = _WORD_GAP.split(rest, maxsplit=1)[0]
    rest = "".join(rest.split())[:_HEADING_CHARS]  # 总　　则 → 总则
    if not rest:
        return marker.label
    return f"{marker.label} {rest}" if marker.style in _CONTAINER_RANK else marker.label + rest


def _windows(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Stripped spans of at most max_chars covering text[start:end], cut at sentence ends where possible."""
    spans = []
    s = _skip_space(text, start, end)
    while s < end:
        e = end if end - s <= max_chars else _cut(text, s, s + max_chars)
        spans.append((s, _strip_end(text, s, e)))
        s = _skip_space(text, e, end)
    return spans


def _cut(text: str, start: int, limit: int) -> int:
    """The end of the last sentence in text[start:limit], else of its last phrase (in its second half), else limit."""
    for pattern, earliest in ((_SENTENCE_END, start), (_SOFT_BREAK, (start + limit) // 2)):
        ends = [match.end() for match in pattern.finditer(text, earliest, limit)]
        if ends:
            return ends[-1]
    return limit


def _skip_space(text: str, i: int, end: int) -> int:
    while i < end and text[i].isspace():
        i += 1
    return i


def _strip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
