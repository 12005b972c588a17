"""Property-based tests (hypothesis) of cleaning, decoding and the clause parser on arbitrary text.

For any input: no exception but DocumentReadError, labels well-formed, and the clauses of a document
cover its cleaned text with nothing dropped (only whitespace lies between or around them).
"""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.clauses import LABEL_RE, split_clauses
from ingest.clean import clean_pages, clean_text, strip_markdown
from ingest.encoding import decode_text
from ingest.loaders import load_documents
from rag.errors import DocumentReadError
from rag.records import Document

from .conftest import CORPUS, QCY

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces policy documents are made of, so random text hits the parser's and cleaner's real paths.
MARKERS = ["一、", "二、", "十二、", "（一）", "(二)", "（十）", "1.", "2．", "3、", "12.", "（1）", "(2)", "①", "②",
           "一是", "二是", "三是", "第一章", "第二章 总则", "第一节", "第一条", "第十二条", "第三条之一", "第一款 ",
           "第一编", "第一部分", "附件", "目录", "第 3 页", "— 2 —", "3/7"]
WORDS = ["加快构建创新生态", "技术合同成交额突破6000亿元", "支持", "省委", "3.2万家", "GDP", "R&D", "《条例》",
         "（2024—2026年）", "http://www.gov.cn", "打印本页", "字号：大 中 小", "⼀⼈⺠", "２０２４", "ＧＤＰ"]
PUNCT = list("。，、；：！？“”‘’（）()《》【】…—-·,.;:?! \u3000\u00a0\t|#*>_`[]") + ["\n", "\n\n", "\r\n", "  "]
piece = st.one_of(st.sampled_from(MARKERS), st.sampled_from(WORDS), st.sampled_from(PUNCT),
                  st.text(min_size=1, max_size=8))
policy_like = st.lists(piece, max_size=60).map("".join)
any_text = st.one_of(policy_like, st.text(max_size=300))


def _document(text: str) -> Document:
    return Document(doc_id="doc.txt", source="doc.txt", title="测试文件", text=text,
                    content_hash=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


@FUZZ
@given(any_text)
@example("一、总体要求\n（一）指导思想\n1.坚持全面构建。一是实施工程；二是建设平台。")
@example("第一章 总则\n第一条 为了规范管理，制定本条例。\n第二条 本条例适用于全省。")
def test_cleaning_never_raises_and_returns_tidy_lines(text):
    cleaned = clean_text(text)
    assert isinstance(cleaned, str)
    assert "\r" not in cleaned
    assert all(line == line.strip() for line in cleaned.split("\n")), cleaned
    assert isinstance(strip_markdown(text), str)


@FUZZ
@given(st.lists(any_text, max_size=5))
def test_pdf_page_cleaning_never_raises_and_page_offsets_are_ordered(pages):
    text, offsets = clean_pages(pages)
    assert len(offsets) == len(pages)
    assert list(offsets) == sorted(offsets) and all(0 <= o <= len(text) for o in offsets)


@FUZZ
@given(any_text, st.sampled_from([600, 40, 1]))
@example("二、（一）3." * 5, 600)
@example(open(CORPUS / QCY, encoding="utf-8").read(), 600)
def test_clauses_are_well_labelled_and_cover_the_cleaned_text(text, max_chars):
    doc = _document(clean_text(text))
    clauses = split_clauses(doc, max_chars=max_chars)
    ids = [c.clause_id for c in clauses]
    assert len(ids) == len(set(ids)), "duplicate clause ids"
    covered = 0
    for clause in clauses:
        assert LABEL_RE.fullmatch(clause.label), clause.label
        assert clause.clause_id.startswith(f"{doc.doc_id}#{clause.label}")
        assert clause.text == doc.text[clause.start : clause.end] and clause.text.strip() == clause.text
        assert 0 < len(clause.text) <= max_chars
        assert clause.start >= covered, "clauses overlap or go backwards"
        assert not doc.text[covered : clause.start].strip(), f"dropped: {doc.text[covered:clause.start]!r}"
        covered = clause.end
    assert not doc.text[covered:].strip(), f"dropped at the end: {doc.text[covered:]!r}"


@FUZZ
@given(st.binary(max_size=400))
@example(b"\xff\xfe" + "一、测试".encode("utf-16-le"))
@example("一、测试".encode("gb18030"))
@example(b"\x00" * 10)
def test_decoding_arbitrary_bytes_gives_text_or_a_read_error_naming_the_file(data):
    try:
        text = decode_text(data, "x.txt")
    except DocumentReadError as error:
        assert str(error).startswith("x.txt: ")
    else:
        assert isinstance(text, str) and text.strip()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from([".txt", ".md", ".html", ".pdf", ".docx", ".jsonl"]),
       st.one_of(st.binary(max_size=300), any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.binary(max_size=200).map(lambda b: b"%PDF-1.4\n" + b), st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b)))
def test_loading_arbitrary_files_gives_documents_or_a_read_error(tmp_path_factory, suffix, data):
    path = tmp_path_factory.mktemp("fuzz") / f"文件{suffix}"
    path.write_bytes(data)
    try:
        documents = load_documents(path)
    except DocumentReadError as error:
        assert str(error).startswith(f"文件{suffix}"), str(error)
    else:
        assert documents and all(d.text.strip() for d in documents)


@FUZZ
@given(any_text)
@example("２０２６年　达到５０％，（一）ＧＤＰ ①㈠⼀⺠ｶﾞ")
def test_fold_is_nfkc_without_whitespace(text):
    # fold() maps the full-width forms itself and skips NFKC when the rest is already normalised: it must
    # give exactly what NFKC + removing whitespace gives, for any text
    import re
    import unicodedata

    from rag.citations import fold

    assert fold(text) == re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
