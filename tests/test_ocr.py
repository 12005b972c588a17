"""OCR of image-only PDFs and tables that keep their headers, on real documents (issue 26)."""

from __future__ import annotations

import random
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from eval.ocr_bench import image_pdf, scan, text_pdf_pages
from ingest.clauses import split_clauses
from ingest.loaders import OcrOptions, load_documents
from rag.errors import DocumentReadError
from rag.tables import parse_row
from ui.render import clause_html

SHARED = Path(__file__).parents[1].parent / "shared"
GOVDOC = SHARED / "corpus-ext" / "pdf" / "GovDoc-CN_397.pdf"
HUBEI = SHARED / "corpus-ext" / "pdf" / "省文化和旅游厅关于印发《湖北省文物事业发展“十四五”规划》的通知.pdf"
pytestmark = pytest.mark.skipif(not GOVDOC.exists(), reason="needs ../shared/corpus-ext")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, Path]:
    """Page 1 of a real notice as a stamped, turned, noisy scan without a text layer, and its text version."""
    work = tmp_path_factory.mktemp("scan")
    text_file, images = text_pdf_pages(GOVDOC, (1,), work / "text.pdf")
    return text_file, image_pdf([scan(images[0], random.Random(1), with_stamp=True)], work / "扫描件.pdf")


def test_a_scan_is_read_by_ocr_and_parsed_into_labelled_clauses(scanned) -> None:
    text_file, scan_file = scanned
    assert not any((p.extract_text() or "").strip() for p in PdfReader(scan_file).pages)
    reference = load_documents(text_file, ocr=OcrOptions("off"))[0]
    document = load_documents(scan_file)[0]
    assert document.meta["ocr_pages"] == "1"
    want = [c.label for c in split_clauses(reference) if c.label]
    got = [c.label for c in split_clauses(document) if c.label]
    assert want and set(want) <= set(got)
    assert "一、总体要求" in document.text.split("\n")
    clause = next(c for c in split_clauses(document) if c.label == "一、")
    assert clause.read_by_ocr and "扫描件，文字经识别" in clause_html(clause, "c1")
    assert "扫描件" not in clause_html(split_clauses(reference)[1], "c2")


def test_ocr_off_refuses_a_scan_naming_the_file(scanned) -> None:
    with pytest.raises(DocumentReadError, match=r"^扫描件\.pdf: no text layer .*POLICY_RAG_OCR=auto"):
        load_documents(scanned[1], ocr=OcrOptions("off"))


def test_a_page_ocr_cannot_read_is_reported_and_the_rest_kept(scanned, tmp_path: Path) -> None:
    """Page 2 holds an image whose stream is corrupt; the time limit is short, so a hang would show as an error too."""
    writer = PdfWriter(clone_from=scanned[1])
    broken = PdfWriter(clone_from=scanned[1])
    image = next(iter(broken.pages[0]["/Resources"]["/XObject"].values())).get_object()
    image._data = b"\x00garbage" * 10  # the JPEG stream, corrupt (its filter kept)
    writer.add_page(broken.pages[0])
    path = tmp_path / "two.pdf"
    writer.write(path)
    pages = []
    document = load_documents(path, ocr=OcrOptions("auto", page_seconds=60, on_page=lambda d, t: pages.append((d, t))))[0]
    assert pages == [(1, 2), (2, 2)]
    assert "一、总体要求" in document.text.split("\n")
    assert document.meta["ocr_pages"] == "1"
    assert len(document.problems) == 1 and document.problems[0].startswith("page 2: ")


# ---------------------------------------------------------------- tables

ROWS = [("指标", "2025年", "属性"), ("湖北省文物保护单位增加数量", "≥50", "约束性"), ("博物馆数量", "≥260", "预期性")]


def test_a_pdf_table_keeps_its_headers_across_pages() -> None:
    document = load_documents(HUBEI, ocr=OcrOptions("off"))[0]
    lines = document.text.split("\n")
    assert "指标：保护利用，湖北省文物保护单位增加数量；2025年：≥50；属性：约束性" in lines
    # page 11 continues the table without repeating its header
    assert "指标：博物馆，博物馆数量；2025年：≥260；属性：预期性" in lines
    clause = next(c for c in split_clauses(document) if "≥260" in c.text)
    html = clause_html(clause, "t")
    assert "<th>2025年</th>" in html and "<td>≥260</td>" in html


def test_a_docx_table_keeps_its_headers(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("二、主要指标")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    path = tmp_path / "指标.docx"
    document.save(path)
    text = load_documents(path)[0].text
    assert "指标：博物馆数量；2025年：≥260；属性：预期性" in text.split("\n")


def test_an_html_table_with_merged_cells_keeps_its_headers(tmp_path: Path) -> None:
    page = ("<html><body><div id='content'><p>二、主要指标</p><table>"
            "<tr><th colspan='2'>指标</th><th>2025年</th><th>属性</th></tr>"
            "<tr><td rowspan='2'>保护利用</td><td>湖北省文物保护单位增加数量</td><td>≥50</td><td>约束性</td></tr>"
            "<tr><td>国家文物保护利用示范区</td><td>1</td><td>预期性</td></tr>"
            "</table></div></body></html>")
    path = tmp_path / "指标.html"
    path.write_text(page, encoding="utf-8")
    lines = load_documents(path)[0].text.split("\n")
    assert "指标：保护利用，国家文物保护利用示范区；2025年：1；属性：预期性" in lines
    assert parse_row(lines[-1]) == [("指标", "保护利用，国家文物保护利用示范区"), ("2025年", "1"), ("属性", "预期性")]


def test_a_comma_read_into_the_gap_after_an_article_number_is_a_space() -> None:
    from ingest.loaders.ocr import Box, reading_order

    lines = reading_order([Box("第四条、居住证登载的内容包括：", 10, 0, 900, 40), Box("第三条、第四条所列证明", 10, 60, 500, 100)])
    assert lines == ["第四条 居住证登载的内容包括：", "第三条、第四条所列证明"]
