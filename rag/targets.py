"""Every quantitative target of a document as a record (技术合同成交额 突破 6000亿元, 到2026年, 一、（二）), read from
its clause tree: a number with a unit that the text sets out to reach, build, add or keep within — not a date, a
clause or article number, a 文号, a historical figure, an award or subsidy amount or an eligibility threshold.

Targets are computed from the stored clauses (pure functions of the clause text, milliseconds a document), so a
better extractor applies to an existing index without re-ingesting it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rag.records import Clause
from rag.tables import parse_row

# one number: Arabic (3.2, 1,000, ６５) or Chinese (三十, 一百二十, 百, 两), a multiplier, a range to a second number
_AR = r"\d+(?:[.,]\d+)*"
_CN = r"[零一二两三四五六七八九十百千万亿]+"
_NUM = rf"(?:{_AR}|{_CN})"
_MULT = r"(?:万亿|亿|万|千)?"
_RANGE = r"(?:[—–\-~～至到]{1,2})"
# units after the number; the longest first so 个百分点 wins over 个
UNITS = sorted("""个百分点 百分点 人次 万人次 千瓦时 千瓦 兆瓦 吉瓦 平方公里 平方米 立方米 公里 千米 公顷 亩 吨 标准煤 元 美元
家 个 项 名 人 户 所 座 处 条 台 套 件 篇 支 批 类 种 场 张 部 辆 艘 床 间 只 颗 株 棵 头 片 栋 kW MW GW km % ％ ‰ 倍""".split(),
               key=len, reverse=True)
_UNIT = "|".join(re.escape(u) for u in UNITS)
QUANTITY = re.compile(
    rf"(?P<pct>百分之)?(?P<lo>{_NUM})(?P<mult1>{_MULT})(?:(?:{_RANGE})(?P<pct2>百分之)?(?P<hi>{_NUM}))?(?P<mult>{_MULT})"
    rf"(?P<unit>{_UNIT})?")
# what comes right before the number and says how it is meant: a level the indicator before it reaches
# (技术合同成交额 突破 6000亿元) or an action whose object follows the number (建设 30个 省级概念验证中心)
LEVELS = """突破 达到 超过 不低于 不少于 不超过 力争 累计 年均增长 年均 增长 增加 提高到 提高 提升到 提升 降低 下降 减少 控制在
稳定在 保持在 保持 超 达 至 到 约 为 各""".split()
ACTIONS = """新增 建成 建设 培育 打造 引进 培养 新培养 布局 形成 实施 部署 支持 招引 认定 组建 发展 新建 改造 建立 扶持 带动 吸引 开展
完成 争取 推动 创建 遴选 设立 集聚 聚集 孵化 转化 服务 覆盖 实现 推介 促成 举办 攻克 编制 制定 培训 资助 选派 推广""".split()
COMPARATORS = sorted(LEVELS + ACTIONS, key=len, reverse=True)
AFTER = ("以上", "左右", "以内", "以下", "及以上", "多")
# a figure the text reports (what has been done), not one it sets out to reach
HISTORICAL = re.compile(r"已经|已达|已有|已建|已累计|已形成|已实现|已完成|比上年|同比|上年|去年|过去|回顾|截至|截止")
# an amount paid to someone is a measure, not a target (给予最高500万元奖励, 按20%给予补助, 每家补贴)
MEASURE = re.compile(r"给予|奖励|奖补|补助|补贴|资助|贴息|最高|一次性|每家|每人|每个|每项|每户|每名|每台|罚款|收取|缴纳|扣除|抵免|报销")
# a target year: 到2026年, 2026年底前, 2013—2015年 (the end year counts)
YEAR = re.compile(r"(?:(?:到|至|力争|争取|在)?(?P<y1>(?:19|20)\d{2})(?:年)?\s*[—–\-~～至到]\s*)?(?P<lead>到|至|力争到|力争|争取到|争取)?"
                  r"(?P<y>(?:19|20)\d{2})年(?:底|末|前|内|左右)?")
SENTENCE_END = re.compile(r"(?<=[。；！？!?;\n])")
PROVINCES = ("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
             "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
             "广西", "西藏", "宁夏", "新疆", "香港", "澳门")
NATIONAL = ("国务院", "中共中央", "全国人民代表大会", "国家", "中华人民共和国")
_QUOTES = {"“": "”", "「": "」", "『": "』", '"': '"', "《": "》"}


@dataclass(frozen=True, slots=True)
class Target:
    """One quantitative target and the clause it sits in."""

    indicator: str              # what is measured: 技术合同成交额
    value: float                # the number with 万/亿 applied: 600000000000.0
    value_high: float | None    # the upper end of a range (1—2项), else None
    unit: str                   # the unit without its multiplier: 元, 家, %, 千瓦
    as_written: str             # 6000亿元
    comparator: str             # 突破 / 达到 / 不低于 / 新增 / 左右 … as written, or ""
    year: int | None            # the target year that governs it (到2026年), or None
    region: str                 # 陕西 / 山西 / 全国, from the issuer or title, or ""
    sentence: str
    clause_label: str           # 二、（一）3.
    clause_id: str
    doc_id: str
    title: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def value_text(self) -> str:
        """The figure as staff write it: 6000亿元, 65%, 1—2项."""
        return self.as_written

    @property
    def citation(self) -> str:
        return f"《{self.title}》{self.clause_label}"


def number(text: str) -> float | None:
    """An Arabic or Chinese numeral as a number (3.2 → 3.2, 三十 → 30, 百 → 100, 两 → 2); None when unreadable."""
    text = text.replace(",", "").translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if text in ("百", "千", "万", "亿"):
        return float({"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}[text])
    import cn2an  # only Chinese numerals need it

    try:
        return float(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError):
        return None


_MULTIPLIER = {"": 1, "千": 1_000, "万": 10_000, "亿": 100_000_000, "万亿": 1_000_000_000_000}


def _unit_multiplier(unit: str) -> tuple[str, float]:
    """万人次 → (人次, 1e4); units that carry their own multiplier keep it out of the unit."""
    for prefix, factor in (("万", 10_000), ("千", 1_000)):
        if unit.startswith(prefix) and unit not in ("千瓦", "千瓦时", "千米") and len(unit) > 1:
            return unit[len(prefix):], factor
    return unit, 1


def region_of(clauses: Sequence[Clause]) -> str:
    """The province a document is about: named in its issuer or title, else the one its text names most often;
    全国 for the State Council's and national bodies' documents."""
    if not clauses:
        return ""
    first = clauses[0]
    for text in (first.meta.get("issuer", ""), first.title):
        for name in PROVINCES:
            if name in text:
                return name
        if any(text.startswith(n) for n in NATIONAL):
            return "全国"
    counts = {name: sum(c.text.count(name) for c in clauses) for name in PROVINCES}
    best = max(counts, key=counts.get)
    return best if counts[best] else ""


def _doc_year(clause: Clause) -> int | None:
    """The year the document was written: its date, else the year its title starts from (2025年政府工作报告)."""
    found = re.match(r"(\d{4})", clause.meta.get("date", "") or "") or re.search(r"((?:19|20)\d{2})年", clause.title)
    return int(found.group(1)) if found else None


def _in_quotes(text: str, start: int) -> bool:
    """The position is inside “…” or 「…」 (a named programme: “131”行动, “百千”计划) or a 《title》."""
    for open_, close in _QUOTES.items():
        left = text.rfind(open_, 0, start)
        if left < 0:
            continue
        right = text.find(close, left + 1)
        if open_ == close:
            if text.count(open_, 0, start) % 2 == 1:
                return True
        elif right >= start:
            return True
    return False


def _sentences(text: str) -> Iterable[tuple[str, str]]:
    """(paragraph, sentence) pairs; a sentence ends at 。；！？ or a line break."""
    for paragraph in text.split("\n"):
        for sentence in SENTENCE_END.split(paragraph):
            if sentence.strip():
                yield paragraph, sentence


def _leading_year(sentence: str) -> int | None:
    """A year that opens the sentence (到2026年，…) and so governs what follows in its paragraph."""
    head = re.match(r"\s*(?:[（(]?[一二三四五六七八九十\d]+[、.．)）]\s*)?(?:[^，,。]{0,6})?"
                    r"(?:到|至|力争到|力争|争取到|争取)?((?:19|20)\d{2})年(?:底|末|前)?[，,]", sentence)
    return int(head.group(1)) if head else None


def _year_before(sentence: str, position: int) -> tuple[int | None, bool]:
    """The last year written before `position` in the sentence, and whether it is a target year (到2026年)
    rather than a date something happened (2023年已…)."""
    found = None
    for m in YEAR.finditer(sentence, 0, position):
        found = m
    if not found:
        return None, False
    return int(found.group("y")), bool(found.group("lead") or found.group("y1"))


def _comparator(before: str, after: str) -> str:
    """The word just before the number that says how it is meant, plus 以上/左右 just after."""
    word = next((c for c in COMPARATORS if before.endswith(c)), "")
    tail = next((a for a in AFTER if after.startswith(a)), "")
    return word + tail if word != tail else word


def _clean_indicator(text: str) -> str:
    text = re.sub(r"^(?:[（(]?[一二三四五六七八九十\d]+[、.．)）])", "", text)
    text = re.sub(r"(?:到|至|力争到|力争|争取到|争取)?(?:19|20)\d{2}年(?:底|末|前)?", "", text)
    text = re.sub(r"^(?:其中|力争|确保|争取|实现|全年|努力|预计|使|推动|带动|年均|每年|全省|全市|全国)+", "", text)
    text = re.sub(r"各$", "", text)
    for _ in range(3):
        word = next((c for c in COMPARATORS if text.endswith(c)), "")
        if not word:
            break
        text = text[: -len(word)]
    return text.strip(" ，,、；;：:“”\"'（）()的")


def _indicator(piece_before: str, piece_after: str) -> str:
    """What the number measures: the words before it (研发经费占比 超过65%), or, when an action stands there
    or nothing does (建设 30个 省级概念验证中心), the words after its unit."""
    before = _clean_indicator(re.split(r"[、]", piece_before)[-1] if piece_before.endswith(tuple(ACTIONS)) else piece_before)
    after = re.sub(r"^(?:" + "|".join(AFTER) + r")", "", piece_after)
    after = re.split(r"[，,。；;（(]|等|\d", after, maxsplit=1)[0]
    after = after.rsplit("的", 1)[-1].strip(" 、和及“”\"")   # 主业突出、关联度大的 创新型领军企业
    action = next((a for a in sorted(ACTIONS, key=len, reverse=True) if piece_before.endswith(a)), "")
    level = next((w for w in LEVELS if piece_before.endswith(w)), "")
    if after and (action or not level or len(before) < 2):
        return after
    return before or after


def _year_ok(value: float, unit: str, following: str) -> bool:
    """Reject figures that are dates, ages, durations and references, not quantities."""
    if not unit:
        return False
    if unit in ("条",) and re.match(r"[^，。；]{0,3}(?:规定|之|第|款)", following):
        return False
    return True


def targets_in(clause: Clause, *, governing_year: int | None = None, region: str = "") -> list[Target]:
    """The targets of one clause (a clause window is read on its own, with the year that governs its start)."""
    own_heading = clause.text.split("\n", 1)[0][:40]
    if any("回顾" in h for h in (*clause.headings, own_heading)):   # 一、2024年工作回顾: the past year's figures
        return []
    found: list[Target] = []
    doc_year = _doc_year(clause)
    paragraph_year: dict[str, int | None] = {}
    rows = [line for line in clause.text.split("\n") if parse_row(line)]
    for line in rows:
        found += _row_targets(clause, line, region)
    for paragraph, sentence in _sentences("\n".join(line for line in clause.text.split("\n") if line not in rows)):
        leading = _leading_year(sentence)
        if leading is not None:
            paragraph_year[paragraph] = leading
        shared_year = paragraph_year.get(paragraph, governing_year if paragraph == clause.text.split("\n")[0] else None)
        historical = bool(HISTORICAL.search(sentence))
        for m in QUANTITY.finditer(sentence):
            target = _target(clause, sentence, m, shared_year, historical, doc_year, region)
            if target is not None:
                found.append(target)
    return found


def _target(clause: Clause, sentence: str, m: re.Match, shared_year: int | None, historical: bool,
            doc_year: int | None, region: str) -> Target | None:
    lo_text, unit = m.group("lo"), m.group("unit") or ""
    start, end = m.start(), m.end()
    pct = bool(m.group("pct"))
    if pct:
        unit = "%"
    before, following = sentence[:start], sentence[end:]
    if not unit or unit in ("%", "％") and not pct and not re.match(_AR, lo_text):
        if not pct:
            return None
    if unit == "％":
        unit = "%"
    cn = not re.match(r"\d", lo_text)
    # small counts in words name things (三项改革, 两个市场, 一批), they do not set a figure
    if cn and not pct and len(lo_text) == 1 and lo_text not in "百千万":
        return None
    if before.endswith(("第", "〔", "[", "（第", "前", "近", "后", "每")) or following.startswith(("号", "〕", "]")):
        return None
    if re.match(r"[年月日号时分秒岁届期]", following) and not unit:
        return None
    if _in_quotes(sentence, start):
        return None
    piece_start = max(before.rfind(c) for c in "，,：:；;") + 1
    piece_before = before[piece_start:]
    piece_after = re.split(r"[，,；;。]", following, maxsplit=1)[0]
    if MEASURE.search(piece_before) or MEASURE.search(piece_after):
        return None
    if re.match(r"(?:及)?(?:以上|以下)的", following):   # 年营业收入500万元以上的企业: a condition
        return None
    if unit in ("元", "美元") and re.match(r"(?:及)?(?:以上|以下)[^，。；、\s]", following):   # 500万元以上技改项目: a size class
        return None
    if unit == "条" and re.match(r"[^，。；]{0,4}(?:政策|措施|意见|规定|举措)", following):   # 双创20条支持政策: a name
        return None
    year, is_target_year = _year_before(sentence, start)
    if year is not None and not is_target_year and doc_year is not None:
        # a year before the document's own is a record of the past; its own year or later is what it plans for
        if year < doc_year:
            return None
        is_target_year = True
    if historical:
        return None
    lo = number(lo_text)
    if lo is None:
        return None
    factor = _MULTIPLIER.get(m.group("mult1") or m.group("mult") or "", 1)
    unit, unit_factor = _unit_multiplier(unit)
    hi = number(m.group("hi")) if m.group("hi") else None
    if unit == "%" and factor != 1:   # 百分点 are never multiplied; a 万% is a misread
        return None
    if hi is not None and hi < lo:
        return None
    if not _year_ok(lo, unit, following):
        return None
    as_written = sentence[start:end] + next((a for a in AFTER if following.startswith(a)), "")
    return Target(
        indicator=_indicator(piece_before, piece_after),
        value=lo * factor * unit_factor,
        value_high=hi * factor * unit_factor if hi is not None else None,
        unit=unit, as_written=as_written, comparator=_comparator(piece_before, following),
        year=year if is_target_year else shared_year, region=region, sentence=sentence.strip(),
        clause_label=clause.label, clause_id=clause.clause_id, doc_id=clause.doc_id, title=clause.title)


# a target table's columns: the indicator's name, and the value for a year (2025年, 2025年目标, 目标值)
INDICATOR_HEADER = re.compile(r"指标|名称|项目|内容")
VALUE_HEADER = re.compile(r"(?P<y>(?:19|20)\d{2})年?(?:目标|预期|规划)?(?:值)?$|^目标值?$|^预期值?$|^规划值?$")
ROW_VALUE = re.compile(rf"^\s*(?P<cmp>[≥≤＞＜>]|不低于|不少于|超过|达到)?\s*(?P<lo>{_AR})(?P<mult>{_MULT})"
                       rf"(?:\s*{_RANGE}\s*(?P<hi>{_AR}))?\s*(?P<unit>{_UNIT})?\s*(?P<tail>以上|左右)?\s*$")
UNIT_IN_NAME = re.compile(rf"[（(](?P<mult>万|亿|千)?(?P<unit>{_UNIT}|人次|场次)[)）]")


def _row_targets(clause: Clause, line: str, region: str) -> list[Target]:
    """A row of a target table (「指标：博物馆数量；2025年：≥260；属性：预期性」): one record per year column with a
    figure; the unit from the column or from the name's brackets (覆盖率（%）)."""
    pairs = parse_row(line) or []
    names = [v for k, v in pairs if INDICATOR_HEADER.search(k)]
    if not names:
        return []
    name = names[-1].rsplit("，", 1)[-1].strip()
    found = []
    for key, cell in pairs:
        header = VALUE_HEADER.search(key.strip())
        value = ROW_VALUE.match(cell) if header else None
        if not value or (lo := number(value.group("lo"))) is None:
            continue
        unit, factor = value.group("unit") or "", _MULTIPLIER.get(value.group("mult") or "", 1)
        in_name = UNIT_IN_NAME.search(name)
        if not unit and in_name:
            unit, factor = in_name.group("unit"), _MULTIPLIER.get(in_name.group("mult") or "", 1)
        unit = "%" if unit == "％" else unit
        unit, unit_factor = _unit_multiplier(unit)
        hi = number(value.group("hi")) if value.group("hi") else None
        year = int(header.group("y")) if header.group("y") else None
        found.append(Target(
            indicator=UNIT_IN_NAME.sub("", name), value=lo * factor * unit_factor,
            value_high=hi * factor * unit_factor if hi is not None else None, unit=unit, as_written=cell.strip(),
            comparator=value.group("cmp") or value.group("tail") or "", year=year, region=region, sentence=line,
            clause_label=clause.label, clause_id=clause.clause_id, doc_id=clause.doc_id, title=clause.title))
    return found


