"""ui.upload: names are sanitised, contents sniffed, good files ingested, bad ones reported, nothing lost."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.config import Settings
from ui.upload import check, ingest_uploads, safe_name, store, uploads_dir

YANGLING = """杨凌示范区支持种业创新的若干措施
为加快建设种业强区，推动种业科技自立自强，制定本措施。
一、支持种业创新平台建设
对新认定的国家级种业创新平台，给予一次性奖励500万元；对新认定的省级种业创新平台，给予一次性奖励100万元。
二、培育种业龙头企业
到2027年，培育年销售收入超过10亿元的种业龙头企业5家。
三、保障措施
由杨凌示范区农业农村局牵头负责本措施的组织实施。
"""


@pytest.mark.parametrize(("name", "expected"), [
    ("../../x.txt", "x.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/etc/passwd", "passwd"),
    (".hidden.txt", "hidden.txt"),                 # ingest skips hidden files: never store one
    ("..", "upload"),
    ("关于 印发《若干措施》的通知（2024）.PDF", "关于_印发《若干措施》的通知（2024）.pdf"),
    ("a<b>|c?.html", "a_b__c.html"),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def docx_bytes(with_document: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("word/document.xml" if with_document else "other.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "data", "problem"), [
    ("a.exe", b"MZ...", "不支持的文件类型 .exe"),
    ("a", b"text", "不支持的文件类型 （无扩展名）"),
    ("a.pdf", b"hello", "不是 PDF"),
    ("a.docx", b"PK\x03\x04junk", "不是 Word"),
    ("a.docx", docx_bytes(with_document=False), "不是 Word"),
    ("a.txt", b"\x00\x01\x02binary", "二进制"),
    ("a.txt", b"  \n ", "空的"),
    ("a.txt", b"x" * (2 * 1024 * 1024), "超过上限 1 MB"),
])
def test_check_refuses_what_cannot_be_a_policy_document(name, data, problem):
    assert problem in check(name, data, max_mb=1)


@pytest.mark.parametrize(("name", "data"), [
    ("a.pdf", b"%PDF-1.7\n..."), ("a.docx", docx_bytes()), ("a.txt", YANGLING.encode("gb18030")),
    ("a.md", "# 标题".encode()), ("a.html", "<html><body>正文</body></html>".encode()),
])
def test_check_accepts_real_documents(name, data):
    assert check(name, data, max_mb=1) is None


def test_store_keeps_files_inside_the_uploads_folder_and_never_overwrites_others(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "in").mkdir()
    first = tmp_path / "in" / "x.txt"
    first.write_text("一、甲", encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    second = other / "x.txt"
    second.write_text("一、乙", encoding="utf-8")
    stored, rejected = store(settings, [first, second, first])
    folder = uploads_dir(settings)
    assert not rejected
    assert all(p.parent == folder for p in stored)
    assert [p.name for p in stored] == ["x.txt", "x-2.txt", "x.txt"]  # same name, other content: x-2
    assert sorted(p.read_text(encoding="utf-8") for p in folder.iterdir()) == ["一、乙", "一、甲"]


def test_uploads_are_ingested_bad_ones_reported_and_nothing_lost(seed_index_copy, tmp_path, embedder):
    settings = Settings(data_dir=seed_index_copy)
    before = set(Assistant(settings, embedder=embedder).index.manifest.documents)
    (tmp_path / "in").mkdir()
    good = tmp_path / "in" / "杨凌种业措施.txt"
    good.write_bytes(YANGLING.encode("gb18030"))
    fake = tmp_path / "in" / "fake.pdf"
    fake.write_text("not a pdf")
    broken = tmp_path / "in" / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n%%EOF garbage")
    rows = ingest_uploads(settings, [good, fake, broken], embedder=embedder)
    by_name = {Path(r.path).name: r for r in rows}
    assert by_name["杨凌种业措施.txt"].status == "added" and by_name["杨凌种业措施.txt"].clauses >= 3
    assert by_name["杨凌种业措施.txt"].title == "杨凌示范区支持种业创新的若干措施"
    assert by_name["fake.pdf"].status == "rejected" and "不是 PDF" in by_name["fake.pdf"].error
    assert by_name["broken.pdf"].status == "failed" and by_name["broken.pdf"].error

    assistant = Assistant(settings, embedder=embedder)
    assert before < set(assistant.index.manifest.documents)            # the seeds are still there
    answer = assistant.ask("杨凌对新认定的国家级种业创新平台奖励多少？")
    assert "500万元" in answer.text and answer.citations[0].clause.title.startswith("杨凌")
    assert "6000亿元" in assistant.ask("秦创原到2026年技术合同成交额要达到多少？").text

    again = ingest_uploads(settings, [good], embedder=embedder)        # the same file again: unchanged
    assert [r.status for r in again] == ["unchanged"]
