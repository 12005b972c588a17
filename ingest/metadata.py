"""Document metadata read from the text itself: 文号, 发文机关, 成文日期, 施行日期, 有效期 and what it repeals,
each with the sentence it came from (`<field>_from`). A `.meta.json` sidecar or a collection's own fields win."""

from __future__ import annotations

import re
from datetime import date

from rag.citations import DIGITS, cn_value

_NUM = r"[\d〇零一二两三四五六七八九十]"
DATE = re.compile(rf"((?:19|20)\d{{2}}|[一二][〇零一二三四五六七八九]{{3}})\s*年\s*({_NUM}{{1,3}})\s*月\s*({_NUM}{{1,3}})\s*日")
# 国办发〔2020〕6号, 晋政发[2019]12号, 国发（2019）5 号: any bracket pair, spaces allowed
DOC_NUMBER = re.compile(r"([\u4e00-\u9fff]{1,12}?)\s*[〔\[（(［【]\s*((?:19|20)\d{2})\s*[〕\]）)］】]\s*(\d{1,4})\s*号")
ISSUER_SUFFIX = re.compile(r"(?:人民政府|办公厅|办公室|委员会|政府|部|委|厅|局|院|署|行|会|中心|小组|指挥部)$")
EFFECTIVE = re.compile(r"自\s*([^。；\n起]{2,24}?)\s*起\s*(?:施行|实施|执行|生效)")
VALID_UNTIL = re.compile(rf"有效期(?:至|到)\s*{DATE.pattern}")
VALID_YEARS = re.compile(rf"有效期(?:为)?\s*({_NUM}{{1,3}})\s*年")
REPEALS = re.compile(r"[^。；\n]*(?:同时废止|予以废止|不再执行|停止执行|同时失效|废止)[^。；\n]*")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
TITLE_REF = re.compile(r"《([^《》]{4,80})》")


def cn_int(text: str) -> int | None:
    """12, 十二, 二十一, 〇六 → the number; None when it is none."""
    if text.isdigit():
        return int(text)
    if all(ch in DIGITS for ch in text):  # 二〇二〇: digit by digit
        return int("".join(str(DIGITS[ch]) for ch in text))
    value = cn_value(text)  # 十二, 二十一
    return int(value) if value and value.isdigit() else None


def parse_date(match: re.Match[str]) -> str | None:
    """The ISO date of a DATE match (二〇一九年三月十日 → 2019-03-10), None when it is no real date."""
    year, month, day = (cn_int(g) for g in match.groups()[:3])
    try:
        return date(year, month, day).isoformat() if year and month and day else None
    except ValueError:
        return None


def as_written(match: re.Match[str], found: dict[str, str]) -> str:
    """The ISO date of a match; a date that does not exist (2月30日) is kept as written, with a warning."""
    iso = parse_date(match)
    if iso is None:
        found.setdefault("warnings", f"{match.group(0)}：日期不存在，按原文保留")
    return iso or match.group(0)


def add_years(iso: str, years: int) -> str:
    start = date.fromisoformat(iso)
    try:
        return start.replace(year=start.year + years).isoformat()
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28).isoformat()


def sentence_at(text: str, start: int, end: int) -> str:
    """The sentence (or line) of `text` around [start, end)."""
    left = max(text.rfind(sep, 0, start) for sep in "。；\n") + 1
    rights = [i for i in (text.find(sep, end) for sep in "。；\n") if i >= 0]
    return text[left : min(rights) + 1 if rights else len(text)].strip()


def extract(title: str, text: str) -> dict[str, str]:
    """Every field found, with `<field>_from`, the sentence it was read from."""
    found: dict[str, str] = {}

    def put(field: str, value: str | None, source: str) -> None:
        if value and field not in found:
            found[field], found[f"{field}_from"] = value, source.strip()

    head = text[:2000]
    for line in head.splitlines():  # the 文号 line of the letterhead, standing alone
        m = DOC_NUMBER.fullmatch(line.strip())
        if m:
            put("doc_number", f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号", line)
            break
    m = DOC_NUMBER.search(title)
    if m:
        put("doc_number", f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号", title)
    put("issuer", _issuer(title, text), title)
    signed = _signing_date(text)
    if signed:
        put("date", signed[0], signed[1])
    m = EFFECTIVE.search(text)
    if m:
        day = DATE.search(m.group(1))
        when = as_written(day, found) if day else found.get("date") if re.search(r"印发|发布|公布|之日", m.group(1)) else None
        put("effective", when, sentence_at(text, m.start(), m.end()))
    m = VALID_UNTIL.search(text)
    if m:
        put("expires", as_written(DATE.search(m.group(0)), found), sentence_at(text, m.start(), m.end()))
    m = VALID_YEARS.search(text)
    start = found.get("effective") or found.get("date")
    if m and start and ISO.fullmatch(start) and cn_int(m.group(1)):
        put("expires", add_years(start, cn_int(m.group(1))), sentence_at(text, m.start(), m.end()))
    repealed = []
    for m in REPEALS.finditer(text):
        sentence = m.group(0)
        refs = TITLE_REF.findall(sentence) + [f"{d.group(1)}〔{d.group(2)}〕{d.group(3)}号" for d in DOC_NUMBER.finditer(sentence)]
        if refs:
            repealed.append((refs, sentence))
    if repealed:
        put("repeals", "；".join(dict.fromkeys(ref for refs, _ in repealed for ref in refs)),
            "；".join(s.strip() for _, s in repealed))
    return found


def merged(found: dict[str, str], *given: dict[str, str]) -> dict[str, str]:
    """What was read from the text, overridden field by field by what a collection or sidecar gives (whose
    fields then have no sentence from the text)."""
    out = dict(found)
    for values in given:
        for key, value in values.items():
            out.pop(f"{key}_from", None)
            out[key] = value
    return out


def _issuer(title: str, text: str) -> str | None:
    """「XX关于…的通知」 names its issuers before 关于; else the 落款 line above the signing date."""
    m = re.match(r"^(.{2,60}?)关于", title)
    if m and ISSUER_SUFFIX.search(m.group(1)):
        return m.group(1)
    lines = [line.strip() for line in text[-600:].splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if DATE.fullmatch(line) and i and len(lines[i - 1]) <= 40 and ISSUER_SUFFIX.search(lines[i - 1]):
            return lines[i - 1]
    return None


def _signing_date(text: str) -> tuple[str, str] | None:
    """The date standing alone on a line at the end (成文日期), or under the title at the top."""
    for part in (text[-600:], text[:300]):
        for line in reversed(part.splitlines()):
            m = DATE.fullmatch(line.strip().strip("（）()"))
            if m and parse_date(m):
                return parse_date(m), line
    return None
