"""HTML loader: the main content container of a policy page, block elements as lines, tables as rows."""

from __future__ import annotations

import re
from typing import Any

from ingest.clean import clean_text
from ingest.encoding import decode_text
from ingest.loaders.common import _MB, Parsed, _megabytes, _nonempty, _pick_title
from ingest.loaders.tables import is_table, table_lines
from rag.errors import DocumentReadError

MAX_HTML_MB = 20       # a policy page is well under 1 MB; parsing takes about a second per MB
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
        elif node.name == "table" and not node.find("table"):
            out.append("\n" + "\n".join(_html_table_lines(node)) + "\n")
        elif node.name == "tr":  # a row of a layout table that holds tables
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



MAX_SPAN = 50  # a colspan/rowspan beyond this is a mistake in the page, not a table that wide


def _html_table_lines(table: Any) -> list[str]:
    """A <table> as lines whose cells keep their column headers; colspan/rowspan expanded into the grid."""
    grid: list[list[str | None]] = []
    pending: dict[int, int] = {}  # column → rows a rowspan still covers
    for tr in table.find_all("tr"):
        row: list[str | None] = []
        for cell in tr.find_all(["td", "th"]):
            while pending.get(len(row), 0) > 0:
                pending[len(row)] -= 1
                row.append(None)
            span = min(_span(cell.get("colspan")), MAX_SPAN)
            down = min(_span(cell.get("rowspan")), MAX_SPAN)
            for i in range(span):
                if down > 1:
                    pending[len(row)] = down - 1
                row.append(cell.get_text(" ", strip=True) if i == 0 else None)
        grid.append(row)
    if not is_table(grid):
        return [" | ".join(c for c in row if c) for row in grid]
    return table_lines(grid)[0]


def _span(value: Any) -> int:
    try:
        return max(int(str(value)), 1)
    except ValueError:
        return 1
