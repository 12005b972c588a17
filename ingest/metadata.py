"""Document metadata read from the text itself: 文号, 发文机关, 成文日期, 施行日期, 有效期 and what it repeals,
each with the sentence it came from (`<field>_from`). A `.meta.json` sidecar or a collection's own fields win."""

from __future__ import annotations

import re
from datetime import date

from rag.citations import DIGITS, cn_value

_NUM = r"[\d〇○零一二两三四五六七八九十]"
DATE = re.compile(rf"((?:19|20)\d{{2}}|[一二][〇○零一二三四五六七八九]{{3}})\s*年\s*({_NUM}{{1,3}})\s*月\s*({_NUM}{{1,3}})\s*日")
# 国办发〔2020〕6号, 晋政发[2019]12号, 国发（2019）5 号: any bracket pair, spaces allowed
DOC_NUMBER = re.compile(r"([\u4e00-\u9fff]{1,12}?)\s*[〔\[（(［【]\s*((?:19|20)\d{2})\s*[〕\]）)］】]\s*(\d{1,4})\s*号")
ISSUER_SUFFIX = re.compile(r"(?:人民政府|办公厅|办公室|委员会|政府|部|委|厅|局|院|署|行|会|中心|小组|指挥部)$")
EFFECTIVE = re.compile(r"自\s*([^。；\n起]{2,24}?)\s*起\s*(?:施行|实施|执行|生效)")
VALID_UNTIL = re.compile(rf"(?:有效期(?:至|到)|截止(?:时间|日期)为)\s*{DATE.pattern}")
VALID_YEAR_END = re.compile(r"有效期(?:至|到)\s*((?:19|20)\d{2})\s*年\s*(?:底|末)")  # 有效期至2020年底
# 国务院令第431号, 中华人民共和国国务院令\n第707号, 国家工商行政管理总局令第73号: an order's number names its issuer
ORDER_NUMBER = re.compile(r"(?:中华人民共和国)?((?:(?!日)[\u4e00-\u9fff、]){2,20}?)令\s*第\s*(\d{1,4})\s*号")
# A law's history line: "2005年1月10日 中华人民共和国国务院令第431号公布", "2020年11月27日 上海市第十五届人民代表大会
# 常务委员会第二十七次会议通过"; the organ is what stands before 第…次会议, without its 第…届 and a court's 审判委员会.
ADOPTED = re.compile(r"([\u4e00-\u9fff]{2,30}?)(?:第[\d一二三四五六七八九十]{1,4}届)?([\u4e00-\u9fff]{0,16}?)"
                     r"第[\d一二三四五六七八九十百]{1,6}次(?:全体|常务)?会议")
