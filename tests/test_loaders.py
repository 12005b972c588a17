"""Loader and decoding tests: real seeds and PDFs, and files in other formats/encodings written from them."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import docx
import pytest
from pypdf import PdfWriter

from ingest.encoding import decode_text
from ingest.loaders import SUPPORTED_SUFFIXES, is_sidecar, load_documents
from rag.errors import DocumentReadError, UnsupportedFormatError
from rag.records import Document

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
PDF_DIR = REPO.parent / "shared" / "corpus-ext" / "pdf"
SEED_000 = CORPUS / "关于加快构建山西省创新生态的指导意见.txt"
SEED_003 = CORPUS / "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"
GOVDOC = PDF_DIR / "GovDoc-CN_397.pdf"


@functools.cache
def load_one(path: Path, root: Path | None = None) -> Document:
    (document,) = load_documents(path, root=root)
    return document


# ---------------------------------------------------------------- text files and encodings


@pytest.mark.parametrize(
    ("seed", "title"),
    [
        (SEED_000, "关于加快构建山西省创新生态的指导意见"),
        (SEED_003, "秦创原创新驱动平台建设三年行动计划（2024—2026年）"),
    ],
)
def test_seed_documents(seed: Path, title: str) -> None:
    document = load_one(seed, CORPUS)
    assert document.doc_id == document.source == seed.name
    assert document.title == title
    assert document.text.split("\n")[0] == title
    assert document.content_hash == hashlib.sha256(seed.read_bytes()).hexdigest()
    assert document.pages == () and document.page_at(10) is None


def test_doc_id_is_the_posix_path_under_root(tmp_path: Path) -> None:
    (tmp_path / "陕西" / "科技").mkdir(parents=True)
    path = tmp_path / "陕西" / "科技" / SEED_003.name
    path.write_bytes(SEED_003.read_bytes())
    assert load_one(path, tmp_path).doc_id == f"陕西/科技/{SEED_003.name}"
    assert load_one(path).doc_id == SEED_003.name


@pytest.mark.parametrize("encoding", ["gb18030", "utf-16", "utf-16-be", "utf-8-sig"])
def test_other_encodings_decode_to_the_same_text(tmp_path: Path, encoding: str) -> None:
    seed_text = SEED_003.read_text(encoding="utf-8")
    path = tmp_path / SEED_003.name
    path.write_bytes(seed_text.encode(encoding))  # utf-16 = little-endian with BOM here; utf-16-be has no BOM
    assert decode_text(path.read_bytes(), path.name) == seed_text
    assert load_one(path).text == load_one(SEED_003).text


def test_gbk_bytes_are_read_as_gb18030() -> None:
    text = "第一条 为了规范口岸开放，提高口岸通关效率，制定本条例。"
    assert decode_text(text.encode("gbk"), "x.txt") == text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not text (binary data at byte 8)"),
        (b"\xff\xfe\xfd\x80\x81" * 20, "not text"),
        (b"abc\x01\x02def", "not text (binary data at byte 3)"),
        (b"", "empty file"),
        (b" \r\n\t", "empty file"),
    ],
)
def test_binary_or_empty_text_file_is_refused_with_its_name(tmp_path: Path, data: bytes, reason: str) -> None:
    (tmp_path / "corpus").mkdir()
    path = tmp_path / "corpus" / "x.txt"
    path.write_bytes(data)
    with pytest.raises(DocumentReadError, match="^corpus/x.txt: " + re.escape(reason)):
        load_documents(path, root=tmp_path)


def test_markdown_file(tmp_path: Path) -> None:
    path = tmp_path / "条例.md"
    path.write_text("# 上海口岸服务条例\n\n<!-- INFO END -->\n\n## 第一章  总则\n\n**第一条** 为了规范口岸开放.\n", "utf-8")
    document = load_one(path)
    assert document.title == "上海口岸服务条例"
    assert document.text == "上海口岸服务条例\n第一章 总则\n第一条 为了规范口岸开放。"


# ---------------------------------------------------------------- PDF


def test_pdf_title_pages_and_page_at() -> None:
    document = load_one(GOVDOC, PDF_DIR)
    assert document.doc_id == "GovDoc-CN_397.pdf"
    assert document.title == "关于加强个人所得税纳税信用建设的通知"
    assert len(document.pages) == 5
    text = document.text
    assert document.page_at(0) == 1
    assert document.page_at(text.index("（二）建立健全个人所得税纳税信用记录")) == 2
    page_3 = text.index("违规行为记录为重点")  # page 3 begins in the middle of a sentence
    assert (document.page_at(page_3 - 1), document.page_at(page_3)) == (2, 3)
    assert document.page_at(len(text) - 1) == 5
    assert "— 1 —" not in text and "—1—" not in text


def test_pdf_title_from_metadata_without_site_suffix() -> None:
    path = PDF_DIR / "北京市非机动车管理条例_地方性法规_首都之窗_北京市人民政府门户网站.pdf"
    assert load_one(path, PDF_DIR).title == "北京市非机动车管理条例"


def test_password_protected_pdf(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=GOVDOC)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "secret.pdf"
    writer.write(path)
    with pytest.raises(DocumentReadError, match="^secret.pdf: password-protected PDF$"):
        load_documents(path)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=GOVDOC)
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "no-print.pdf"
    writer.write(path)
    assert "二、建立个人所得税纳税信用管理机制" in load_one(path).text


def test_a_pdf_without_text_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A blank page: OCR finds nothing either; with OCR off the message says how to turn it on."""
    from ingest.loaders import OcrOptions

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    path = tmp_path / "scan.pdf"
    writer.write(path)
    with pytest.raises(DocumentReadError, match="^scan.pdf: no text layer .*OCR is off .*POLICY_RAG_OCR=auto"):
        load_documents(path, ocr=OcrOptions("off"))
    with pytest.raises(DocumentReadError,
                       match="^scan.pdf: no text layer .*OCR could read none.*page 1: OCR found no readable text"):
        load_documents(path)


