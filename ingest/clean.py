"""Text cleaning: extracted text → one paragraph per line, unified ideographs, full-width punctuation, no furniture."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from rag.tables import parse_row

# ---------------------------------------------------------------- characters

# CJK Radicals Supplement look-alikes that NFKC leaves alone (Chrome/Skia and Quartz PDFs emit them).
RADICAL_LOOKALIKES = {
    "⺁": "厂", "⺓": "幺", "⺛": "无", "⺜": "日", "⺝": "月", "⺠": "民", "⺩": "王", "⺪": "疋", "⺬": "示",
    "⺮": "竹", "⺳": "网", "⺶": "羊", "⺼": "月", "⺽": "臼", "⻁": "虎", "⻄": "西", "⻅": "见", "⻆": "角",
    "⻇": "角", "⻉": "贝", "⻊": "足", "⻋": "车", "⻑": "長", "⻓": "长", "⻔": "门", "⻗": "雨", "⻘": "青",
    "⻙": "韦", "⻚": "页", "⻛": "风", "⻜": "飞", "⻝": "食", "⻢": "马", "⻣": "骨", "⻤": "鬼", "⻥": "鱼",
    "⻦": "鸟", "⻧": "卤", "⻨": "麦", "⻩": "黄", "⻪": "黾", "⻬": "齐", "⻮": "齿", "⻰": "龙",
}


def _radical_table() -> dict[int, str]:
    """Kangxi radicals, NFKC-decomposable supplement radicals and compatibility ideographs → unified ideographs."""
    table = {ord(k): v for k, v in RADICAL_LOOKALIKES.items()}
    blocks = (range(0x2E80, 0x2EF4), range(0x2F00, 0x2FD6), range(0xF900, 0xFB00), range(0x2F800, 0x2FA1E))
    for cp in (cp for block in blocks for cp in block):
        folded = unicodedata.normalize("NFKC", chr(cp))
        if folded != chr(cp) and len(folded) == 1:
            table.setdefault(cp, folded)
    return table


_RADICALS = _radical_table()
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f"))
_SPACES = dict.fromkeys(map(ord, "\u3000\u00a0\u2002\u2003\u2009\u202f\u205f\t"), " ")
_FULLWIDTH_ALNUM = {cp: chr(cp - 0xFEE0) for r in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B), (0xFF41, 0xFF5B)) for cp in range(*r)}
_SOFT_HYPHEN_IN_NUMBER = re.compile(r"(?<=\d)\u00ad(?=\d)")

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# characters that take no space next to them: ideographs, CJK and full-width punctuation, curly quotes, ①
_WIDE = _HAN + "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2018-\u201d\u2014\u2026\u00b7\u2460-\u2473"
_CLOSERS = "”’）》」』】〕"
_NUM = "一二三四五六七八九十百千零〇两"


def unify_radicals(text: str) -> str:
    """Map Kangxi radicals (⼀⼈), supplement look-alikes (⺠⻋⻅) and compatibility ideographs to ideographs."""
    return text.translate(_RADICALS)


def normalize_spaces(text: str) -> str:
    """Drop soft hyphens (a dash between digits) and zero-width characters; U+3000, NBSP and tabs → ' '."""
    text = _SOFT_HYPHEN_IN_NUMBER.sub("-", text)
    return text.translate(_INVISIBLE).translate(_SPACES)


def fold_fullwidth_alnum(text: str) -> str:
    """Full-width digits and Latin letters (２０２３, ＧＤＰ) → ASCII; full-width punctuation stays."""
    return text.translate(_FULLWIDTH_ALNUM)


# ---------------------------------------------------------------- one line

_ARTICLE_HEAD = re.compile(rf"^(第[{_NUM}\d]+[编章节条])\s+(?=\S)")
_SPACE_RUN = re.compile(r"\s+")
_SPACE_NEXT_TO_WIDE = re.compile(rf"(?<=[{_WIDE}]) (?!\|)|(?<!\|) (?=[{_WIDE}])")


def collapse_whitespace(line: str) -> str:
    """Delete spaces next to CJK characters or punctuation, keep one between Latin words and numbers.

    One space is kept after a line-initial 第X条/章/节/编 (`第一条 为了…`, as in the laws corpus),
    and around `|` table-cell separators.
    """
    line = _SPACE_RUN.sub(" ", line).strip()
    head = _ARTICLE_HEAD.match(line)
    if head:
        return head.group(1) + " " + _SPACE_NEXT_TO_WIDE.sub("", line[head.end():])
    return _SPACE_NEXT_TO_WIDE.sub("", line)


_ASCII_TO_WIDE = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_MARK_NEAR_CJK = re.compile(rf"(?<=[{_WIDE}])[,;:?!]|[,;:?!](?=[{_WIDE}])")
_SENTENCE_DOT = re.compile(rf"(?<=[{_HAN}{_CLOSERS}])\.(?!\.)")
_DOT_MARKER = re.compile(rf"^[{_NUM}]+\.")
_BRACKETS = re.compile(r"[(（]([^()（）\n]*)[)）]")
_GUILLEMETS = re.compile(rf"«([^«»\n]*[{_HAN}][^«»\n]*)»")


def normalize_punctuation(line: str) -> str:
    """ASCII punctuation in Chinese context → full width: `,;:?!` next to CJK, `(…)`, sentence-final `.` → `。`,
    `"` next to CJK → the curly quote that balances the line's quotes.

    Decimals (`3.2万家`) and line-initial markers (`1.`, `一.`) keep their ASCII dot.
    """
    line = _MARK_NEAR_CJK.sub(lambda m: _ASCII_TO_WIDE[m.group()], line)
    line = _curly_quotes(line)
    line = _full_width_brackets(line)
    line = _GUILLEMETS.sub(r"《\1》", line)
    marker = _DOT_MARKER.match(line)
    start = marker.end() if marker else 0
    return line[:start] + _SENTENCE_DOT.sub("。", line[start:])


_QUOTE = re.compile(rf'(?<=[{_WIDE}])"|"(?=[{_WIDE}])|[“”]')


def _curly_quotes(line: str) -> str:
    """`"` next to CJK opens a quote (“) unless one is open, then it closes it (”): 深化“三项改革"全面 → ”."""
    if '"' not in line:
        return line
    open_quote = False

    def curl(match: re.Match[str]) -> str:
        nonlocal open_quote
        mark = match.group()
        if mark == '"':
            mark = "”" if open_quote else "“"
        open_quote = mark == "“"
        return mark

    return _QUOTE.sub(curl, line)