def extract(clauses: Iterable[Clause]) -> list[Target]:
    """Every target of the clauses, in document order; a year that opens a window carries to its continuation."""
    found: list[Target] = []
    last_year: dict[str, int | None] = {}
    documents: dict[str, list[Clause]] = {}
    for clause in clauses:
        documents.setdefault(clause.doc_id, []).append(clause)
    regions = {doc_id: region_of(doc_clauses) for doc_id, doc_clauses in documents.items()}
    for clause in (c for doc_clauses in documents.values() for c in doc_clauses):
        base = clause.clause_id.split("~")[0]
        carried = last_year.get(base) if "~" in clause.clause_id else None
        records = targets_in(clause, governing_year=carried, region=regions[clause.doc_id])
        found.extend(records)
        last = next((_leading_year(s) for _, s in reversed(list(_sentences(clause.text))) if _leading_year(s)), None)
        last_year[base] = last or carried
    return found


def select(targets: Sequence[Target], *, doc: str | None = None, year: int | None = None,
           region: str | None = None) -> list[Target]:
    """Targets of documents whose title or id contains `doc`, for `year`, in `region`."""
    return [t for t in targets
            if (not doc or doc in t.title or doc in t.doc_id) and (year is None or t.year == year)
            and (not region or region in t.region)]


