"""Rendering for the web UI: Answer → chat Markdown, sources HTML, memo Markdown and .docx (pure functions).

Every string that comes from a document or a user is untrusted: it is escaped here, never upstream.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rag.citations import MARKER, strip_markers
from rag.errors import IndexMissingError, PolicyRagError
from rag.records import Answer, Citation, Clause
from rag.tables import table_blocks

MEMO_TITLE = "政策问答备忘录"
BODY_FONT = "仿宋"
HEADING_FONT = "黑体"
CN_NUMBERS = "一二三四五六七八九十"
# Plain symbols, not colour emoji: they render on any machine (an emoji font may be missing).
STATUS = {"added": "✓ 已加入", "updated": "✓ 已更新", "unchanged": "＝ 未变化", "removed": "－ 已移除",
          "failed": "✗ 失败", "skipped": "· 已跳过", "rejected": "✗ 未接收"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


@dataclass(frozen=True)
class Turn:
    """One question of a conversation: what was typed, what was searched, and the answer (or the error)."""

    asked: str
    question: str
    answer: Answer | None = None
    error: str | None = None     # the error message as shown in the chat (Markdown), when there is no answer
    docs: tuple[str, ...] = ()   # the document filter it was asked within (doc ids), empty = all


# ---- escaping -----------------------------------------------------------------------------------
def escape_md(text: str) -> str:
    """Text as literal Markdown: no links, images, emphasis or HTML can come out of it."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def escape_html(text: str) -> str:
    """HTML-escaped, and inert in Gradio's HTML templates too (no ${…} or {{…}})."""
    return html.escape(text, quote=True).replace("$", "&#36;").replace("{", "&#123;").replace("}", "&#125;")


def anchor(turn: int, n: int) -> str:
    """The id of citation n of turn `turn` in the sources panel."""
    return f"src-{turn}-{n}"


# ---- chat ---------------------------------------------------------------------------------------
def pending_markdown() -> str:
    return "正在检索相关条款…"


def streaming_markdown(partial: str) -> str:
    """An answer still being written (markers are renumbered only at the end, so not yet links)."""
    return escape_md(partial) + " ▍"


def error_markdown(error: PolicyRagError | str) -> str:
    """A user-facing message for an error: what happened and what to do, never a traceback."""
    if isinstance(error, IndexMissingError):
        return ("⚠ **还没有可检索的政策文件。** 请在「文件」页上传文件，或由管理员运行 `policy-rag ingest`。\n\n"
                f"（{escape_md(str(error))}）")
    return f"⚠ **无法回答：** {escape_md(str(error))}"


def answer_markdown(turn: Turn, number: int) -> str:
    """The chat message for a finished turn; [n] markers link to the sources panel."""
    if turn.answer is None:
        return turn.error or error_markdown("未知错误")
    answer = turn.answer
    parts = []
    if turn.question != turn.asked:
        parts.append(f"_按「{escape_md(turn.question)}」理解_")
    if answer.abstained:
        parts.append(_abstention_markdown(answer))
    else:
        parts.append(_answer_lines(answer, number))
        parts.append("**来源：** " + "　".join(_cite_link(c, number, label=True) for c in answer.citations))
    parts += [f"> 注意：{escape_md(n)}" for n in answer.notices]
    return "\n\n".join(parts)


def _answer_lines(answer: Answer, number: int) -> str:
    by_n = {c.n: c for c in answer.citations}
    flagged = [u.sentence for u in answer.unsupported]
    lines = []
    for line in answer.text.split("\n"):
        pieces = MARKER.split(line)  # text, n, text, n, …
        out = []
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                out.append(escape_md(piece))
            elif int(piece) in by_n:
                out.append(_cite_link(by_n[int(piece)], number))
        plain = strip_markers(line)
        if plain.strip() and any(s and (s in plain or plain in s) for s in flagged):
            out.append(' <span class="unsupported" title="此句中的数字或引语未能在所引条款中找到">⚠ 未通过引用核对</span>')
        lines.append("".join(out))
    return "  \n".join(lines)


def _cite_link(citation: Citation, number: int, label: bool = False) -> str:
    text = f"[{citation.n}]" + (f" 《{citation.clause.title}》{citation.clause.label or '导语'}" if label else "")
    return (f'<a class="cite-ref" href="#{anchor(number, citation.n)}" '
            f'title="{escape_html(str(citation))}">{escape_html(text)}</a>')


def _abstention_markdown(answer: Answer) -> str:
    lines = ["**现有文件中没有找到能回答这个问题的内容。**"]
    closest = answer.retrieved[:3]
    if closest:
        lines.append("最接近的条款（仅供参考，未作为依据）：")
        for hit in closest:
            c = hit.clause
            lines.append(f"- 《{escape_md(c.title)}》{escape_md(c.label or '导语')}：{escape_md(_snippet(c.text))}")
    return "\n".join(lines)


