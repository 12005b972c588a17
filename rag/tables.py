"""The text form of a table row: 「指标：技术合同成交额；2026年目标：6000亿元」, written by the loaders and read back
by whatever shows a clause as a table (the source card)."""

from __future__ import annotations

KEY_SEP = "："
CELL_SEP = "；"


def format_row(pairs: list[tuple[str, str]]) -> str:
    """(header, cell) pairs as one line; a cell without a header is written alone."""
    return CELL_SEP.join(f"{key}{KEY_SEP}{value}" if key else value for key, value in pairs)


def parse_row(line: str) -> list[tuple[str, str]] | None:
    """The (header, cell) pairs of a row line, or None when the line is not one (a sentence, a heading)."""
    parts = line.rstrip("。").split(CELL_SEP)
    if len(parts) < 2:
        return None
    pairs = []
    for part in parts:
        key, sep, value = part.partition(KEY_SEP)
        if not sep or not key or len(key) > 40:
            return None
        pairs.append((key, value))
    return pairs


def table_blocks(text: str) -> list[str | list[list[tuple[str, str]]]]:
    """`text` split into plain lines and tables: two or more consecutive row lines under the same first header
    (a row may leave out an empty cell)."""
    blocks: list[str | list[list[tuple[str, str]]]] = []
    for line in text.split("\n"):
        row = parse_row(line)
        previous = blocks[-1] if blocks else None
        if row and isinstance(previous, list) and previous[0][0][0] == row[0][0]:
            previous.append(row)
        elif row:
            blocks.append([row])
        else:
            blocks.append(line)
    # a single row line reads as a sentence, not as a table
    return [b if not isinstance(b, list) or len(b) > 1 else format_row(b[0]) for b in blocks]
