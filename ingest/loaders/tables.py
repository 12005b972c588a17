"""Tables as text that keeps its structure: each body row becomes one line whose cells carry their column headers,
「指标：技术合同成交额；2026年目标：6000亿元」, so BM25, answers and readers see what a number is.

Loaders hand over a grid (rows of cells; None where a merged cell continues). The first row with two or more
filled cells is the header; a row above it with a single filled cell is a caption and stays a line of its own.
A merged header cell names every column it spans; a merged body cell repeats down the rows it spans.
"""

from __future__ import annotations

import re

from rag.tables import format_row

Grid = list[list[str | None]]
_SPACE = re.compile(r"\s+")
_CJK_BREAK = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")


def cell_text(text: str | None) -> str | None:
    """A cell's text on one line (a line break inside a cell is wrapping, not structure)."""
    if text is None:
        return None
    return _SPACE.sub(" ", _CJK_BREAK.sub("", text)).strip()


def is_table(grid: Grid) -> bool:
    """A real table: at least two rows with two or more filled cells (not a frame drawn round a page of text)."""
    full = [row for row in grid if sum(1 for c in row if c) >= 2]
    return len(full) >= 2 and len(full) >= len(grid) / 2


def table_lines(grid: Grid, header: list[str] | None = None) -> tuple[list[str], list[str]]:
    """The table's lines (captions, then one line per body row) and its header (to continue it on the next page).
    `header` is given when the grid continues a table whose header came before."""
    rows = [[cell_text(c) for c in row] for row in grid if any(row)]
    lines: list[str] = []
    if header is None:
        while rows and sum(1 for c in rows[0] if c) < 2:  # a caption over the table
            lines.append(next(c for c in rows[0] if c))
            rows.pop(0)
        if not rows:
            return lines, []
        header = _fill_right([c or None for c in rows.pop(0)])
    above: list[str | None] = [None] * len(header)
    for row in rows:
        cells = [c if c is not None else above[i] if i < len(above) else None for i, c in enumerate(row)]
        above = cells + above[len(cells):]
        pairs: list[tuple[str, str]] = []
        for key, value in zip(header, cells, strict=False):
            if not value:
                continue
            if pairs and pairs[-1][0] == (key or ""):  # one header over two columns: one key, both values
                if pairs[-1][1] != value:
                    pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]}，{value}")
                continue
            pairs.append((key or "", value))
        if pairs:
            lines.append(format_row(pairs))
    return lines, header


def _fill_right(cells: list[str | None]) -> list[str]:
    """A merged header cell (None after it) names every column it spans."""
    out: list[str] = []
    for cell in cells:
        out.append(cell if cell else (out[-1] if out else ""))
    return out