def _full_width_brackets(line: str) -> str:
    """(一) → （一）, 计划(2024—2026年) → 计划（2024—2026年）, 值(GDP)比重 → 值（GDP）比重; innermost pairs first."""
    if not _BRACKETS.search(line):
        return line
    while _BRACKETS.search(line):  # each round converts the innermost pairs into placeholders
        line = _BRACKETS.sub(lambda match, current=line: _bracket_pair(match, current), line)
    return line.translate(_BRACKET_PLACEHOLDERS)


_BRACKET_PLACEHOLDERS = {0xE000: "（", 0xE001: "）", 0xE002: "(", 0xE003: ")"}  # hide done pairs from the next round
_WIDE_CHAR = re.compile(f"[{_WIDE}]")


def _bracket_pair(match: re.Match[str], line: str) -> str:
    """A pair becomes full width when its content or a neighbour is CJK, or one bracket already is."""
    pair, inner = match.group(), match.group(1)
    context = line[max(match.start() - 1, 0): match.start()] + inner + line[match.end(): match.end() + 1]
    chinese = _WIDE_CHAR.search(context) or pair[0] == "（" or pair[-1] == "）"
    return f"\ue000{inner}\ue001" if chinese else f"\ue002{inner}\ue003"


def normalize_line(line: str) -> str:
    """Whitespace and punctuation of one line (a line of the source, or a paragraph)."""
    return collapse_whitespace(normalize_punctuation(collapse_whitespace(line)))


# ---------------------------------------------------------------- page furniture and site residue

