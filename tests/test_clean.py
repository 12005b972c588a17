"""Cleaning tests on the seed documents and the real PDFs in ../shared/corpus-ext/pdf."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

import pypdf
import pytest

from ingest.clean import (
    RADICAL_LOOKALIKES,
    clean_pages,
    clean_text,
    collapse_whitespace,
    drop_table_of_contents,
    fold_fullwidth_alnum,
    is_furniture,
    join_wrapped_lines,
    looks_hard_wrapped,
    normalize_line,
    normalize_punctuation,
    normalize_spaces,
    split_title_line,
    starts_with_marker,
    strip_markdown,
    strip_site_residue,
    unify_radicals,
)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
PDF_DIR = REPO.parent / "shared" / "corpus-ext" / "pdf"
SEED_000 = CORPUS / "关于加快构建山西省创新生态的指导意见.txt"
SEED_003 = CORPUS / "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"
GOVDOC = "GovDoc-CN_397.pdf"
BEIJING = "北京市非机动车管理条例_地方性法规_首都之窗_北京市人民政府门户网站.pdf"
ALL_PDFS = sorted(p.name for p in PDF_DIR.glob("*.pdf"))
RADICALS = re.compile(r"[\u2e80-\u2fdf]")


@functools.cache
def pdf_pages(name: str) -> tuple[str, ...]:
    """pypdf page texts, extracted once per test session (the 44-page PDF takes most of a second)."""
    return tuple(page.extract_text() for page in pypdf.PdfReader(PDF_DIR / name).pages)


@functools.cache
def cleaned_pdf(name: str) -> tuple[str, tuple[int, ...]]:
    return clean_pages(list(pdf_pages(name)))


@functools.cache
def cleaned_seed(path: Path) -> str:
    return clean_text(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- characters


def test_kangxi_radicals_and_supplement_lookalikes_become_ideographs() -> None:
    assert unify_radicals("第⼀章 第⼆条 ⼈⺠ ⾮机动⻋ 意⻅ ⼩⽣") == "第一章 第二条 人民 非机动车 意见 小生"
    assert unify_radicals("⺠⻄⻅⻉⻋⻓⻔⻘⻚⻝⻢⻬⻛") == "民西见贝车长门青页食马齐风"
    assert not RADICALS.search(unify_radicals("".join(RADICAL_LOOKALIKES) + "".join(map(chr, range(0x2F00, 0x2FD6)))))


def test_full_width_punctuation_is_not_nfkc_folded() -> None:
    assert clean_text("依法，（一）：；“两线”〔2021〕") == "依法，（一）：；“两线”〔2021〕"


def test_soft_hyphen_zero_width_and_ideographic_space() -> None:
    assert normalize_spaces("（2014\xad2020年）") == "（2014-2020年）"
    assert normalize_spaces("信\xad用\u200b体\u200d系\ufeff") == "信用体系"
    assert normalize_spaces("第一章\u3000总\u00a0则") == "第一章 总 则"


def test_full_width_digits_and_letters_fold_to_ascii() -> None:
    assert fold_fullwidth_alnum("２０２３年ＧＤＰ增长５％") == "2023年GDP增长5％"


# ---------------------------------------------------------------- one line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("深入学 习贯彻", "深入学习贯彻"),
        ("以 “三方帮扶", "以“三方帮扶"),
        ("2023 年", "2023年"),
        ("省 文 物 保 护 单 位", "省文物保护单位"),
        ("“十四五 ”规划", "“十四五”规划"),
        ("国办发〔2021〕43 号", "国办发〔2021〕43号"),
        ("Beijing  Olympic Games", "Beijing Olympic Games"),
        ("第一条\u3000为了加强管理", "第一条 为了加强管理"),
        ("第一章　总　　则", "第一章 总则"),
        ("指标 | 2020年 | 2025年", "指标 | 2020年 | 2025年"),
    ],
)
def test_collapse_whitespace(raw: str, expected: str) -> None:
    assert collapse_whitespace(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("一年架梁立柱.2020年完成", "一年架梁立柱。2020年完成"),
        ("制定本指导意见.", "制定本指导意见。"),
        ("突破3.2万家", "突破3.2万家"),
        ("达到1.6万亿元.", "达到1.6万亿元。"),
        ("1.坚持全面构建", "1.坚持全面构建"),
        ("1．坚持全面构建", "1．坚持全面构建"),
        ("一.总体要求", "一.总体要求"),
        ("重大决策部署,大力实施", "重大决策部署，大力实施"),
        ("任务书;聚焦", "任务书；聚焦"),
        ("附件:", "附件："),
        ("有原文件吗?好!", "有原文件吗？好！"),
        ("(一)指导思想", "（一）指导思想"),
        ("行动计划(2024—2026年)", "行动计划（2024—2026年）"),
        ("生产总值(GDP)比重", "生产总值（GDP）比重"),
        ("«产业技术路线图»", "《产业技术路线图》"),
        ("22:34 1,000 f(x)", "22:34 1,000 f(x)"),
        ("https://www.gov.cn/a.htm", "https://www.gov.cn/a.htm"),
        ('实施"三项改革"行动', "实施“三项改革”行动"),
        ('深化“三项改革"全面', "深化“三项改革”全面"),  # OCR reads a closing ” as "
        ('print("x")', 'print("x")'),
    ],
)
def test_normalize_punctuation(raw: str, expected: str) -> None:
    assert normalize_punctuation(raw) == expected


def test_normalize_line_spaces_then_punctuation() -> None:
    assert normalize_line("全社会 R&D (研究与开 发)经费") == "全社会R&D（研究与开发）经费"
    assert normalize_line("金 (融)、服 (务)") == "金（融）、服（务）"


@pytest.mark.parametrize(
    "line",
    ["一、总体要求", "（一）指导思想", "(二)主要目标", "1.坚持", "2．推进", "3、加强", "（1）年龄", "①“四有”",
     "第一条 为了", "第十二条（目的和依据）", "第一章 总则"],
)
def test_line_start_clause_markers(line: str) -> None:
    assert starts_with_marker(line)


@pytest.mark.parametrize("line", ["3.2万家", "2019年8月20日", "第三十九条第三项规定的", "统一是指", "一是实施"])
def test_not_clause_markers(line: str) -> None:
    assert not starts_with_marker(line)


# ---------------------------------------------------------------- furniture


@pytest.mark.parametrize(
    "line",
    [
        "— 1 —",
        "－1－",
        "- 12 -",
        "2/7",
        "第 1 页 共 7 页",
        "2026/2/9 22:34 公共服务平台 - 积分管理",
        "https://jzzjf.rsj.sh.gov.cn/jzzjf/pingfen/zc2.jsp 2/7",
        "https://jzjf.rsj.sh.gov.cn/jzzjf/pingfen/zc2.jsp 27",  # as OCR read it: the counter's slash lost
        "htp://www.go.cn/zhengce/201512/14/conten5023611.hm",  # and the scheme misread
        "意见》_中央有关文件_中国政府网 (www.gov.cn)",
        "南宁市电动自行车管理条例 - 政策文件 - 广西南宁市人民政府门户网站 - www.nanning.gov.cn",
        "分享到：",
        "当前位置：首页 > 政策文件",
        "一、背景形势 ..................................... 1",
        "京 ICP 备 05070218 号",
    ],
)
def test_page_furniture(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize("line", ["一、总体要求", "第一条 为了加强管理", "2019年8月20日", "3.2万家", "国家文物局"])
def test_text_is_not_furniture(line: str) -> None:
    assert not is_furniture(line)


@pytest.mark.parametrize(
    "residue", ["字号：大 中 小", "字号 大 中 小", "【字体：大 中 小】", "打印本页", "关闭窗口", "【打印】", "扫一扫在手机打开当前页"]
)
def test_site_residue_is_cut_out_of_a_line(residue: str) -> None:
    assert strip_site_residue(f"发布时间：2023-10-08{residue}正文") == "发布时间：2023-10-08正文"


def test_table_of_contents_block_is_dropped() -> None:
    lines = ["中华人民共和国道路交通安全法", "目 录", "第一章 总则", "第二章 车辆和驾驶人", "第一章 总则", "第一条 为了…"]
    assert drop_table_of_contents(lines) == ["中华人民共和国道路交通安全法", "第一章 总则", "第一条 为了…"]


# ---------------------------------------------------------------- paragraphs

WRAPPED = [  # as pypdf returns a justified page: every full line 28 em wide
    "（一）全面实施个人所得税申报信用承诺制",
    "税务部门在个人所得税自行纳税申报表、个人所得税专项附加扣",
    "除信息表等表单中设立格式规范、标准统一的信用承诺书，纳税",
    "人需对填报信息的真实性作出守信承诺，到年底企业数量突破3.2",
    "万家。",
    "1.坚持全面构建，实施产业链一体化生态配套专项行动，统筹",
    "推进战略性新兴产业、特色优势产业和传统产业创新生态建设。",
    "依照条例规定，违反本条例第三十九条规定的，由有关部门依照",
    "第三十九条第三项处理，并对直接负责的主管人员予以处分和通",
    "报批评。",
]


def test_join_wrapped_lines_keeps_markers_and_numbers() -> None:
    assert join_wrapped_lines(WRAPPED) == [
        "（一）全面实施个人所得税申报信用承诺制",
        (
            "税务部门在个人所得税自行纳税申报表、个人所得税专项附加扣除信息表等表单中设立格式规范、标准统一的信用承诺书，"
            "纳税人需对填报信息的真实性作出守信承诺，到年底企业数量突破3.2万家。"
        ),
        "1.坚持全面构建，实施产业链一体化生态配套专项行动，统筹推进战略性新兴产业、特色优势产业和传统产业创新生态建设。",
        "依照条例规定，违反本条例第三十九条规定的，由有关部门依照第三十九条第三项处理，并对直接负责的主管人员予以处分和通报批评。",
    ]


def test_hard_wrapped_plain_text_is_rejoined_but_seeds_keep_their_lines() -> None:
    assert looks_hard_wrapped(WRAPPED * 2)
    for seed in (SEED_000, SEED_003):
        assert not looks_hard_wrapped(seed.read_text(encoding="utf-8").splitlines())


# ---------------------------------------------------------------- seeds


def test_seed_000_title_gets_its_own_line_and_spaces_go() -> None:
    text = cleaned_seed(SEED_000)
    lines = text.split("\n")
    assert lines[0] == "关于加快构建山西省创新生态的指导意见"
    assert lines[1].startswith("为深入贯彻省委、省政府关于全力打造一流创新生态的重大决策部署，")
    assert "深入学习贯彻" in text and "深入学 习" not in text
    assert "以“三方帮扶" in text
    assert "一年架梁立柱。2020年完成" in text
    assert "（一）指导思想" in text and "R&D（研究与开发）" in text and "（GDP）" in text
    assert " " not in text.replace("R&D", "")  # every space in this seed sat next to a CJK character


def test_seed_003_title_and_decimals() -> None:
    text = cleaned_seed(SEED_003)
    assert text.split("\n")[0] == "秦创原创新驱动平台建设三年行动计划（2024—2026年）"
    assert "突破3.2万家" in text and "达到1.6万亿元。" in text
    assert "分享到" not in text and text.endswith("附件：")


@pytest.mark.parametrize("seed", [SEED_000, SEED_003])
def test_seeds_keep_their_lines_and_clause_markers(seed: Path) -> None:
    raw_lines = [line for line in seed.read_text(encoding="utf-8").splitlines() if line.strip()]
    cleaned_lines = cleaned_seed(seed).split("\n")
    markers = [normalize_line(line)[:4] for line in raw_lines if starts_with_marker(normalize_line(line))]
    assert len(markers) > 10
    cleaned_starts = [line[:4] for line in cleaned_lines if starts_with_marker(line)]
    assert cleaned_starts == markers
    assert len(raw_lines) - 1 <= len(cleaned_lines) <= len(raw_lines) + 1  # 分享到 dropped / title split off


def test_split_title_line() -> None:
    assert split_title_line("关于加快构建山西省创新生态的指导意见 为深入贯彻省委") == "关于加快构建山西省创新生态的指导意见\n为深入贯彻省委"
    assert split_title_line("为深入贯彻省委 决策部署") == "为深入贯彻省委 决策部署"
    assert split_title_line("秦创原创新驱动平台建设三年行动计划(2024—2026年)\n为全面贯彻") == (
        "秦创原创新驱动平台建设三年行动计划(2024—2026年)\n为全面贯彻"
    )


def test_strip_markdown_laws_style() -> None:
    markdown = "# 上海口岸服务条例\n\n2011年通过\n\n<!-- INFO END -->\n\n## 第一章  总则\n\n**第一条** 见[附件](a.md)。"
    assert clean_text(strip_markdown(markdown)) == "上海口岸服务条例\n2011年通过\n第一章 总则\n第一条 见附件。"


# ---------------------------------------------------------------- PDFs


def test_govdoc_matches_its_reference_text() -> None:
    text, _ = cleaned_pdf(GOVDOC)
    reference = (PDF_DIR / "GovDoc-CN_397.txt").read_text(encoding="utf-8")
    ours, theirs = re.sub(r"\s", "", text), re.sub(r"\s", "", reference)
    assert difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio() >= 0.99


def test_govdoc_paragraphs_and_page_offsets() -> None:
    text, pages = cleaned_pdf(GOVDOC)
    lines = text.split("\n")
    assert "二、建立个人所得税纳税信用管理机制" in lines
    assert "（一）全面实施个人所得税申报信用承诺制" in lines
    assert "（2014-2020年）" in text  # soft hyphen in the PDF
    assert len(pages) == 5 and list(pages) == sorted(pages) and pages[0] == 0
    assert pages[2] == text.index("违规行为记录为重点")  # page 3 starts mid-sentence, after `— 2 —`


def test_beijing_regulation_articles_and_no_radicals() -> None:
    text, _ = cleaned_pdf(BEIJING)
    assert len(re.findall(r"^第[一二三四五六七八九十百]+条", text, re.MULTILINE)) == 55
    assert not RADICALS.search(text)
    assert text.startswith("北京市非机动车管理条例\n")
    assert "第一章 总则\n第一条 为了加强非机动车管理，" in text
    assert text.count("\n第一章 总则\n") == 1 and "\n目录\n" not in text  # table of contents dropped
    assert "字号" not in text and "2026/2/9" not in text


def test_bare_page_numbers_at_page_tops_are_dropped() -> None:
    text, pages = cleaned_pdf("省文化和旅游厅关于印发《湖北省文物事业发展“十四五”规划》的通知.pdf")
    assert not re.search(r"^\d+$", text, re.MULTILINE)  # `1`, `2`… on top of pages 7, 8…
    assert pages[0] == pages[1] == 0  # the image-only cover has no text: it starts where page 2 does
    assert "一、背景形势\n1.“十三五”全省文物事业发展取得重大成就\n" in text  # TOC with dot leaders dropped


@pytest.mark.parametrize("name", [GOVDOC, BEIJING])
def test_cleaning_twice_changes_nothing(name: str) -> None:
    text, _ = cleaned_pdf(name)
    assert clean_text(text) == text
    assert clean_text(cleaned_seed(SEED_000)) == cleaned_seed(SEED_000)


@pytest.mark.parametrize("name", ALL_PDFS)
def test_every_pdf_gives_clean_paragraphs(name: str) -> None:
    text, pages = cleaned_pdf(name)
    assert len(pages) == len(pdf_pages(name)) and list(pages) == sorted(pages)
    assert len(text) > 1000 and not RADICALS.search(text)
    furniture = re.compile(r"^(?:[—－-] ?\d+ ?[—－-]|\d+/\d+|\d{4}/\d{1,2}/\d{1,2} .*)$|https?://|\.{6}", re.MULTILINE)
    assert not furniture.search(text)
    assert "\n\n" not in text and text == text.strip()