def test_truncated_pdf_names_the_file_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(GOVDOC.read_bytes()[:60_000])
    with pytest.raises(DocumentReadError, match=r"^cut.pdf: unreadable PDF.*\(.+\)$"):
        load_documents(path)


# ---------------------------------------------------------------- HTML

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>关于加快构建山西省创新生态的指导意见_山西省人民政府门户网站</title>
<script>var nav = "首页";</script><style>p {margin: 0}</style></head>
<body>
<div class="top"><a>首页</a> | <a>政府信息公开</a> | <a>网上办事</a> | <a>政民互动</a></div>
<nav><ul><li>首页</li><li>新闻中心</li></ul></nav>
<div class="position">当前位置：<a>首页</a> &gt; <a>政策文件</a></div>
<div class="wrap">
  <h1>关于加快构建山西省创新生态的指导意见</h1>
  <div class="tools">字号：<a>大</a> <a>中</a> <a>小</a> 【打印】 【关闭】</div>
  <div class="share">分享到：</div>
  <div>
    <p>为深入贯彻省委、省政府关于全力打造一流创新生态的重大决策部署,
       制定本指导意见.</p>
    <p>一、总体要求</p><!-- 编辑注释 -->
    <p>(一)指导思想 以习近平新时代中国特色社会主义思想为指导。</p>
    <table><tr><th>指标</th><th>2025年</th></tr><tr><td>研发投入强度</td><td>2.5%</td></tr></table>
  </div>
