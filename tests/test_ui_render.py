"""ui.render on real answers over the seed index: chat Markdown, sources panel, memo Markdown and .docx."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from docx import Document as DocxDocument
from docx.oxml.ns import qn
from markdown_it import MarkdownIt

from rag.citations import check_citations
from rag.errors import IndexMissingError, PolicyRagError
from rag.records import Answer, Citation, Clause, Hit
from ui import render
from ui.render import Turn

TECH = "秦创原到2026年技术合同成交额要达到多少？"
QCY_TITLE = "秦创原创新驱动平台建设三年行动计划（2024—2026年）"
HOSTILE = ("见[官网](http://evil.example/x)与![图](http://evil.example/p.png)<img src=x onerror=alert(1)>"
           "<script>alert(2)</script>**粗体**${window.x}{{y}}。")
COMMONMARK = MarkdownIt("commonmark")  # html on, like Gradio's chat renderer


@pytest.fixture(scope="module")
def tech_turn(assistant) -> Turn:
    return Turn(TECH, TECH, assistant.ask(TECH))


def hostile_answer() -> Answer:
    clause = Clause(clause_id="evil.txt#一、", doc_id="evil.txt", title="恶意<b>标题</b>", path=("一、",),
                    headings=("一、总则",), text="一、" + HOSTILE, start=0, end=10, source="evil.txt")
    citation = Citation(1, clause, HOSTILE)
    return Answer(question="q", text=HOSTILE + "[1]", abstained=False, citations=[citation],
                  retrieved=[Hit(clause, 1.0)])


def test_answer_markdown_links_each_marker_to_its_source_card(tech_turn):
    md = render.answer_markdown(tech_turn, 3)
    assert "6000亿元" in md
    assert 'href="#src-3-1"' in md                       # [1] of the third question
    assert f"《{QCY_TITLE}》二、（一）3." in md            # the label is in the chat too
    html = COMMONMARK.render(md)
    assert '<a class="cite-ref" href="#src-3-1"' in html
    assert ">[1]</a>" in html


def test_chat_markdown_of_document_text_has_no_links_images_or_html():
    html = COMMONMARK.render(render.answer_markdown(Turn("q", "q", hostile_answer()), 1))
    assert '<a href="http' not in html and "<img" not in html and "<script" not in html
    assert "<strong>粗体" not in html
    assert "[官网](http://evil.example/x)" in html        # shown as the literal text it is
    assert "&lt;script&gt;" in html


def test_follow_up_shows_how_it_was_read(tech_turn):
    turn = Turn("那山西呢？", "山西到2026年技术合同成交额要达到多少？", tech_turn.answer)
    assert render.answer_markdown(turn, 2).startswith("_按「山西到2026年技术合同成交额要达到多少？」理解_")


def test_abstention_is_shown_as_such_with_the_closest_clauses(assistant):
    answer = assistant.ask("秦创原2030年的技术合同成交额目标是多少？")
    assert answer.abstained
    md = render.answer_markdown(Turn(answer.question, answer.question, answer), 1)
    assert "没有找到能回答这个问题的内容" in md and "最接近的条款" in md
    assert answer.retrieved[0].clause.title in md.replace("\\", "")
    panel = render.sources_html([Turn(answer.question, answer.question, answer)])
    assert "没有找到能回答这个问题的条款" in panel and 'id="src-1-near1"' in panel


def test_sources_panel_shows_the_whole_clause_with_the_quote_highlighted(tech_turn):
    html = render.sources_html([tech_turn])
    citation = tech_turn.answer.citations[0]
    assert 'id="src-1-1"' in html
    assert f"《{QCY_TITLE}》" in html and "二、（一）3." in html
    assert "章节：二、重点任务 › （一）" in html                      # heading path
    assert "<mark>到2026年，技术合同成交额突破6000亿元" in html
    assert "畅通成果转化链条" in html                                 # the rest of the clause
    assert f'data-memo="{render.escape_html(citation.memo)}"' in html and ">复制引用</button>" in html


def test_sources_panel_flags_sentences_that_failed_the_citation_check(tech_turn):
    citation = tech_turn.answer.citations[0]
    text = "到2026年，技术合同成交额突破8000亿元。[1]"
    answer = Answer(question=TECH, text=text, abstained=False, citations=[citation],
                    unsupported=check_citations(text, [citation]))
    assert answer.unsupported
    turn = Turn(TECH, TECH, answer)
    html = render.sources_html([turn])
    assert 'class="src-flags"' in html and 'class="src-flag"' in html
    assert "所引条款 [1] 中找不到 8000亿" in html
    assert "⚠ 未通过引用核对" in render.answer_markdown(turn, 1)


def test_sources_panel_escapes_document_text():
    html = render.sources_html([Turn("q", "q", hostile_answer())])
    assert "<img" not in html and "<script" not in html and "<b>标题" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "${" not in html and "{{" not in html                    # inert in Gradio's HTML template too


def test_page_is_shown_for_pdf_clauses(tech_turn):
    c = tech_turn.answer.citations[0]
    clause = Clause(c.clause.clause_id, c.clause.doc_id, c.clause.title, c.clause.path, c.clause.headings,
                    c.clause.text, c.clause.start, c.clause.end, page=4)
    assert "第 4 页" in render.citation_html(Citation(1, clause, c.quote), 1)


def test_memo_docx_reads_back_with_question_answer_and_full_clauses(tech_turn):
    data = render.memo_docx([tech_turn, Turn("x", "x", error="出错")], now=datetime(2026, 11, 23, 9, 30))
    doc = DocxDocument(io.BytesIO(data))
    paragraphs = [p.text for p in doc.paragraphs]
    citation = tech_turn.answer.citations[0]
    assert paragraphs[0] == "政策问答备忘录" and doc.paragraphs[0].style.name == "Title"
    assert "生成时间：2026年11月23日 09:30" in paragraphs
    assert f"一、问题：{TECH}" in paragraphs
    assert any(p.startswith("回答：") and "6000亿元" in p and "[1]" in p for p in paragraphs)
    assert f"[1] 《{QCY_TITLE}》二、（一）3." in paragraphs
    assert citation.clause.text in paragraphs                        # the whole clause
    assert f"引文：{citation.memo}" in paragraphs
    assert not any("出错" in p for p in paragraphs)                  # failed turns are left out
    fonts = doc.styles["Normal"].element.rPr.find(qn("w:rFonts"))
    assert fonts.get(qn("w:eastAsia")) == "仿宋" and doc.styles["Normal"].font.name == "仿宋"


def test_memo_markdown(tech_turn):
    md = render.memo_markdown([tech_turn], now=datetime(2026, 11, 23, 9, 30))
    citation = tech_turn.answer.citations[0]
    assert md.startswith("# 政策问答备忘录\n")
    assert f"## 一、{render.escape_md(TECH)}" in md
    assert "6000亿元" in md and "\\[1\\]" in md
    assert f"1. {render.escape_md(str(citation))}" in md
    first_line = citation.clause.text.split("\n")[0]
    assert f"   > {render.escape_md(first_line)}" in md


@pytest.mark.parametrize(("error", "expected"), [
    (IndexMissingError("no index in .policy-rag/; run `policy-rag ingest` first"), "还没有可检索的政策文件"),
    (PolicyRagError("no indexed document matches 'x'"), "无法回答"),
])
def test_errors_are_messages_not_tracebacks(error, expected):
    md = render.error_markdown(error)
    assert expected in md and "Traceback" not in md


def test_reason_zh():
    assert render.reason_zh("8000亿 not found in cited clause [1]") == "所引条款 [1] 中找不到 8000亿"
    assert render.reason_zh("cites no source but states 65%") == "没有标注来源，却给出了 65%"