def _snippet(text: str, length: int = 40) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= length else text[:length] + "…"


# ---- sources panel ------------------------------------------------------------------------------
def sources_html(turns: Sequence[Turn]) -> str:
    """The sources panel: every answered turn, latest first, each citation with its whole clause."""
    sections = [turn_sources_html(t, i) for i, t in enumerate(turns, 1) if t.answer is not None]
    if not sections:
        return '<div class="src-empty">提问后，这里会列出每条引用的条款原文，引用的句子以黄色标出。</div>'
    return "\n".join(reversed(sections))


def turn_sources_html(turn: Turn, number: int) -> str:
    answer = turn.answer
    assert answer is not None
    out = [f'<section class="src-turn" id="turn-{number}">',
           f'<h3 class="src-q">第{number}问：{escape_html(turn.question)}</h3>']
    if answer.unsupported:
        items = "".join(f"<li>「{escape_html(u.sentence)}」：{escape_html(reason_zh(u.reason))}</li>"
                        for u in answer.unsupported)
        out.append(f'<div class="src-flags"><b>⚠ 未通过引用核对的句子</b><ul>{items}</ul></div>')
    for c in answer.citations:
        flags = [u for u in answer.unsupported if u.citation == c.n]
        out.append(citation_html(c, number, flags=[f"「{u.sentence}」：{reason_zh(u.reason)}" for u in flags]))
    if answer.abstained:
        out.append('<div class="src-abstain">没有找到能回答这个问题的条款。最接近的条款如下，仅供参考：</div>')
        out += [clause_html(h.clause, f"src-{number}-near{i}") for i, h in enumerate(answer.retrieved[:3], 1)]
    out.append("</section>")
    return "\n".join(out)


def citation_html(citation: Citation, number: int, flags: Iterable[str] = ()) -> str:
    """One source card: title, label, heading path, page, the clause with its quote marked, 复制引用."""
    flag_html = "".join(f'<div class="src-flag">⚠ 未通过引用核对：{escape_html(f)}</div>' for f in flags)
    actions = (f'<div class="src-actions"><button type="button" class="copy-memo" '
               f'data-memo="{escape_html(citation.memo)}">复制引用</button></div>')
    return clause_html(citation.clause, anchor(number, citation.n), quote=citation.quote,
                       n=citation.n, extra=flag_html + actions)


def clause_html(clause: Clause, element_id: str, quote: str = "", n: int | None = None, extra: str = "") -> str:
    head = (f'<span class="src-n">[{n}]</span>' if n is not None else "") + \
        f'<span class="src-title">《{escape_html(clause.title)}》</span>' + \
        f'<span class="src-label">{escape_html(clause.label or "导语")}</span>'
    meta = []
    if clause.headings:
        meta.append("章节：" + " › ".join(escape_html(h) for h in clause.headings))
    if clause.page:
        meta.append(f"第 {clause.page} 页")
    if clause.source:
        meta.append(f"文件：{escape_html(_file_name(clause.source))}")
    if clause.read_by_ocr:
        meta.append('<span class="src-ocr">扫描件，文字经识别</span>')
    meta_html = f'<div class="src-meta">{" · ".join(meta)}</div>' if meta else ""
    return (f'<article class="src-card" id="{element_id}"><div class="src-head">{head}</div>{meta_html}'
            f'<div class="src-text">{clause_text_html(clause.text, quote)}</div>{extra}</article>')