# The 落款 of a text whose lines were run together: after a sentence, the organs then the date (或 总理 and a name)
_ORGAN = r"[\u4e00-\u9fff]{2,40}?(?:人民政府|办公厅|办公室|委员会|政府|总局|部|委|厅|局|院|署|行|会|中心|小组|指挥部)"
SIGNATURE = re.compile(rf"(?:^|[。：:）)])\s*({_ORGAN}|总理\s*[\u4e00-\u9fff]{{2,3}}?)?\s*" + DATE.pattern)
# What an 有效期 sentence must be about: the document itself, not a licence it mentions
ABOUT_ITSELF = re.compile(r"本(?:办法|通知|规定|意见|条例|决定|方案|细则|措施|政策|公告|通告|预案)|施行|实施")
# A 文号 prefix never holds the end of a title: 的通知遂府办发〔2020〕2号 is 遂府办发〔2020〕2号
TITLE_END = re.compile(r".*(?:文件|通知|意见|决定|批复|复函|通告|公告|办法|规定|措施|方案|细则|报告|条例)")
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
    year, month, day = (cn_int(g.replace("○", "〇")) for g in match.groups()[:3])
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
            put("doc_number", _number(m), line)
            break
    m = DOC_NUMBER.search(title)
    if m:
        put("doc_number", _number(m), title)
    _read_history(text[:400], put)
    m = ORDER_NUMBER.search(text[:300])
    if m:
        put("doc_number", f"{m.group(1)}令第{m.group(2)}号", sentence_at(text, m.start(), m.end()))
        put("issuer", m.group(1), sentence_at(text, m.start(), m.end()))
    m = _letterhead_number(text[:300])
    if m:
        put("doc_number", _number(m), sentence_at(text, m.start(), m.end()))
    put("issuer", _issuer(title, text), title)
    signed = _signing_date(text)
    if signed:
        put("date", signed[0], signed[1])
    signature = _run_together_signature(text)
    if signature:
        if signature[0]:
            put("issuer", "、".join(signature[0]), signature[2])
        put("date", signature[1], signature[2])
    m = EFFECTIVE.search(text)
    if m:
        day = DATE.search(m.group(1))
        when = as_written(day, found) if day else found.get("date") if re.search(r"印发|发布|公布|之日", m.group(1)) else None
        put("effective", when, sentence_at(text, m.start(), m.end()))
    m = next((m for m in VALID_UNTIL.finditer(text) if ABOUT_ITSELF.search(sentence_at(text, m.start(), m.end()))), None)
    if m:
        put("expires", as_written(DATE.search(m.group(0)), found), sentence_at(text, m.start(), m.end()))
    m = next((m for m in VALID_YEAR_END.finditer(text) if ABOUT_ITSELF.search(sentence_at(text, m.start(), m.end()))), None)
    if m:
        put("expires", f"{m.group(1)}-12-31", sentence_at(text, m.start(), m.end()))
    m = next((m for m in VALID_YEARS.finditer(text) if ABOUT_ITSELF.search(sentence_at(text, m.start(), m.end()))), None)
    start = found.get("effective") or found.get("date")
    if m and start and ISO.fullmatch(start) and cn_int(m.group(1)):
        put("expires", add_years(start, cn_int(m.group(1))), sentence_at(text, m.start(), m.end()))
    repealed = []
    for m in REPEALS.finditer(text):
        sentence = m.group(0)
        refs = TITLE_REF.findall(sentence) + [_number(d) for d in DOC_NUMBER.finditer(sentence)]
        refs = [r for r in refs if r != found.get("doc_number")]  # a document does not repeal itself
        if refs:
            repealed.append((refs, sentence))
    if repealed:
        put("repeals", "；".join(dict.fromkeys(ref for refs, _ in repealed for ref in refs)),
            "；".join(s.strip() for _, s in repealed))
    return found


def _number(m: re.Match[str]) -> str:
    """国办发〔2019〕6号 from a DOC_NUMBER match, any title end run into its prefix left out."""
    prefix = TITLE_END.sub("", m.group(1)) or m.group(1)
    return f"{prefix}〔{m.group(2)}〕{m.group(3)}号"


def _letterhead_number(head: str) -> re.Match[str] | None:
    """In a text whose lines were run together, the first 文号 of the opening that is not a citation (one in
    brackets, or after a 《title》)."""
    for m in DOC_NUMBER.finditer(head):
        before = head[: m.start()]
        if before.count("（") + before.count("(") <= before.count("）") + before.count(")") and not before.endswith("》"):
            return m
    return None


def _read_history(head: str, put) -> None:
    """A law's history lines at the top: the 公布/发布 line gives the date, order number and issuer; else the
    first 通过 line gives the date and the organs that adopted it."""
    lines = [line.strip() for line in head.splitlines() if DATE.match(line.strip())]
    for line in lines:
        if re.search(r"(?:公布|发布)$", line):
            put("date", parse_date(DATE.match(line)), line)
    for line in lines:
        if line.endswith("通过"):
            organs = [re.sub(r"第[\d一二三四五六七八九十]{1,4}届|(?:审判|检察)委员会$", "", "".join(m.groups()))
                      for m in ADOPTED.finditer(DATE.sub(" ", line))]
            put("issuer", "、".join(dict.fromkeys(o for o in organs if o)), line)
            put("date", parse_date(DATE.match(line)), line)
            break


def _run_together_signature(text: str) -> tuple[list[str], str, str] | None:
    """The 落款 of a text whose lines were run together: a date closing the text (after the organs that sign,
    if any), or organs and a date under the cover letter of a 印发/转发 notice at its start (the issuers, the
    date, the words it was read from)."""
    tail = text[-300:]
    for m in SIGNATURE.finditer(tail):
        day = parse_date(DATE.search(m.group(0)))
        if day and len(tail) - m.end() <= 20:
            organ = m.group(1) or ""
            return ([] if organ.startswith("总理") else [organ] if organ else []), day, m.group(0).strip("。：:）) ")
    head = text[:600]
    for m in SIGNATURE.finditer(head):
        day = parse_date(DATE.search(m.group(0)))
        if day and m.group(1) and re.search("印发|转发|公布", head[: m.start()]):
            organ = m.group(1)
            return ([] if organ.startswith("总理") else [organ]), day, m.group(0).strip("。：:）) ")
    return None


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