_PAGE_NUMBER = re.compile(
    r"^(?:[-－—–~～]\s*\d{1,4}\s*[-－—–~～]"  # — 1 —  －1－  - 1 -
    r"|\d{1,4}\s*/\s*\d{1,4}"  # 2/7
    r"|第\s*\d{1,4}\s*页\s*[,，]?\s*(?:共\s*\d{1,4}\s*页)?"  # 第 1 页 共 7 页
    r"|共\s*\d{1,4}\s*页\s*[,，]?\s*第\s*\d{1,4}\s*页"
    r"|[Pp]age\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?)$"
)
_PRINT_STAMP = re.compile(r"^(?:\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4},?)\s+\d{1,2}:\d{2}(?::\d{2})?\b")
# a browser's print footer: the URL, maybe with the page counter (2/7); OCR may misread the scheme (htp:/) or lose
# the counter's slash (27)
_URL_LINE = re.compile(r"^(?:h?t{1,2}ps?:/{1,2}|www\.|file:/)\S*(?:\s+\d{1,4}(?:\s*/\s*\d{1,4})?)?$")
# browser page titles: 《…》的意见》_中央有关文件_中国政府网 (www.gov.cn), …条例 - 政策文件 - …门户网站
_SITE_TITLE = re.compile(r"(?:_|\s[-|]\s)[^_]*?(?:政府网|门户网站|首都之窗|本地宝)|[(（《]\s*www\.[\w.]+\s*[)）]\s*$")
_TOC_ENTRY = re.compile(r"\S\s*(?:\.{3,}|…{2,}|·{3,}|-{4,}|_{4,})\s*\d{1,4}$")
_UI_LINE = re.compile(
    r"^(?:分享到|您?当前(?:的)?位置|您现在的位置|网站标识码|版权所有|责任编辑|相关链接)\s*[:：]"
    r"|^主办单位\s*[:：].*(?:承办单位|ICP|网站)"  # a site footer, not a work report's 主办单位：省教育厅
    r"|^(?:分享到|简\s*繁|请输入关键[字词].*|网站支持IPv6)\s*$|^首页\s*[>＞»]|ICP\s*备\s*\d+|公网安备\s*\d+"
)
_UI_INLINE = re.compile(
    r"[【\[]?\s*字\s*[号体]\s*[:：]?\s*[【\[]?\s*大\s*中\s*小\s*[】\]]?\s*[】\]]?"
    r"|[【\[]\s*(?:打印|关闭|收藏|纠错|返回顶部)(?:本页|窗口)?\s*[】\]]"
    r"|打印本页|关闭窗口|扫一扫在手机打开当前页|打开本地宝APP|返回顶部"
)
_NAV_WORDS = frozenset({
    "首页", "简体", "繁体", "English", "手机版", "微信", "微博", "客户端", "公务邮箱", "网站地图", "无障碍",
    "关于我们", "联系我们", "登录", "注册", "智能问答", "政府信息公开", "网上办事", "政民互动", "互动交流",
    "解读回应", "数据服务", "长者专区", "新闻中心", "政务公开",
})
_NAV_SEPARATORS = re.compile(r"[\s|｜>＞»]+")


def _is_navigation(line: str) -> bool:
    """A menu bar: at least three of its space- or |-separated items are site navigation words."""
    return sum(token in _NAV_WORDS for token in _NAV_SEPARATORS.split(line)) >= 3


_LONGEST_FURNITURE = 160  # longer lines are paragraphs of the document


def strip_site_residue(line: str) -> str:
    """Remove web-page UI text inside a line: 字号：大 中 小, 【打印】, 打印本页, 关闭窗口, 扫一扫在手机打开当前页."""
    return _UI_INLINE.sub("", line)


def is_furniture(line: str) -> bool:
    """A line that is page furniture, not document text: page numbers, print stamps, URLs, site UI, TOC entries."""
    line = line.strip()
    if len(line) > _LONGEST_FURNITURE:
        return False
    return bool(
        _PAGE_NUMBER.match(line)
        or _PRINT_STAMP.match(line)
        or _URL_LINE.match(line)
        or _SITE_TITLE.search(line)
        or _TOC_ENTRY.search(line)
        or _UI_LINE.search(line)
        or _is_navigation(line)
    )