def clause_text_html(text: str, quote: str = "") -> str:
    """The clause escaped with its quote marked; runs of table-row lines (「指标：…；目标：…」) as an HTML table."""
    blocks = table_blocks(text)
    if all(isinstance(b, str) for b in blocks):
        return highlight(text, quote)
    out = []
    for block in blocks:
        if isinstance(block, str):
            out.append(highlight(block, quote) + "\n")
            continue
        keys = list(dict.fromkeys(key for row in block for key, _ in row))
        head = "".join(f"<th>{escape_html(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{escape_html(dict(row).get(k, ''))}</td>" for k in keys) + "</tr>"
                       for row in block)
        out.append(f'<table class="src-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    return "".join(out)


def highlight(text: str, quote: str) -> str:
    """`text` escaped, with the first occurrence of `quote` wrapped in <mark>."""
    start = text.find(quote) if quote else -1
    if start < 0 and len(quote) > 12:
        start = text.find(quote[:12])
        quote = text[start : start + len(quote)] if start >= 0 else quote
    if start < 0:
        return escape_html(text)
    end = start + len(quote)
    return f"{escape_html(text[:start])}<mark>{escape_html(text[start:end])}</mark>{escape_html(text[end:])}"


def reason_zh(reason: str) -> str:
    """The citation check's reason in Chinese (it is written in English in the library)."""
    m = re.match(r"cites no source but states (.+)$", reason)
    if m:
        return f"没有标注来源，却给出了 {m.group(1)}"
    m = re.match(r"(.+) not found in cited clause (.+)$", reason)
    if m:
        return f"所引条款 {m.group(2)} 中找不到 {m.group(1)}"
    return reason


# ---- documents ----------------------------------------------------------------------------------
def _file_name(path: str) -> str:
    """The file name only: server paths mean nothing to readers."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def ingest_markdown(rows: Iterable) -> str:
    """Per-file upload results: rows have path, title, status, clauses and error (ingest's FileResult)."""
    lines = ["| 文件 | 结果 | 条款数 | 说明 |", "|---|---|---:|---|"]
    for r in rows:
        name = _file_name(r.path)
        title = f"《{r.title}》" if r.title else ""
        note = r.error or "；".join([title, *(f"未能读取 {w}" for w in getattr(r, "warnings", []))]).strip("；")
        lines.append(f"| {_cell(name)} | {STATUS.get(r.status, r.status)} | {r.clauses or ''} | {_cell(note)} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return escape_md(re.sub(r"\s+", " ", str(text)))


# ---- memo ---------------------------------------------------------------------------------------
def _answered(turns: Sequence[Turn]) -> list[Turn]:
    return [t for t in turns if t.answer is not None]


def _page(clause: Clause) -> str:
    return f"（第{clause.page}页）" if clause.page else ""


def memo_markdown(turns: Sequence[Turn], now: datetime | None = None) -> str:
    """The conversation's answers as a Markdown memo: question, answer, numbered citations in full."""
    now = now or datetime.now()
    out = [f"# {MEMO_TITLE}", "", f"生成时间：{now:%Y-%m-%d %H:%M}", ""]
    for i, turn in enumerate(_answered(turns), 1):
        answer = turn.answer
        out += [f"## {_cn(i)}、{escape_md(turn.question)}", "", "**回答：**", ""]
        out += [escape_md(line) + "  " for line in answer.text.split("\n")] + [""]
        if answer.unsupported:
            out += ["**未通过引用核对：**", ""] + [f"- {escape_md(u.sentence)}（{escape_md(reason_zh(u.reason))}）"
                                                  for u in answer.unsupported] + [""]
        if answer.citations:
            out += ["**引用：**", ""]
            for c in answer.citations:
                out += [f"{c.n}. {escape_md(str(c))}{_page(c.clause)}", "",
                        *[f"   > {escape_md(line)}" for line in c.clause.text.split("\n")], "",
                        f"   引文：{escape_md(c.memo)}", ""]
    return "\n".join(out).rstrip() + "\n"


def memo_docx(turns: Sequence[Turn], now: datetime | None = None) -> bytes:
    """The memo as a .docx: 黑体 title, 仿宋 body, question, answer, numbered citations with full clause text."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    now = now or datetime.now()
    doc = Document()
    _set_font(doc.styles["Normal"], BODY_FONT, 14)
    for name in ("Title", "Heading 1", "Heading 2"):
        _set_font(doc.styles[name], HEADING_FONT, {"Title": 22, "Heading 1": 16, "Heading 2": 14}[name])
    title = doc.add_paragraph(MEMO_TITLE, style="Title")
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(f"生成时间：{now:%Y年%m月%d日 %H:%M}").alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for i, turn in enumerate(_answered(turns), 1):
        answer = turn.answer
        doc.add_paragraph(_xml_safe(f"{_cn(i)}、问题：{turn.question}"), style="Heading 1")
        doc.add_paragraph(_xml_safe("回答：" + answer.text))
        for u in answer.unsupported:
            doc.add_paragraph(_xml_safe(f"⚠ 未通过引用核对：{u.sentence}（{reason_zh(u.reason)}）"))
        if answer.citations:
            doc.add_paragraph("引用：", style="Heading 2")
        for c in answer.citations:
            head = doc.add_paragraph()
            head.add_run(_xml_safe(f"[{c.n}] {c}{_page(c.clause)}")).bold = True
            body = doc.add_paragraph(_xml_safe(c.clause.text))
            body.paragraph_format.left_indent = Pt(28)
            doc.add_paragraph(_xml_safe(f"引文：{c.memo}")).paragraph_format.left_indent = Pt(28)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """`text` without the control characters (and other code points) that a Word file cannot hold: a model
    reply or a clause carrying one would otherwise make the whole memo export fail."""
    return _NOT_XML.sub("", text)


def _set_font(style, name: str, size: int) -> None:
    """Set a style's Latin and East Asian font (Word picks CJK glyphs from w:eastAsia)."""
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    style.font.name = name
    style.font.size = Pt(size)
    style.font.color.rgb = RGBColor(0, 0, 0)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia"):
        fonts.set(qn(attr), name)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme"):  # a theme font would override ours
        fonts.attrib.pop(qn(attr), None)


def _cn(i: int) -> str:
    """一 … 十, then digits (a memo seldom has more than ten questions)."""
    return CN_NUMBERS[i - 1] if 1 <= i <= len(CN_NUMBERS) else str(i)
