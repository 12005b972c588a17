"""The 文件 tab's document table: one row per document with its 文号, issuer, dates and status, filtered by
status, issuer and year, and the choices of its filters and document pickers (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rag.validity import REPEALED, STATUSES, Status

HEADERS = ["标题", "文号", "发文机关", "成文日期", "施行日期", "有效期至", "状态", "条款数", "文件编号"]
ALL = "全部"  # a filter set to this (or left empty) keeps every document

Documents = Mapping[str, Mapping[str, Any]]


def year_of(entry: Mapping[str, Any]) -> str:
    """The year a document was issued (成文日期, else the year its metadata gives), or ""."""
    meta = entry.get("meta") or {}
    m = re.match(r"\d{4}", str(meta.get("date") or meta.get("year") or ""))
    return m.group(0) if m else ""


def status_text(status: Status | None) -> str:
    """The 状态 cell: the status, and for a replaced document the one replacing it."""
    if status is None:
        return ""
    if status.status == REPEALED and status.replaced_by:
        return f"{status.status}（被《{status.replaced_by}》替代）"
    return status.status


def keep(entry: Mapping[str, Any], status: Status | None, state: str = ALL, issuer: str = ALL,
         year: str = ALL) -> bool:
    """Whether a document passes the filters: its status is `state`, its issuer contains `issuer`, it was
    issued in `year` (each filter left at ALL passes everything)."""
    meta = entry.get("meta") or {}
    state, issuer, year = ("" if f == ALL else f or "" for f in (state, issuer, year))
    return ((not state or (status is not None and status.status == state))
            and (not issuer or issuer in (meta.get("issuer") or ""))
            and (not year or year_of(entry) == year))


def rows(documents: Documents, statuses: Mapping[str, Status], state: str = ALL, issuer: str = ALL,
         year: str = ALL) -> list[list]:
    """The table rows of the documents that pass the filters, newest first, then by title."""
    out = []
    for doc_id, entry in documents.items():
        status = statuses.get(doc_id)
        if not keep(entry, status, state, issuer, year):
            continue
        meta = entry.get("meta") or {}
        out.append([entry.get("title") or doc_id, meta.get("doc_number") or "", meta.get("issuer") or "",
                    meta.get("date") or meta.get("year") or "", meta.get("effective") or "",
                    meta.get("expires") or "", status_text(status), int(entry.get("clauses", 0)), doc_id])
    out.sort(key=lambda r: r[0])
    out.sort(key=lambda r: r[3], reverse=True)  # stable: same day (or none) stays by title
    return out


def summary(documents: Documents, shown: int) -> str:
    """The line above the table: how many documents and clauses, and how many pass the filters."""
    if not documents:
        return "还没有收录任何文件。请上传政策文件，或由管理员运行 `policy-rag ingest`。"
    total = sum(int(e.get("clauses", 0)) for e in documents.values())
    line = f"共 {len(documents)} 份文件，{total} 个条款。"
    return line if shown == len(documents) else line + f"当前筛选显示 {shown} 份。"


def filter_choices(documents: Documents) -> tuple[list[tuple[str, str]], list[tuple[str, str]],
                                                   list[tuple[str, str]]]:
    """(label, value) choices of the 状态, 发文机关 and 年份 filters, each led by 全部."""
    issuers = sorted({(e.get("meta") or {}).get("issuer") or "" for e in documents.values()} - {""})
    years = sorted({year_of(e) for e in documents.values()} - {""}, reverse=True)
    return ([("全部状态", ALL), *((s, s) for s in STATUSES)],
            [("全部发文机关", ALL), *((i, i) for i in issuers)],
            [("全部年份", ALL), *((f"{y}年", y) for y in years)])


def choices(documents: Documents, statuses: Mapping[str, Status] | None = None) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the document pickers, by title; a 文号 tells versions with one title apart,
    and a status other than 现行有效 is shown."""
    titles = [e.get("title") or d for d, e in documents.items()]
    out = []
    for doc_id, entry in documents.items():
        title = entry.get("title") or doc_id
        label = title
        number = (entry.get("meta") or {}).get("doc_number")
        if number:
            label += f"（{number}）"
        if titles.count(title) > 1 and not number:
            label += f"（{doc_id}）"
        status = (statuses or {}).get(doc_id)
        if status is not None and status.warning:
            label += f"〔{status.status}〕"
        out.append((label, doc_id))
    return sorted(out, key=lambda p: p[0])