</div>
<footer>主办单位：山西省人民政府办公厅 晋ICP备05000001号</footer>
</body></html>"""


def test_html_keeps_only_the_main_text(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE, encoding="utf-8")
    document = load_one(path)
    assert document.title == "关于加快构建山西省创新生态的指导意见"
    assert document.text.split("\n") == [
        "关于加快构建山西省创新生态的指导意见",
        "为深入贯彻省委、省政府关于全力打造一流创新生态的重大决策部署，制定本指导意见。",
        "一、总体要求",
        "（一）指导思想以习近平新时代中国特色社会主义思想为指导。",
        "指标：研发投入强度；2025年：2.5%",
    ]


def test_gbk_html_with_a_content_container(tmp_path: Path) -> None:
    page = PAGE.replace('<div class="wrap">', '<div class="wrap"><div class="related">相关链接：山西省人民政府</div>')
    page = page.replace("<div>\n    <p>", '<div id="UCAP-CONTENT" class="TRS_Editor">\n    <p>')
    path = tmp_path / "page.htm"
    path.write_bytes(page.replace('charset="utf-8"', 'charset="gbk"').encode("gbk"))
    lines = load_one(path).text.split("\n")
    assert lines[0].startswith("为深入贯彻省委") and lines[-1] == "指标：研发投入强度；2025年：2.5%"


# ---------------------------------------------------------------- DOCX


def test_docx_keeps_paragraph_and_table_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("关于加强个人所得税纳税信用建设的通知", level=1)
    document.add_paragraph("各省、自治区、直辖市:")
    document.add_paragraph("一、总体要求")
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([("指标", "2020年", "2025年"), ("研发投入强度", "1.2%", "2.5%")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("二、工作措施")
    document.add_paragraph("(一)全面实施信用承诺制.")
    path = tmp_path / "通知.docx"
    document.save(path)
    loaded = load_one(path)
    assert loaded.title == "关于加强个人所得税纳税信用建设的通知"
    assert loaded.text.split("\n") == [
        "关于加强个人所得税纳税信用建设的通知",
        "各省、自治区、直辖市：",
        "一、总体要求",
        "指标：研发投入强度；2020年：1.2%；2025年：2.5%",
        "二、工作措施",
        "（一）全面实施信用承诺制。",
    ]


def test_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "假的.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentReadError, match="^假的.docx: not a readable .docx"):
        load_documents(path)


# ---------------------------------------------------------------- JSONL


def jsonl_line(**record: object) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def test_jsonl_gives_one_document_per_line(tmp_path: Path) -> None:
    first = jsonl_line(id="lrb-1", title="上海口岸服务条例", text="# 上海口岸服务条例\n\n<!-- INFO END -->\n\n第一条 为了规范口岸开放。",
                       version_date="2020-05-14")
    second = jsonl_line(id="govcn-2", title="国务院关于同意设立的批复", text="国务院关于同意设立的批复\n一、同意.",
                        doc_number="国函〔2006〕132号", issuer="国务院", year=2006)
    path = tmp_path / "docs.jsonl"
    path.write_bytes(first + b"\n\n" + second + b"\n")
    documents = load_documents(path, root=tmp_path)
    assert [d.doc_id for d in documents] == ["docs.jsonl#lrb-1", "docs.jsonl#govcn-2"]
    assert [d.source for d in documents] == ["docs.jsonl", "docs.jsonl"]
    assert documents[0].text == "上海口岸服务条例\n第一条 为了规范口岸开放。"
    # the collection's own fields win over what is read from the text, and then carry no sentence from it
    assert documents[0].meta.items() >= {"version_date": "2020-05-14"}.items()
    assert documents[1].meta.items() >= {"doc_number": "国函〔2006〕132号", "issuer": "国务院", "year": "2006"}.items()
    assert "doc_number_from" not in documents[1].meta and "issuer_from" not in documents[1].meta
    assert documents[1].title == "国务院关于同意设立的批复" and documents[1].text.endswith("一、同意。")
    assert documents[1].content_hash == hashlib.sha256(second).hexdigest()


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(jsonl_line(id="a", text="第一条") + b"\n{\"id\": \"b\", \"text\": \n")
    with pytest.raises(DocumentReadError, match=r"^docs.jsonl: line 2: invalid JSON"):
        load_documents(path)


# ---------------------------------------------------------------- sidecars, limits, formats


def test_sidecar_overrides_title_and_adds_metadata(tmp_path: Path) -> None:
    path = tmp_path / "397.pdf"
    path.write_bytes(GOVDOC.read_bytes())
    sidecar = tmp_path / "397.pdf.meta.json"
    title = "关于加强个人所得税纳税信用建设的通知（发改办财金规〔2019〕860号）"
    meta = {"title": title, "issuer": "国家发展改革委办公厅", "date": "2019-08-20"}
    sidecar.write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    document = load_one(path, tmp_path)
    assert document.title == title
    assert document.meta.items() >= {"issuer": "国家发展改革委办公厅", "date": "2019-08-20"}.items()
    assert document.meta["doc_number"] == "发改办财金规〔2019〕860号"  # read from the title the sidecar gives
    assert is_sidecar(sidecar) and not is_sidecar(path)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as file:
        file.truncate(int(63.2 * 1024 * 1024))
    with pytest.raises(DocumentReadError, match=r"^big.txt: 63.2 MB is over the 50 MB limit$"):
        load_documents(path, max_bytes=50 * 1024 * 1024)


def test_unsupported_extension_names_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "通知.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    expected = r"^通知.doc: unsupported file type '.doc' \(supported: .txt .md .pdf"
    with pytest.raises(UnsupportedFormatError, match=expected):
        load_documents(path)
    assert ".docx" in SUPPORTED_SUFFIXES and ".pdf" in SUPPORTED_SUFFIXES