COLUMNS = ("title", "clause_label", "indicator", "comparator", "as_written", "value", "value_high", "unit", "year",
           "region", "sentence", "doc_id", "clause_id")
HEADERS = {"title": "文件", "clause_label": "条款", "indicator": "指标", "comparator": "表述", "as_written": "目标值",
           "value": "数值", "value_high": "数值上限", "unit": "单位", "year": "目标年份", "region": "地区",
           "sentence": "原文", "doc_id": "文件编号", "clause_id": "条款编号"}


def rows(targets: Sequence[Target]) -> list[list[Any]]:
    """The table as rows of cells, headers first (Chinese column names, as staff paste it)."""
    table = [[HEADERS[c] for c in COLUMNS]]
    for t in targets:
        d = t.to_dict()
        table.append([_cell(d[c]) for c in COLUMNS])
    return table


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return "" if value is None else value


def to_csv(targets: Sequence[Target]) -> str:
    """UTF-8 CSV text (with a BOM when written by write_table, so Excel reads the Chinese)."""
    out = io.StringIO()
    csv.writer(out).writerows(rows(targets))
    return out.getvalue()


def write_table(targets: Sequence[Target], path: Path) -> Path:
    """Write the table to `path`: .xlsx (openpyxl) or .csv, by its suffix."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        from openpyxl.utils import get_column_letter

        book = Workbook()
        sheet = book.active
        sheet.title = "指标"
        for row in rows(targets):
            sheet.append(row)
        sheet.freeze_panes = "A2"
        widths = {"文件": 36, "指标": 24, "原文": 60}
        for i, name in enumerate(rows([])[0], start=1):
            sheet.column_dimensions[get_column_letter(i)].width = widths.get(name, 12)
        book.save(path)
    elif path.suffix.lower() == ".csv":
        path.write_text(to_csv(targets), encoding="utf-8-sig")
    else:
        raise ValueError(f"{path}: write .xlsx or .csv")
    return path


def field_names() -> list[str]:
    return [f.name for f in fields(Target)]


def by_document(targets: Sequence[Target]) -> Mapping[str, list[Target]]:
    grouped: dict[str, list[Target]] = {}
    for t in targets:
        grouped.setdefault(t.doc_id, []).append(t)
    return grouped