_TOC_TITLE = re.compile(r"^目\s*录$")


def drop_table_of_contents(lines: list[str]) -> list[str]:
    """Drop a 目录 block: from the 目录 line up to where its first entry repeats as a heading."""
    span = _toc_span(lines)
    return lines if span is None else lines[: span[0]] + lines[span[1]:]


def _toc_span(lines: list[str]) -> tuple[int, int] | None:
    """(start, end) of the 目录 block; just the 目录 line when its entries never repeat."""
    for i, line in enumerate(lines):
        if _TOC_TITLE.match(line):
            first = lines[i + 1] if i + 1 < len(lines) else None
            repeat = next((j for j in range(i + 2, min(len(lines), i + 80)) if lines[j] == first), None)
            return (i, repeat) if repeat is not None else (i, i + 1)
    return None


# ---------------------------------------------------------------- paragraphs

_PARAGRAPH_END = ("。", "！", "？", "：", "；", "…")
_LINE_MARKER = re.compile(
    rf"^(?:第[{_NUM}\d]+[编章节条](?=\s|[（(]|$)"  # 第一条 为了…  (not 第三十九条第三项 continuing a sentence)
    rf"|[{_NUM}]+、"  # 一、
    rf"|[（(][{_NUM}]+[）)]"  # （一）
    r"|\d{1,3}[.．、](?!\d)"  # 1. 1． 1、  (not 3.2万)
    r"|[（(]\d{1,3}[）)]"  # （1）
    r"|[\u2460-\u2473])"  # ①
)
_SHORT = 0.75  # a line below this share of the document's full line width ends its paragraph
_HEADING_SLACK = 3.5  # em a marker line may lack (2 em indent + rounding) and still be wrapped


@dataclass(frozen=True, slots=True)
class Line:
    """One normalized visual line of extracted text."""

    text: str
    page: int = 0
    indented: bool = False  # the source line began with an indent (U+3000 or 2+ spaces)


def starts_with_marker(line: str) -> bool:
    """The line opens with a clause marker: 第X条 (then a space or `（`), 一、 （一） 1. 1． 1、 （1） ①."""
    return bool(_LINE_MARKER.match(line))


def join_wrapped_lines(lines: list[str]) -> list[str]:
    """Re-join visual lines into paragraphs (PDF extraction breaks at every visual line)."""
    text, _ = _assemble([Line(line) for line in lines], join=True)
    return text.split("\n")


def _width(text: str) -> float:
    """Display width in em: CJK characters 1, ASCII characters ½."""
    return len(text) - len(text.encode("ascii", "ignore")) / 2


