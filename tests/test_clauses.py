"""Clause parser on real documents: the seeds, 20 laws, a PDF regulation; and properties on arbitrary text."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.clauses import LABEL_PART_RE, LABEL_RE, split_clauses
from ingest.loaders import load_documents
from rag.records import Clause, Document
from tests.vectors import HEADING_VECTORS, SEED_LABELS, VECTORS, ClauseVector, HeadingVector

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
CORPUS_EXT = REPO.parent / "shared" / "corpus-ext"
LAWS = CORPUS_EXT / "text" / "laws_lawrefbook.jsonl"
BEIJING_PDF = CORPUS_EXT / "pdf" / "北京市非机动车管理条例_地方性法规_首都之窗_北京市人民政府门户网站.pdf"

NUMERAL = "一二三四五六七八九十百千零〇两"
ARTICLE = re.compile(rf"第[{NUMERAL}0-9]+条(?:之[{NUMERAL}]+)?")


def make_doc(text: str, doc_id: str = "t.txt", pages: tuple[int, ...] = ()) -> Document:
    return Document(doc_id=doc_id, source=doc_id, title="测试", text=text, content_hash="", pages=pages)


def labels(clauses: list[Clause]) -> list[str]:
    return [c.label for c in clauses]


def assert_well_formed(doc: Document, clauses: list[Clause], max_chars: int) -> None:
    """Spans in order, not overlapping, exact, within max_chars; only whitespace left between them."""
    covered = 0
    for c in clauses:
        assert covered <= c.start < c.end <= len(doc.text), c
        assert doc.text[covered : c.start].strip() == "", (covered, c.start)
        assert c.text == doc.text[c.start : c.end] and c.text == c.text.strip()
        assert len(c.text) <= max_chars
        assert all(LABEL_PART_RE.fullmatch(part) for part in c.path), c.path
        assert LABEL_RE.fullmatch(c.label)
        assert c.clause_id.startswith(f"{doc.doc_id}#{c.label}")
        covered = c.end
    assert doc.text[covered:].strip() == ""
    ids = [c.clause_id for c in clauses]
    assert len(set(ids)) == len(ids)


# --- seeds ---------------------------------------------------------------------------------------


@cache
def seed_clauses(file: str) -> tuple[Document, list[Clause]]:
    [doc] = load_documents(CORPUS / file, root=REPO)
    return doc, split_clauses(doc)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v.file[:6]}:{v.label or 'preamble'}")
def test_seed_clause_holds_text(vector: ClauseVector):
    _, clauses = seed_clauses(vector.file)
    for phrase in vector.must_include:
        holders = {c.label for c in clauses if phrase in c.text}
        assert holders == {vector.label}, phrase
    for phrase in vector.must_not_include:
        assert not any(phrase in c.text for c in clauses if c.label == vector.label), phrase


@pytest.mark.parametrize("vector", HEADING_VECTORS, ids=lambda v: f"{v.file[:6]}:{v.label}")
def test_seed_headings(vector: HeadingVector):
    _, clauses = seed_clauses(vector.file)
    [clause] = [c for c in clauses if c.label == vector.label]
    assert clause.headings == vector.headings


@pytest.mark.parametrize("file", sorted(SEED_LABELS))
def test_seed_tree_is_complete(file: str):
    doc, clauses = seed_clauses(file)
    assert tuple(labels(clauses)) == SEED_LABELS[file]
    assert_well_formed(doc, clauses, 600)
    first = clauses[0]
    assert first.clause_id == f"{doc.doc_id}#" and first.title == doc.title and first.source == doc.source
    assert all(c.meta == doc.meta and c.page is None for c in clauses)


def test_seed_parse_is_stable():
    doc, clauses = seed_clauses(sorted(SEED_LABELS)[0])
    assert split_clauses(doc) == clauses


# --- laws ----------------------------------------------------------------------------------------

# A fixed, varied selection of laws_lawrefbook.jsonl: 编/分编/章/节, 章 only, no chapters, 一、 sections,
# 第X条之一, a long code, 第六章法律责任 without a space, and history lines that start with 第X条.
AMENDMENT = "lrb-6792e073c7ff"  # 中华人民共和国宪法修正案（2018年）: long articles, quotes a whole 第七节
LAW_IDS = (
    "lrb-bd8528ce180b",  # 中华人民共和国刑法: 编/章/节, 53 × 第X条之一, 75 k chars
    "lrb-ada6b16d1032",  # 中华人民共和国民法典 合同编: 分编/章/节, 526 articles
    "lrb-abc8634944d0",  # 中华人民共和国刑事诉讼法: 编/章/节
    "lrb-8581de84ceeb",  # 中华人民共和国民事诉讼法 (2021): 编/章/节
    "lrb-bff20565ee2f",  # 中华人民共和国宪法: 章/节
    "lrb-e8c3909ff098",  # 最高人民法院关于适用《民法典》侵权责任编的解释（一）: no chapters
    "lrb-b5eecc0e1fbd",  # 中华人民共和国文物保护法 (2024)
    "lrb-bd04863da534",  # 中华人民共和国文物保护法 (2017): a history line starting 第三十一条的决定
    "lrb-00f8f7a09969",  # 台州市城乡规划条例: 第六章法律责任 (no space after the marker)
    "lrb-592adb835abc",  # 北京市建设工程质量条例: 章/节, ideographic space after 第X条
    "lrb-69a4c154d0af",  # 上海口岸服务条例: 章
    "lrb-590666fc8951",  # 中华人民共和国药品管理法: 章
    "lrb-7c6ca2581da7",  # 广东省道路运输条例: 章/节
    "lrb-8a104a3a74bc",  # 最高人民法院关于审理期货纠纷案件若干问题的规定: 一、 sections
    "lrb-e1f3df84fb74",  # 最高人民法院关于适用《民事诉讼法》的解释: 一、 sections, 552 articles
    "lrb-df4b8652d5eb",  # 嘉兴市餐饮业油烟管理办法: no chapters
    "lrb-7b9fb54912aa",  # 社会抚养费征收管理办法: no chapters
    "lrb-f75eaad1de07",  # 植物检疫条例: no chapters
    "lrb-97dbadb2bb0e",  # 关于市人民政府向市人民代表大会常务委员会报告重大事项的若干规定: 7 articles
    "lrb-749020ec82b6",  # 重庆市防震减灾条例: no chapters
)
RECORD_ID = re.compile(r'\{"id": "([^"]+)"')
# A paragraph of the markdown that opens with 第X条 is an article, unless it goes on like a reference
# (第三十一条的决定》第一次修正). One source typo writes 第一百二十八 条侦查人员…
MD_ARTICLE = re.compile(rf"^第[{NUMERAL}0-9]+ ?条(?:之[{NUMERAL}]+)?(?![的第规、，])", re.MULTILINE)
MD_HEADING = re.compile(rf"^(#+)\s*(第[{NUMERAL}]+(?:分编|编|章|节)|[{NUMERAL}]+、)", re.MULTILINE)


def selected_laws(tmp_dir: Path) -> list[tuple[str, Document]]:
    """(raw markdown, loaded Document) for each selected law, read through the real loader."""
    lines = {}
    with LAWS.open(encoding="utf-8") as f:
        for line in f:
            record_id = RECORD_ID.match(line)
            if record_id and record_id[1] in (*LAW_IDS, AMENDMENT):
                lines[record_id[1]] = line
    wanted = (*LAW_IDS, AMENDMENT)
    assert sorted(lines) == sorted(wanted)
    selection = tmp_dir / "laws_selection.jsonl"
    selection.write_text("".join(lines[i] for i in wanted), encoding="utf-8")
    docs = load_documents(selection, root=tmp_dir)
    return [(json.loads(lines[i])["text"], doc) for i, doc in zip(wanted, docs, strict=True)]


def expected_article_labels(markdown: str) -> list[str]:
    """Each line-initial 第X条 of the markdown with the markers of the headings (## 第一章 …) it sits under."""
    events = [(m.start(), "heading", m) for m in MD_HEADING.finditer(markdown)]
    events += [(m.start(), "article", m) for m in MD_ARTICLE.finditer(markdown)]
    open_headings: dict[int, str] = {}  # markdown level → marker
    expected = []
    for _, kind, m in sorted(events, key=lambda e: e[0]):
        if kind == "heading":
            level = len(m.group(1))
            open_headings = {k: v for k, v in open_headings.items() if k < level} | {level: m.group(2)}
        else:
            expected.append("".join(open_headings[k] for k in sorted(open_headings)) + m.group(0).replace(" ", ""))
    return expected


@pytest.fixture(scope="module")
def laws(tmp_path_factory) -> list[tuple[str, Document]]:
    return selected_laws(tmp_path_factory.mktemp("laws"))


@pytest.mark.parametrize("law", range(len(LAW_IDS)), ids=LAW_IDS)
def test_every_article_is_one_clause(laws, law: int):
    markdown, doc = laws[law]
    clauses = split_clauses(doc)
    articles = [c for c in clauses if c.path and ARTICLE.fullmatch(c.path[-1]) and "~" not in c.clause_id]
    expected = expected_article_labels(markdown)
    assert len(expected) >= 7
    missing = [a for a in expected if a not in labels(articles)]
    extra = [a for a in labels(articles) if a not in expected]
    assert labels(articles) == expected, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert_well_formed(doc, clauses, 600)
    for c in articles:  # an article clause opens with its own marker and holds its items
        assert c.text.startswith(c.path[-1])


def test_long_law_articles_are_windowed(laws):
    _, doc = laws[-1]  # 宪法修正案: 第三十二条 is ~900 characters
    clauses = split_clauses(doc, max_chars=300)
    windows = [c for c in clauses if c.label == "第三十二条"]
    assert len(windows) >= 3
    assert [c.clause_id.rsplit("#", 1)[1] for c in windows][:3] == ["第三十二条", "第三十二条~2", "第三十二条~3"]
    assert all(c.text[-1] in "。；”" for c in windows[:-1])  # cut at sentence ends
    assert_well_formed(doc, clauses, 300)


def test_quoted_section_of_an_amendment(laws):
    _, doc = laws[-1]  # 第五十二条 adds 第七节 监察委员会 (第一百二十三条 … 第一百二十七条) to the constitution
    articles = [c.label for c in split_clauses(doc, max_chars=10_000) if c.path and ARTICLE.fullmatch(c.path[-1])]
    assert articles[:2] == ["第三十二条", "第三十三条"] and articles[20] == "第五十二条"
    assert articles[21:] == [f"第七节第一百二十{n}条" for n in "三四五六七"]


def test_law_items_stay_in_their_article(laws):
    _, doc = laws[LAW_IDS.index("lrb-bd8528ce180b")]  # 刑法
    clauses = split_clauses(doc, max_chars=10_000)
    assert not any("（一）" in c.path or "一、" in c.path for c in clauses)
    [article] = [c for c in clauses if c.path[-1:] == ("第一百三十三条之一",)]
    assert article.label == "第二编第二章第一百三十三条之一"
    assert "（一）追逐竞驶，情节恶劣的" in article.text and "（四）违反危险化学品安全管理规定" in article.text
    assert article.headings == ("第二编 分则", "第二章 危害公共安全罪")


def test_pdf_regulation_articles():
    [doc] = load_documents(BEIJING_PDF, root=BEIJING_PDF.parent)
    clauses = split_clauses(doc)
    # 75 mentions: 55 articles and 20 cross-references (按照第四十三条第一款第一项). The raw pypdf text has 74,
    # because one reference is broken over two lines there (第二十二\n条) and the cleaner re-joins it.
    assert len(ARTICLE.findall(doc.text)) == 75
    articles = [c for c in clauses if c.path and ARTICLE.fullmatch(c.path[-1]) and "~" not in c.clause_id]
    assert [cn_number(c.path[-1][1:-1]) for c in articles] == list(range(1, 56))
    chapters = [c.path[0] for c in articles]
    assert all(re.fullmatch(rf"第[{NUMERAL}]+章", ch) for ch in chapters)
    assert [cn_number(ch[1:-1]) for ch in dict.fromkeys(chapters)] == list(range(1, 9))
    assert [c.page for c in articles] == sorted(c.page for c in articles) and 1 <= articles[-1].page <= 8
    assert_well_formed(doc, clauses, 600)


def cn_number(numeral: str) -> int:
    """一 → 1, 十二 → 12, 五十五 → 55."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    tens, ten, units = numeral.rpartition("十")
    if not ten:
        return digits[numeral]
    return (digits[tens] if tens else 1) * 10 + (digits[units] if units else 0)


# --- marker styles on small texts ----------------------------------------------------------------


def test_mixed_styles_nest_by_first_appearance():
    text = "\n".join(["标题", "一、总体要求", "（一）指导思想", "1.第一项。", "一是甲。", "二是乙。", "2.第二项。",
                     "（二）目标", "二、任务", "1.任务一"])
    clauses = split_clauses(make_doc(text))
    assert labels(clauses) == [
        "", "一、", "一、（一）", "一、（一）1.", "一、（一）1.一是", "一、（一）1.二是", "一、（一）2.",
        "一、（二）", "二、", "二、1.",
    ]
    assert clauses[4].headings == ("一、总体要求", "（一）指导思想", "1.第一项")
    assert clauses[-1].headings == ("二、任务",)


def test_plan_containers_nest_by_rank():
    text = "\n".join(["第一篇 总纲", "第一章 发展环境", "第一节 成就", "一、经济", "（一）增长", "第二节 形势",
                     "第二章 目标", "第二篇 任务", "一、创新"])
    clauses = split_clauses(make_doc(text))
    assert labels(clauses) == [
        "第一篇", "第一篇第一章", "第一篇第一章第一节", "第一篇第一章第一节一、", "第一篇第一章第一节一、（一）",
        "第一篇第一章第二节", "第一篇第二章", "第二篇", "第二篇一、",
    ]
    assert clauses[4].headings == ("第一篇 总纲", "第一章 发展环境", "第一节 成就", "一、经济")


@pytest.mark.parametrize(("line", "label"), [
    ("(一)指导思想", "（一）"), ("（一）指导思想", "（一）"), ("1．构建体系", "1."), ("1、构建体系", "1."),
    ("１．构建体系", "1."), ("(1)统一领导", "（1）"), ("（１）统一领导", "（1）"), ("①基本情况", "①"),
    ("十一、附则", "十一、"), ("三.保障措施", "三、"), ("三．保障措施", "三、"), ("  二十、其他", "二十、"),
    ("\u3000\u3000一是加强", "一是"), ("第十二条 内容", "第十二条"),
    ("第十二条之一 内容", "第十二条之一"), ("第二部分 主要任务", "第二部分"), ("第一分编 通则", "第一分编"),
])
def test_marker_forms_are_normalised(line: str, label: str):
    assert labels(split_clauses(make_doc(f"前言\n{line}\n"))) == ["", label]


@pytest.mark.parametrize("line", [
    "3.2万家企业完成改造。", "1.6万亿元资金到位。", "2024年完成目标。", "第五条规定的情形除外。",
    "第四十三条第一款第一项规定的车辆。", "第十条、第十一条的规定适用于本章。", "第七节相应改为第八节，内容不变。",
    "本法第十条规定了原则。", "一、二级医院", "十.5亿元", "（以上为部分内容）", "5.1.1 重伤一级", "三是否需要",
])
def test_not_a_marker(line: str):
    text = f"第一条 总则。\n{line}\n" if line.startswith("第") else f"正文。\n{line}\n"
    assert len(split_clauses(make_doc(text))) == 1


def test_cross_references_stay_in_the_article():
    text = "\n".join(["第一章 总则", "第一条 为了管理，制定本条例。", "第二条 违反本条例", "第一条规定的，处罚款。",
                     "第二章 附则", "第三条 施行。"])
    clauses = split_clauses(make_doc(text))
    assert labels(clauses) == ["第一章", "第一章第一条", "第一章第二条", "第二章", "第二章第三条"]
    assert clauses[2].text.endswith("第一条规定的，处罚款。")
    assert clauses[3].headings == () and clauses[4].headings == ("第二章 附则",)


def test_inline_points_split_a_paragraph():
    text = "1.完善体系。主要包括：一是实施工程。二是建设平台；三是培育企业。\n2.其他。统一是前提。"
    clauses = split_clauses(make_doc(text))
    assert labels(clauses) == ["1.", "1.一是", "1.二是", "1.三是", "2."]
    assert clauses[0].text == "1.完善体系。主要包括：" and clauses[2].text == "二是建设平台；"


def test_a_lone_inline_point_does_not_split():
    assert labels(split_clauses(make_doc("1.完善体系。一是实施工程。\n"))) == ["1."]


def test_repeated_labels_get_suffixes():
    clauses = split_clauses(make_doc("一、甲\n二、乙\n一、丙\n", doc_id="a.txt"))
    assert [c.clause_id for c in clauses] == ["a.txt#一、", "a.txt#二、", "a.txt#一、~2"]


def test_windows_cover_a_long_clause():
    sentences = [f"第{i}句话说明了一项具体的政策措施内容；" for i in range(60)]
    text = "1.长条款。" + "".join(sentences) + "最后一句没有句号"
    clauses = split_clauses(make_doc(text), max_chars=100)
    assert {c.label for c in clauses} == {"1."} and len(clauses) > 10
    assert [c.clause_id for c in clauses[:3]] == ["t.txt#1.", "t.txt#1.~2", "t.txt#1.~3"]
    assert "".join(c.text for c in clauses) == text
    assert all(c.text.endswith("；") for c in clauses[1:-1])
    assert clauses[0].headings == () and clauses[1].headings == ("1.长条款",)
    assert_well_formed(make_doc(text), clauses, 100)


def test_window_without_sentence_end_is_cut_hard():
    text = "一、" + "字" * 250
    clauses = split_clauses(make_doc(text), max_chars=100)
    assert [len(c.text) for c in clauses] == [100, 100, 52]


def test_pages_follow_offsets():
    text = "第一条 甲。\n第二条 乙。\n第三条 丙。"
    clauses = split_clauses(make_doc(text, pages=(0, text.index("第三条"))))
    assert [c.page for c in clauses] == [1, 1, 2]


def test_empty_and_blank_documents():
    assert split_clauses(make_doc("")) == []
    assert split_clauses(make_doc(" \n\u3000\n")) == []
    with pytest.raises(ValueError, match="max_chars"):
        split_clauses(make_doc("正文"), max_chars=0)


# --- properties ----------------------------------------------------------------------------------

MARKERISH = [
    "一、", "十一、", "（一）", "(二)", "1.", "2．", "3、", "（1）", "(2)", "①", "⑳", "一是", "二是", "第一章",
    "第二节", "第一编", "第一分编", "第一篇", "第二部分", "第十条", "第十条之一", "第三款 ", "第一项", "3.2万",
    "2024年", "依照本法第十条规定",
    "第四十三条第一款", "。", "；", "：", "，", "\n", " ", "\u3000", "总则", "内容", "５", "\r", "\t",
]
texts = st.lists(st.one_of(st.sampled_from(MARKERISH), st.text(max_size=5)), max_size=60).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, max_chars=st.integers(min_value=1, max_value=80))
def test_any_text_parses_into_covering_well_formed_clauses(text: str, max_chars: int):
    doc = make_doc(text)
    clauses = split_clauses(doc, max_chars=max_chars)
    assert_well_formed(doc, clauses, max_chars)
    assert split_clauses(doc, max_chars=max_chars) == clauses


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_unicode_does_not_break_the_parser(text: str):
    doc = make_doc(text)
    assert_well_formed(doc, split_clauses(doc), 600)
