"""The targets table (rag/targets.py): quantitative targets read from real documents' clauses, what is not a
target left out, `policy-rag targets` and its exports, and target questions answered from the table."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from ingest.clauses import split_clauses
from ingest.loaders import load_documents
from rag.records import Clause
from rag.targets import extract, number, select, to_csv, write_table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QCY = REPO / "corpus" / "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"
SHANXI = REPO / "corpus" / "关于加快构建山西省创新生态的指导意见.txt"


@pytest.fixture(scope="module")
def qcy_targets():
    return extract(split_clauses(load_documents(QCY)[0]))


@pytest.fixture(scope="module")
def shanxi_targets():
    return extract(split_clauses(load_documents(SHANXI)[0]))


def _one(targets, as_written, label=None):
    found = [t for t in targets if t.as_written == as_written and (label is None or t.clause_label == label)]
    assert found, f"{as_written} not extracted: {[t.as_written for t in targets]}"
    return found[0]


def _clause(text: str, date: str = "2025-01-20", title: str = "2025年某省政府工作报告") -> Clause:
    return Clause(clause_id=f"t#{hash(text)}", doc_id="t", title=title, path=("一、",), headings=(), text=text,
                  start=0, end=len(text), meta={"date": date})


def test_the_plans_headline_targets_with_value_unit_year_and_clause(qcy_targets):
    deal = _one(qcy_targets, "6000亿元", "一、")
    assert (deal.value, deal.unit, deal.year, deal.comparator) == (6e11, "元", 2026, "突破")
    assert "技术合同成交额" in deal.indicator and deal.region == "陕西"
    smes = _one(qcy_targets, "3.2万家", "一、")
    assert (smes.value, smes.unit, smes.year) == (32000, "家", 2026) and "科技型中小企业" in smes.indicator
    share = _one(qcy_targets, "65%", "一、")
    assert (share.value, share.unit, share.comparator) == (65, "%", "超过") and "研发经费" in share.indicator
    # the same target restated in the task clause that serves it keeps that clause's label
    assert _one(qcy_targets, "6000亿元", "二、（一）3.").clause_label == "二、（一）3."


def test_a_task_figure_names_what_is_built_after_the_number(qcy_targets):
    centres = _one(qcy_targets, "30个", "二、（一）3.")
    assert "概念验证中心" in centres.indicator and centres.year is None  # no year stated for the task
    talent = _one(qcy_targets, "1000名", "二、（五）15.")
    assert talent.indicator == "高层次人才"


def test_numbers_in_words_ranges_and_a_shared_year(shanxi_targets):
    leaders = _one(shanxi_targets, "百家")
    assert (leaders.value, leaders.unit) == (100, "家") and "领军企业" in leaders.indicator
    tasks = _one(shanxi_targets, "1—2项")
    assert (tasks.value, tasks.value_high, tasks.unit) == (1, 2, "项")
    # 「到2022年，新增1000家高新技术企业，…」: the leading year governs the sentence's target
    assert _one(shanxi_targets, "1000家").year == 2022
    assert all(t.region == "山西" for t in shanxi_targets)


def test_chinese_numerals_are_read():
    assert number("百分之六十五") is None  # the 百分之 prefix is the extractor's, not the numeral's
    assert [number(x) for x in ("六十五", "3.2", "百", "两", "一百二十", "十一点八")] == [65, 3.2, 100, 2, 120, 11.8]
    (pct,) = extract([_clause("到2027年，全省森林覆盖率达到百分之六十五。")])
    assert (pct.value, pct.unit, pct.year) == (65, "%", 2027)


@pytest.mark.parametrize("sentence", [
    # a figure the report looks back on (gwr-019, gwr-021 in corpus-ext policy_docs.jsonl)
    "国内生产总值达到63.6万亿元，比上年增长7.4%，在世界主要经济体中名列前茅。",
    "2024年全省地区生产总值增长5.3%。",
    # an award or subsidy is a measure, not a target
    "对新认定的国家级孵化器，给予最高500万元奖励。",
    # an eligibility threshold
    "支持年营业收入2000万元以上的企业建设研发机构。",
    # a named programme, a 文号, an article reference, a date
    "实施“百千万”工程和“131”行动。",
    "根据《国务院关于印发个人所得税专项附加扣除暂行办法的通知》（国发〔2018〕41号）第十二条规定执行。",
    "本办法自2025年3月1日起施行。",
])
def test_what_is_not_a_target(sentence):
    assert extract([_clause(sentence)]) == []


def test_this_years_targets_in_a_work_report_are_kept():
    found = extract([_clause("2025年经济社会发展的主要预期目标是：地区生产总值增长5.5%左右，城镇新增就业50万人以上。")])
    assert [(t.value, t.unit) for t in found] == [(5.5, "%"), (500000, "人")]
    assert all(t.year == 2025 for t in found)


def test_select_by_document_year_and_region(qcy_targets, shanxi_targets):
    both = qcy_targets + shanxi_targets
    assert {t.doc_id for t in select(both, region="山西")} == {shanxi_targets[0].doc_id}
    assert all(t.year == 2026 for t in select(both, year=2026)) and select(both, year=2026)
    assert {t.title for t in select(both, doc="秦创原")} == {qcy_targets[0].title}


def test_exports_open_in_excel_and_as_utf8_csv(qcy_targets, tmp_path):
    xlsx = write_table(qcy_targets, tmp_path / "指标.xlsx")
    sheet = load_workbook(xlsx).active
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["文件", "条款", "指标", "表述", "目标值"]
    assert sheet.max_row == len(qcy_targets) + 1
    assert any(row[4] == "6000亿元" for row in sheet.iter_rows(min_row=2, values_only=True))
    path = write_table(qcy_targets, tmp_path / "指标.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese only with the BOM
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][2] == "指标" and len(rows) == len(qcy_targets) + 1
    assert to_csv([]).startswith("文件,")
    with pytest.raises(ValueError, match="xlsx or .csv"):
        write_table(qcy_targets, tmp_path / "指标.pdf")


def _cli(*args, data_dir: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"POLICY_RAG_DATA_DIR": str(data_dir)}
    return subprocess.run([str(BIN / "policy-rag"), "targets", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_targets_command_lists_filters_and_exports(seed_index_dir, tmp_path):
    listed = _cli("--json", "--doc", "秦创原", "--year", "2026", data_dir=seed_index_dir)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows and all(r["year"] == 2026 and "秦创原" in r["title"] for r in rows)
    assert {"indicator", "value", "unit", "as_written", "comparator", "year", "region", "sentence", "clause_label",
            "clause_id", "doc_id", "title"} <= set(rows[0])
    assert any(r["as_written"] == "6000亿元" and r["clause_label"] == "一、" for r in rows)
    out = tmp_path / "t.xlsx"
    written = _cli("--xlsx", str(out), "--region", "山西", data_dir=seed_index_dir)
    assert written.returncode == 0 and out.exists() and "targets →" in written.stderr
    titles = {row[0] for row in load_workbook(out).active.iter_rows(min_row=2, values_only=True)}
    assert titles == {"关于加快构建山西省创新生态的指导意见"}
    bad = _cli("--csv", str(tmp_path / "missing" / "t.csv"), data_dir=seed_index_dir)
    assert bad.returncode == 1 and "cannot write" in bad.stderr


def test_a_list_question_is_answered_from_the_table(assistant):
    answer = assistant.ask("秦创原到2026年有哪些量化目标？")
    assert not answer.abstained
    assert "技术合同成交额：突破6000亿元（到2026年）[1]" in answer.text
    lines = answer.text.splitlines()
    assert len(lines) >= 6 and all(c.clause.title.startswith("秦创原") for c in answer.citations)
    assert answer.unsupported == []  # every figure is in the clause it cites


def test_a_comparison_gives_one_line_per_document(assistant):
    answer = assistant.ask("陕西和山西在高新技术企业数量上的目标分别是多少？")
    lines = answer.text.splitlines()
    assert lines[0].startswith("陕西：") and "2.2万家" in lines[0]
    assert lines[1].startswith("山西：") and "1000家" in lines[1]
    assert {c.clause.doc_id for c in answer.citations} == {
        "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt", "关于加快构建山西省创新生态的指导意见.txt"}


def test_a_document_without_such_a_figure_says_so(assistant):
    answer = assistant.ask("两省的研发投入目标分别是多少？")
    assert "65%" in answer.text and "山西：文件中未见该项的量化目标" in answer.text


def test_one_figure_of_one_document_is_left_to_the_answerer(assistant):
    answer = assistant.ask("陕西省级上市后备企业的目标是多少家？")
    assert "500家" in answer.text and not answer.text.startswith("量化目标")


def test_a_target_tables_rows_are_targets():
    """湖北省文物事业发展“十四五”规划 prints its targets as a ruled table (指标 | 2025年 | 属性)."""
    pdf = REPO.parent / "shared" / "corpus-ext" / "pdf" / "省文化和旅游厅关于印发《湖北省文物事业发展“十四五”规划》的通知.pdf"
    found = extract(split_clauses(load_documents(pdf)[0]))
    museums = [t for t in found if t.indicator == "博物馆数量"]
    assert [(t.value, t.year, t.comparator) for t in museums] == [(260, 2025, "≥")]
    visitors = next(t for t in found if t.indicator == "博物馆年接待观众数量")
    assert (visitors.value, visitors.unit) == (40_000_000, "人次")  # 4000 with （万人次） in the name
    coverage = next(t for t in found if t.indicator == "县级博物馆覆盖率")
    assert (coverage.value, coverage.unit) == (100, "%")