def _full_width(lines: list[Line]) -> float:
    """The width of a full (unbroken) line: the most common width among the longer half of the lines."""
    widths = sorted(round(_width(line.text) * 2) / 2 for line in lines)
    if not widths:
        return 0.0
    counts = Counter(widths[len(widths) // 2:])
    return max(counts, key=lambda width: (counts[width], width))


def _ends_paragraph(line: Line, full: float) -> bool:
    """Sentence-final punctuation, or a line too short to have been wrapped (headings are a bit shorter)."""
    if line.text.endswith(_PARAGRAPH_END):
        return True
    width = _width(line.text)
    if starts_with_marker(line.text):  # a paragraph's first line, maybe indented by 2 em
        return width < full - _HEADING_SLACK
    return width < _SHORT * full


def _glue(left: str, right: str) -> str:
    """What goes between two joined lines: a space between two Latin words, else nothing."""
    return " " if left[-1:].isascii() and left[-1:].isalpha() and right[:1].isascii() and right[:1].isalpha() else ""


def _assemble(lines: list[Line], join: bool) -> tuple[str, dict[int, int]]:
    """Text with one paragraph per line (lines joined when `join`), and the offset where each page starts."""
    full = _full_width(lines) if join else 0.0
    indents_mean_paragraphs = sum(line.indented for line in lines) < 0.5 * len(lines)
    parts: list[str] = []
    length = 0
    starts: dict[int, int] = {}
    for i, line in enumerate(lines):
        if i == 0:
            glue = ""
        elif not join or _paragraph_break(lines[i - 1], line, full, indents_mean_paragraphs):
            glue = "\n"
        else:
            glue = _glue(lines[i - 1].text, line.text)
        starts.setdefault(line.page, length + len(glue))
        parts += (glue, line.text)
        length += len(glue) + len(line.text)
    return "".join(parts), starts


def _paragraph_break(previous: Line, line: Line, full: float, indents_mean_paragraphs: bool) -> bool:
    """A new paragraph starts at `line`: the previous one ended, or this one opens with a marker or an indent."""
    return (
        _ends_paragraph(previous, full)
        or starts_with_marker(line.text)
        or (line.indented and indents_mean_paragraphs)
        or parse_row(previous.text) is not None  # a table row (「指标：…；目标：…」) is a line of its own
        or parse_row(line.text) is not None
    )


_MIN_WRAP_WIDTH = 15  # em; narrower "full" lines are tables or lists, not wrapped prose


def looks_hard_wrapped(lines: list[str]) -> bool:
    """Plain text wrapped at a fixed width: most lines are full, stop mid-sentence and run on into the next."""
    if len(lines) < 8:
        return False
    full = _full_width([Line(line) for line in lines])
    if full < _MIN_WRAP_WIDTH:
        return False
    wrapped = sum(
        1
        for line, following in itertools.pairwise(lines)
        if 0.9 * full <= _width(line) <= 1.1 * full
        and not line.endswith(_PARAGRAPH_END)
        and not starts_with_marker(following)
    )
    return wrapped >= 0.5 * len(lines)


# ---------------------------------------------------------------- whole documents

_DOC_TYPES = "意见|通知|办法|规划|计划|条例|决定|方案|规定|报告|批复|细则|措施|纲要"
_TITLE_THEN_TEXT = re.compile(
    rf"^[ \t\u3000]*([^\s,，。；;]{{4,60}}?(?:{_DOC_TYPES})(?:[(（][^()（）\s]{{1,20}}[)）])?)[ \t\u3000]+(?=\S)"
)


def split_title_line(text: str) -> str:
    """Put a title that shares the first line with the preamble on its own line.

    `关于加快构建山西省创新生态的指导意见 为深入贯彻…` → `关于…指导意见\\n为深入贯彻…`; must run
    before whitespace is deleted, which would glue the two together.
    """
    match = _TITLE_THEN_TEXT.match(text)
    return text if match is None else match.group(1) + "\n" + text[match.end():]


_PREPARE_TABLE = {**_RADICALS, **_INVISIBLE, **_SPACES, **_FULLWIDTH_ALNUM}
_PREPARE_CHARS = re.compile(  # a superset of the table's keys, as ranges: a big character set is slow
    "[\t\u00a0\u00ad\u2002-\u200f\u202f\u205f\u2060\u2e80-\u2fdf\u3000\uf900-\ufaff\ufeff\uff10-\uff5a"
    "\U0002f800-\U0002fa1f]"
)


def _prepare(text: str) -> str:
    """unify_radicals + normalize_spaces + fold_fullwidth_alnum in one pass (skipped when nothing to map)."""
    text = _SOFT_HYPHEN_IN_NUMBER.sub("-", text)
    return text.translate(_PREPARE_TABLE) if _PREPARE_CHARS.search(text) else text


def _source_lines(text: str) -> list[tuple[str, bool]]:
    """(line, indented) for the non-furniture lines of `text`, site residue removed."""
    result = []
    for raw, line in zip(text.splitlines(), _prepare(text).splitlines()):
        line = strip_site_residue(line)
        if line.strip() and not is_furniture(line):
            result.append((line, raw.startswith(("\u3000", "  ", "\t"))))
    return result


def clean_text(text: str) -> str:
    """Clean a text document whose lines are paragraphs (txt, md, html, docx, jsonl); hard-wrapped text is re-joined."""
    lines = [Line(normalize_line(line), 0, indented) for line, indented in _source_lines(split_title_line(text))]
    lines = _drop_toc([line for line in lines if line.text])
    joined, _ = _assemble(lines, join=looks_hard_wrapped([line.text for line in lines]))
    return joined


def clean_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Clean a PDF's page texts: furniture dropped, lines re-joined; returns the text and each page's start offset."""
    page_lines = [_source_lines(_drop_title_header(page)) for page in pages]
    page_lines = _drop_page_numbers(page_lines)
    page_lines = _drop_repeated_edges(page_lines)
    lines = [
        Line(normalize_line(text), page, indented)
        for page, entries in enumerate(page_lines)
        for text, indented in entries
    ]
    lines = _drop_toc([line for line in lines if line.text])
    text, starts = _assemble(lines, join=True)
    return text, _page_offsets(starts, len(pages), len(text))


def _drop_toc(lines: list[Line]) -> list[Line]:
    span = _toc_span([line.text for line in lines])
    return lines if span is None else lines[: span[0]] + lines[span[1]:]


def _page_offsets(starts: dict[int, int], n_pages: int, end: int) -> tuple[int, ...]:
    """Start offset of every page; a page without text starts where the next page with text starts."""
    offsets = []
    following = end
    for page in reversed(range(n_pages)):
        following = starts.get(page, following)
        offsets.append(following)
    return tuple(reversed(offsets))


PageLines = list[list[tuple[str, bool]]]
_EDGE = 3  # lines at the top and bottom of a page where headers, footers and page numbers live


def _drop_title_header(page: str) -> str:
    """A browser page-title header at the top of a page may wrap: drop the lines above it too."""
    lines = page.splitlines()
    cut = next((i + 1 for i, line in enumerate(lines[:_EDGE]) if _SITE_TITLE.search(_prepare(line))), 0)
    return "\n".join(lines[cut:])


_BARE_NUMBER = re.compile(r"^\s*(\d{1,4})\s*$")


def _drop_page_numbers(pages: PageLines) -> PageLines:
    """Bare numbers at the top or bottom of pages that count up with the pages (`1` on page 7, `2` on page 8)."""
    found = {}  # (page, line index) → printed number minus page index
    for page, lines in enumerate(pages):
        edges = {0, len(lines) - 1} if lines else set()
        for i in edges:
            match = _BARE_NUMBER.match(lines[i][0])
            if match:
                found[(page, i)] = int(match.group(1)) - page
    if len(found) < 2:
        return pages
    shift, count = Counter(found.values()).most_common(1)[0]
    if count < 2:
        return pages
    drop = {key for key, value in found.items() if value == shift}
    return [[entry for i, entry in enumerate(lines) if (page, i) not in drop] for page, lines in enumerate(pages)]


_DIGITS = re.compile(r"\d+")


def _drop_repeated_edges(pages: PageLines) -> PageLines:
    """Running headers and footers: a line near a page edge that recurs on at least half of the pages."""
    if len(pages) < 2:
        return pages

    def key(line: str) -> str:
        return _DIGITS.sub("#", _SPACE_RUN.sub("", line))

    def edges(lines: list[tuple[str, bool]]) -> set[str]:
        return {key(line) for line, _ in lines[:_EDGE] + lines[-_EDGE:]}

    counts = Counter(k for lines in pages for k in edges(lines))
    repeated = {k for k, n in counts.items() if n >= max(2, len(pages) / 2) and not starts_with_marker(k)}
    return [
        [(line, indented) for i, (line, indented) in enumerate(lines)
         if not ((i < _EDGE or i >= len(lines) - _EDGE) and key(line) in repeated)]
        for lines in pages
    ]


# ---------------------------------------------------------------- markdown

_MD_RULES = (
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"^```.*$", re.MULTILINE), ""),
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE), r"\1"),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.MULTILINE), ""),
    (re.compile(r"^[ \t]*[*+-][ \t]+(?=[^\d\s])", re.MULTILINE), ""),
    (re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.MULTILINE), ""),
    (re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.MULTILINE), ""),
)


def strip_markdown(text: str) -> str:
    """Markdown → plain lines: `#` prefixes, `**`, `<!-- … -->`, links, quotes, bullets and rules removed."""
    for pattern, replacement in _MD_RULES:
        text = pattern.sub(replacement, text)
    return text
