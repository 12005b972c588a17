"""ui.documents: the 文件 tab's table rows, its status/issuer/year filters and the document pickers."""

from __future__ import annotations

from datetime import date

from rag.validity import EXPIRED, IN_FORCE, REPEALED, statuses
from ui import documents as table

DOCS = {
    "old.txt": {"title": "科技型中小企业认定办法", "clauses": 12,
                "meta": {"doc_number": "陕科发〔2019〕3号", "issuer": "陕西省科学技术厅", "date": "2019-03-01",
                         "effective": "2019-04-01"}},
    "new.txt": {"title": "科技型中小企业认定办法", "clauses": 15,
                "meta": {"doc_number": "陕科发〔2024〕8号", "issuer": "陕西省科学技术厅", "date": "2024-05-06",
                         "effective": "2024-06-01", "repeals": "陕科发〔2019〕3号"}},
    "plan.txt": {"title": "三年行动计划（2021—2023年）", "clauses": 20,
                 "meta": {"issuer": "山西省人民政府", "date": "2021-02-01", "expires": "2023-12-31"}},
    "bare.txt": {"title": "某通知", "clauses": 2},
}
FOUND = statuses(DOCS, date(2025, 1, 1))


def test_rows_show_numbers_dates_and_status_with_the_replacing_document():
    rows = {r[-1]: r for r in table.rows(DOCS, FOUND)}
    assert rows["old.txt"] == ["科技型中小企业认定办法", "陕科发〔2019〕3号", "陕西省科学技术厅", "2019-03-01",
                               "2019-04-01", "", "已被废止或替代（被《科技型中小企业认定办法》替代）", 12, "old.txt"]
    assert rows["new.txt"][6] == IN_FORCE and rows["plan.txt"][6] == EXPIRED and rows["plan.txt"][5] == "2023-12-31"
    assert rows["bare.txt"][1:6] == ["", "", "", "", ""] and rows["bare.txt"][6] == IN_FORCE
    assert [r[-1] for r in table.rows(DOCS, FOUND)] == ["new.txt", "plan.txt", "old.txt", "bare.txt"]  # newest first
    assert len(table.HEADERS) == len(rows["old.txt"])


def test_filters_by_status_issuer_and_year_combine():
    def ids(**filters) -> list[str]:
        return sorted(r[-1] for r in table.rows(DOCS, FOUND, **filters))

    assert ids(state=REPEALED) == ["old.txt"]
    assert ids(state=IN_FORCE) == ["bare.txt", "new.txt"]
    assert ids(issuer="科学技术厅") == ["new.txt", "old.txt"]   # part of the name is enough
    assert ids(year="2021") == ["plan.txt"]
    assert ids(issuer="陕西", state=IN_FORCE) == ["new.txt"]
    assert ids(issuer="山西", year="2019") == []
    assert ids() == sorted(DOCS)


def test_filter_choices_come_from_the_documents():
    states, issuers, years = table.filter_choices(DOCS)
    assert states[0] == ("全部状态", table.ALL) and {v for _, v in states[1:]} == {IN_FORCE, EXPIRED, REPEALED, "尚未施行"}
    assert issuers == [("全部发文机关", table.ALL), ("山西省人民政府", "山西省人民政府"), ("陕西省科学技术厅", "陕西省科学技术厅")]
    assert years == [("全部年份", table.ALL), ("2024年", "2024"), ("2021年", "2021"), ("2019年", "2019")]


def test_summary_counts_documents_clauses_and_what_the_filter_shows():
    assert table.summary(DOCS, 4) == "共 4 份文件，49 个条款。"
    assert table.summary(DOCS, 1).endswith("当前筛选显示 1 份。")
    assert "还没有收录任何文件" in table.summary({}, 0)


def test_pickers_tell_versions_with_one_title_apart():
    choices = {v: label for label, v in table.choices(DOCS, FOUND)}
    assert choices["old.txt"] == "科技型中小企业认定办法（陕科发〔2019〕3号）〔已被废止或替代〕"
    assert choices["new.txt"] == "科技型中小企业认定办法（陕科发〔2024〕8号）"
    assert choices["bare.txt"] == "某通知"
    same = {"a.txt": {"title": "同名"}, "b.txt": {"title": "同名"}}
    assert sorted(label for label, _ in table.choices(same)) == ["同名（a.txt）", "同名（b.txt）"]
