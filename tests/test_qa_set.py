"""Validator for the evaluation question set eval/qa.jsonl.

Every item is checked against the two seed documents in corpus/: its evidence strings must
occur exactly once in the corpus, inside the clause the item cites; its must_contain strings
must occur in that clause and in the reference answer.  Matching normalises both sides the
same way (all whitespace removed, punctuation width folded), so the raw PDF-extraction text
(`(一)`, `深入学 习`, `,` `.`) matches the cleaned, full-width form (`（一）`, `，` `。`).

Clause labels are computed here by a small, self-contained marker parser (outermost marker
first: 一、 > （一） > 1. > （1） > 一是), independent of the product's parser.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA_PATH = ROOT / "eval" / "qa.jsonl"
CORPUS_DIR = ROOT / "corpus"
DOC_FILES = {
    "qcy": "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt",
    "sx": "关于加快构建山西省创新生态的指导意见.txt",
}

FIELDS = ("id", "question", "answer", "must_contain", "evidence", "doc", "type", "clause", "split")
SPLITS = ("dev", "test")  # tune on dev, report test (eval/harness.py)
OPTIONAL = "also"  # other clauses stating the same facts (eval/metrics.py)
TYPES = ("fact", "list", "explain", "compare", "unanswerable")
DOCS = ("qcy", "sx", "both", "none")
ID_PREFIX = {"qcy": "qcy", "sx": "sx", "both": "cmp", "none": "neg"}

MIN_ITEMS = 80
MIN_PER_TYPE = {"fact": 40, "list": 10, "explain": 10, "compare": 8, "unanswerable": 12}
MIN_PER_DOC = {"qcy": 30, "sx": 25, "both": 8, "none": 12}
EVIDENCE_LEN = (8, 40)
MUST_LEN = (2, 12)
MAX_COPIED = 15          # a question may not share this many consecutive characters with the corpus
NUMBERED_COVERAGE = 0.75  # share of each document's numbered items (1. 2. …) cited at least once

# ---------------------------------------------------------------------------- normalisation

_WS = re.compile(r"\s+")
_EXTRA_FOLD = str.maketrans({"。": ".", "｡": ".", "〔": "[", "〕": "]"})


def norm(text: str) -> str:
    """Matching form: no whitespace, NFKC (full-width → ASCII), 。 folded to '.'."""
    return unicodedata.normalize("NFKC", _WS.sub("", text)).translate(_EXTRA_FOLD)


# ---------------------------------------------------------------------------- clause labels

_CN = "一二三四五六七八九十百"
# Patterns run on normalised text (ASCII brackets and dots).
_LINE_MARKERS = (
    (1, re.compile(rf"^[{_CN}]+、")),
    (2, re.compile(rf"^\([{_CN}]+\)")),
    (3, re.compile(r"^\d{1,3}\.(?!\d)")),
    (4, re.compile(r"^\(\d{1,3}\)")),
    (5, re.compile(r"^[一二三四五六七八九十]是")),
)
# 一是/二是… also start a clause mid-line right after a sentence end (山西 二、（二）7.二是).
_INLINE_SHI = re.compile(r"(?<=[.;!?])[一二三四五六七八九十]是(?=[\u4e00-\u9fff])")

# Well-formed labels as people cite them: full-width brackets, ASCII dot after digits.
_MARK = (
    rf"(?P<l1>[{_CN}]+、)|(?P<l2>（[{_CN}]+）)|(?P<l3>\d{{1,3}}\.)|(?P<l4>（\d{{1,3}}）)"
    rf"|(?P<l5>[一二三四五六七八九十]是)|(?P<l0>第[{_CN}零〇\d]+[章节条款])"
)
_MARK_RE = re.compile(_MARK)
_LEVEL = {"l0": 0, "l1": 1, "l2": 2, "l3": 3, "l4": 4, "l5": 5}


def label_ok(label: str) -> bool:
    """True if `label` is a sequence of clause markers, outermost first (or "" = preamble)."""
    if label == "":
        return True
    pos, last = 0, -1
    while pos < len(label):
        m = _MARK_RE.match(label, pos)
        if not m:
            return False
        level = _LEVEL[m.lastgroup]
        if level <= last and not (level == 0 and last == 0):
            return False
        last, pos = level, m.end()
    return True


def _display(marker: str) -> str:
    """Normalised marker → the form used in labels: (一) → （一）."""
    return marker.replace("(", "（").replace(")", "）")


@dataclass(frozen=True)
class Segment:
    doc: str
    label: str
    start: int   # span in Doc.text (normalised)
    end: int


@dataclass(frozen=True)
class Doc:
    key: str
    text: str                    # normalised lines joined with "\n"
    segments: tuple[Segment, ...]

    def segment_at(self, pos: int) -> Segment:
        for seg in self.segments:
            if seg.start <= pos < seg.end:
                return seg
        return self.segments[-1]

    def segment_text(self, seg: Segment) -> str:
        return self.text[seg.start:seg.end]


def parse_doc(key: str, raw: str) -> Doc:
    """Split a document into clause segments with their labels (on normalised text)."""
    lines = [norm(line) for line in raw.splitlines()]
    text = "\n".join(lines)
    starts: list[tuple[int, str]] = [(0, "")]
    stack: list[tuple[int, str]] = []
    offset = 0
    for line in lines:
        cuts: list[tuple[int, int, str]] = []      # (pos in line, level, marker)
        for level, rx in _LINE_MARKERS:
            m = rx.match(line)
            if m:
                cuts.append((0, level, m.group()))
                break
        for m in _INLINE_SHI.finditer(line):
            if m.start() > 0:
                cuts.append((m.start(), 5, m.group()))
        for pos, level, marker in cuts:
            stack = [s for s in stack if s[0] < level] + [(level, _display(marker))]
            starts.append((offset + pos, "".join(s[1] for s in stack)))
        offset += len(line) + 1
    segments = []
    for i, (start, label) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if end > start or i == 0:
            segments.append(Segment(key, label, start, end))
    return Doc(key, text, tuple(segments))


@lru_cache(maxsize=1)
def load_corpus() -> dict[str, Doc]:
    return {k: parse_doc(k, (CORPUS_DIR / f).read_text(encoding="utf-8")) for k, f in DOC_FILES.items()}


def find_all(haystack: str, needle: str) -> list[int]:
    out, i = [], haystack.find(needle)
    while i != -1:
        out.append(i)
        i = haystack.find(needle, i + 1)
    return out


# ---------------------------------------------------------------------------- item check

def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def check_item(item: object, corpus: dict[str, Doc] | None = None) -> list[str]:
    """Every problem with one QA item (empty list = valid)."""
    corpus = corpus or load_corpus()
    if not isinstance(item, dict):
        return ["item is not a JSON object"]
    errs: list[str] = []
    keys = tuple(item)
    if set(keys) - {OPTIONAL} != set(FIELDS):
        return [f"fields must be exactly {FIELDS} (and optionally {OPTIONAL!r}), got {keys}"]
    iid, q, a = item["id"], item["question"], item["answer"]
    must, ev, doc, typ, clause = (item[k] for k in ("must_contain", "evidence", "doc", "type", "clause"))
    for k in ("id", "question", "answer", "doc", "type", "clause"):
        if not isinstance(item[k], str):
            errs.append(f"{k} must be a string")
    if item["split"] not in SPLITS:
        errs.append(f"split {item['split']!r} not in {SPLITS}")
    if not _is_str_list(must) or not _is_str_list(ev):
        errs.append("must_contain and evidence must be lists of strings")
    if errs:
        return errs

    if typ not in TYPES:
        errs.append(f"type {typ!r} not in {TYPES}")
    if doc not in DOCS:
        errs.append(f"doc {doc!r} not in {DOCS}")
    if errs:
        return errs
    m = re.fullmatch(r"(qcy|sx|cmp|neg)-\d{3}", iid)
    if not m or m.group(1) != ID_PREFIX[doc]:
        errs.append(f"id {iid!r} must look like {ID_PREFIX[doc]}-001 for doc {doc!r}")
    if (typ == "compare") != (doc == "both"):
        errs.append("type 'compare' goes with doc 'both' and only with it")
    if (typ == "unanswerable") != (doc == "none"):
        errs.append("type 'unanswerable' goes with doc 'none' and only with it")
    if not re.search(r"[\u4e00-\u9fff]", q) or not q.rstrip().endswith(("？", "?")):
        errs.append("question must be Chinese and end with ？")
    if not a.strip() or not re.search(r"[\u4e00-\u9fff]", a):
        errs.append("answer must be non-empty Chinese")
    nq = norm(q)
    all_text = "\n".join(d.text for d in corpus.values())
    for i in range(len(nq) - MAX_COPIED + 1):
        if nq[i:i + MAX_COPIED] in all_text:
            errs.append(f"question copies the source verbatim: {nq[i:i + MAX_COPIED]!r}")
            break

    if doc == "none":
        if must or ev or clause != "" or OPTIONAL in item:
            errs.append(f"unanswerable items need empty must_contain, evidence and clause, and no {OPTIONAL}")
        return errs

    # ---- answerable
    if not 1 <= len(must) <= 3:
        errs.append("must_contain needs 1-3 strings")
    if not 1 <= len(ev) <= 3:
        errs.append("evidence needs 1-3 strings")
    if len(set(map(norm, ev))) != len(ev) or len(set(map(norm, must))) != len(must):
        errs.append("duplicate evidence or must_contain string")
    docs = ("qcy", "sx") if doc == "both" else (doc,)

    cited: list[tuple[str, str]] = []      # (doc, label) per evidence, in order
    segs: list[tuple[Doc, Segment]] = []
    for e in ev:
        ne = norm(e)
        if not EVIDENCE_LEN[0] <= len(ne) <= EVIDENCE_LEN[1]:
            errs.append(f"evidence {e!r} is {len(ne)} chars, want {EVIDENCE_LEN[0]}-{EVIDENCE_LEN[1]}")
        hits = [(k, p) for k, d in corpus.items() for p in find_all(d.text, ne)]
        if not hits:
            errs.append(f"evidence {e!r} not found in the corpus")
            continue
        if len(hits) > 1:
            errs.append(f"evidence {e!r} is ambiguous: {len(hits)} occurrences in the corpus")
            continue
        k, pos = hits[0]
        if k not in docs:
            errs.append(f"evidence {e!r} is in doc {k!r}, item says {doc!r}")
            continue
        d = corpus[k]
        seg = d.segment_at(pos)
        if pos + len(ne) > seg.end:
            errs.append(f"evidence {e!r} straddles two clauses")
        cited.append((k, seg.label))
        segs.append((d, seg))

    # ---- clause label(s)
    parts = clause.split(" | ")
    if doc == "both":
        if len(parts) < 2 or not all(p and label_ok(p) for p in parts):
            errs.append(f"compare clause {clause!r} must be 'label | label' of well-formed labels")
    elif len(parts) != 1 or not label_ok(clause):
        errs.append(f"clause {clause!r} is not a well-formed label")
    if len(cited) == len(ev) and not errs:
        distinct = list(dict.fromkeys(cited))
        want = [lab for _, lab in distinct]
        if parts != want:
            errs.append(f"clause {clause!r} does not match the evidence's clauses {' | '.join(want)!r}")
        if doc == "both" and {k for k, _ in cited} != {"qcy", "sx"}:
            errs.append("compare evidence must come from both documents")

    # ---- must_contain
    na = norm(a)
    seg_text = "\n".join(d.segment_text(s) for d, s in segs)
    must_docs = set()
    for s in must:
        ns = norm(s)
        if not MUST_LEN[0] <= len(ns) <= MUST_LEN[1]:
            errs.append(f"must_contain {s!r} is {len(ns)} chars, want {MUST_LEN[0]}-{MUST_LEN[1]}")
        in_docs = [k for k in docs if ns in corpus[k].text]
        if not in_docs:
            errs.append(f"must_contain {s!r} not found in doc {doc!r}")
        must_docs.update(k for d, sg in segs for k in [d.key] if ns in d.segment_text(sg))
        if segs and ns not in seg_text:
            errs.append(f"must_contain {s!r} is not in the cited clause(s)")
        if ns not in na:
            errs.append(f"must_contain {s!r} is missing from the reference answer")
    if doc == "both" and must_docs != {"qcy", "sx"}:
        errs.append("compare must_contain must cover both documents")
    if OPTIONAL in item:
        errs += check_alternatives(item, corpus, dict(zip([lab for _, lab in cited], segs, strict=False)))
    return errs


def check_alternatives(item: dict, corpus: dict[str, Doc], primary: dict[str, tuple[Doc, Segment]]) -> list[str]:
    """`also`: other clauses stating the same facts. Each names the label it stands in for, its evidence
    lies in exactly one place (in the clause it names, in the same document), and its clause holds every
    must_contain string that the replaced clause holds: citing it supports the answer just as well."""
    alternatives = item[OPTIONAL]
    if item["doc"] == "none" or not isinstance(alternatives, list) or not alternatives:
        return [f"{OPTIONAL} must be a non-empty list, on answerable items only"]
    errs: list[str] = []
    for alt in alternatives:
        if not isinstance(alt, dict) or set(alt) != {"clause", "evidence", "instead_of"} \
                or not _is_str_list(alt["evidence"]) or not 1 <= len(alt["evidence"]) <= 3 \
                or not all(EVIDENCE_LEN[0] <= len(norm(e)) <= EVIDENCE_LEN[1] for e in alt["evidence"]):
            errs.append(f"{OPTIONAL} entries are {{clause, evidence: [1-3 strings], instead_of}}: {alt!r}")
            continue
        if alt["instead_of"] not in primary:
            errs.append(f"{OPTIONAL}: instead_of {alt['instead_of']!r} is not one of the item's clauses")
            continue
        doc, replaced = primary[alt["instead_of"]]
        for e in alt["evidence"]:
            ne = norm(e)
            places = [(k, p) for k, d in corpus.items() for p in find_all(d.text, ne)]
            if len(places) != 1 or places[0][0] != doc.key:
                errs.append(f"{OPTIONAL}: evidence {e!r} must occur once, in {doc.key}")
                continue
            seg = doc.segment_at(places[0][1])
            if seg.label != alt["clause"] or seg.label == replaced.label:
                errs.append(f"{OPTIONAL}: evidence {e!r} is in {seg.label!r}, not in a clause other than "
                            f"{replaced.label!r} labelled {alt['clause']!r}")
                continue
            for m in item["must_contain"]:
                if norm(m) in doc.segment_text(replaced) and norm(m) not in doc.segment_text(seg):
                    errs.append(f"{OPTIONAL}: {alt['clause']!r} lacks must_contain {m!r}, so it cannot stand in")
    return errs


# ---------------------------------------------------------------------------- loading

def load_lines(path: Path = QA_PATH) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@lru_cache(maxsize=1)
def load_items() -> tuple[dict, ...]:
    return tuple(json.loads(line) for line in load_lines() if line.strip())


# ---------------------------------------------------------------------------- tests: corpus & parser

def test_normalisation_folds_width_and_spaces():
    assert norm("(一)深入学 习贯彻,推动.") == norm("（一）深入学习贯彻，推动。")
    assert norm("3.2万家") == "3.2万家"
    assert norm("“四为四高两同步”") == "“四为四高两同步”"


@pytest.mark.parametrize(
    "doc, snippet, label",
    [
        ("qcy", "秦创原创新驱动平台建设三年行动计划(2024—2026年)", ""),
        ("qcy", "全省技术合同成交额突破6000亿元", "一、"),
        ("qcy", "3.畅通成果转化链条", "二、（一）3."),
        ("qcy", "打造秦创原产业创新聚集区", "二、（三）7."),
        ("qcy", "大力发展科技金融", "二、（五）16."),
        ("qcy", "加强组织领导", "三、17."),
        ("sx", "为深入贯彻省委、省政府", ""),
        ("sx", "一年架梁立柱", "一、（二）"),
        ("sx", "五年基本成型", "一、（二）"),
        ("sx", "坚持全面构建", "二、（一）1."),
        ("sx", "一是实施关键核心技术和共性技术突破工程", "二、（二）1.一是"),
        ("sx", "三是实施创新型领军企业", "二、（二）1.三是"),
        ("sx", "着力开展以“三方帮扶", "二、（二）2."),
        ("sx", "二是实施“131”科技成果转化行动", "二、（二）3.二是"),
        ("sx", "六是加强品牌与市场协同发展", "二、（二）4.六是"),
        ("sx", "一是建立创新生态标准化体系", "二、（二）7.一是"),
        ("sx", "二是建立创新生态信息化体系", "二、（二）7.二是"),   # mid-line in the raw text
    ],
)
def test_parser_labels(doc, snippet, label):
    d = load_corpus()[doc]
    pos = d.text.find(norm(snippet))
    assert pos >= 0, snippet
    assert d.segment_at(pos).label == label


@pytest.mark.parametrize(
    "label, ok",
    [
        ("", True), ("一、", True), ("二、（一）3.", True), ("二、（二）1.一是", True), ("三、17.", True),
        ("第二章第十条", True), ("（3）", True),
        ("二、(一)3.", False), ("二、（一）3", False), ("（一）二、", False), ("二、（一）3.abc", False),
        ("二、 （一）", False),
    ],
)
def test_label_well_formedness(label, ok):
    assert label_ok(label) is ok


# ---------------------------------------------------------------------------- tests: the set

def assert_json_lines(lines: list[str], name: str) -> None:
    """Every line of a QA file is one JSON object, written with ensure_ascii=False."""
    assert lines, f"{name} is empty"
    for n, line in enumerate(lines, 1):
        assert line.strip(), f"line {n} is blank"
        assert "\\u" not in line, f"line {n}: write with ensure_ascii=False"
        assert isinstance(json.loads(line), dict), f"line {n} is not a JSON object"


def assert_items_valid(items, check) -> None:
    """`check(item)` finds no problem with any item (all problems listed by id)."""
    problems = {}
    for item in items:
        errs = check(item)
        if errs:
            problems[item.get("id", "?") if isinstance(item, dict) else "?"] = errs
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def mutated(factory, **changes):
    """A maker of a broken copy of an item: each field set to a value (or a function of the item), or removed
    (KeyError)."""
    def make():
        it = factory()
        for k, v in changes.items():
            if v is KeyError:
                it.pop(k)
            else:
                it[k] = v(it) if callable(v) else v
        return it
    return make


def assert_unique(items) -> None:
    """No id and no question (normalised) twice."""
    ids = Counter(i["id"] for i in items)
    assert not [k for k, n in ids.items() if n > 1], "duplicate ids"
    qs = Counter(norm(i["question"]) for i in items)
    assert not [k for k, n in qs.items() if n > 1], "duplicate questions"


def test_lines_are_json_objects_unescaped():
    assert_json_lines(load_lines(), "eval/qa.jsonl")


def test_every_item_is_valid():
    corpus = load_corpus()
    assert_items_valid(load_items(), lambda item: check_item(item, corpus))


def test_ids_and_questions_unique():
    assert_unique(load_items())


def test_counts_and_distribution():
    items = load_items()
    assert len(items) >= MIN_ITEMS
    types = Counter(i["type"] for i in items)
    docs = Counter(i["doc"] for i in items)
    for t, n in MIN_PER_TYPE.items():
        assert types[t] >= n, f"{t}: {types[t]} < {n}"
    for d, n in MIN_PER_DOC.items():
        assert docs[d] >= n, f"{d}: {docs[d]} < {n}"


def _cited_labels(items) -> dict[str, set[str]]:
    """doc → labels cited by answerable items (compare items contribute per evidence)."""
    corpus = load_corpus()
    out: dict[str, set[str]] = {"qcy": set(), "sx": set()}
    for item in items:
        for e in item["evidence"]:
            ne = norm(e)
            for k, d in corpus.items():
                p = d.text.find(ne)
                if p >= 0:
                    out[k].add(d.segment_at(p).label)
    return out


def _markers(label: str) -> list[str]:
    return [m.group() for m in _MARK_RE.finditer(label)]


def test_whole_documents_are_covered():
    """Preamble, every section (two outermost markers) and most numbered items are cited."""
    corpus = load_corpus()
    cited = _cited_labels(load_items())
    for k, d in corpus.items():
        cited_sections = {"".join(_markers(lab)[:2]) for lab in cited[k]}
        sections = {
            "".join(_markers(s.label)[:2])
            for s in d.segments
            if len(d.segment_text(s)) > 40     # skip bare headings and trailing page junk
        }
        missing = sorted(sections - cited_sections)
        assert not missing, f"{k}: sections never cited: {missing}"
        numbered = {"".join(_markers(s.label)[:3]) for s in d.segments if re.search(r"\d\.$", "".join(_markers(s.label)[:3]))}
        cited_numbered = {"".join(_markers(lab)[:3]) for lab in cited[k]} & numbered
        assert len(cited_numbered) >= NUMBERED_COVERAGE * len(numbered), (
            f"{k}: numbered items never cited: {sorted(numbered - cited_numbered)}"
        )


# ---------------------------------------------------------------------------- tests: the validator can fail

def _first(pred) -> dict:
    return dict(next(i for i in load_items() if pred(i)))


def _corruptions():
    single = lambda: _first(lambda i: i["doc"] == "qcy" and i["clause"].startswith("二、（一）3."))
    sx_item = lambda: _first(lambda i: i["doc"] == "sx")
    cmp_item = lambda: _first(lambda i: i["doc"] == "both")
    neg_item = lambda: _first(lambda i: i["doc"] == "none")
    alt_item = lambda: _first(lambda i: i["id"] == "qcy-003")  # 一、 and 二、（一）3. both give 6000亿元

    mut = mutated

    return {
        "missing field": mut(single, clause=KeyError),
        "extra field": mut(single, note="x"),
        "bad type": mut(single, type="trivia"),
        "bad doc": mut(single, doc="gd"),
        "id prefix vs doc": mut(single, id="sx-999"),
        "wrong clause": mut(single, clause="二、（一）2."),
        "ascii brackets in clause": mut(single, clause=lambda i: i["clause"].replace("（", "(").replace("）", ")")),
        "evidence not in corpus": mut(single, evidence=["到2026年技术合同成交额突破九千亿元"]),
        "evidence in other doc": mut(single, doc="sx", id="sx-999"),
        "ambiguous evidence": mut(single, evidence=["技术合同成交额突破6000亿元"]),
        "evidence too short": mut(single, evidence=["6000亿"]),
        "evidence straddles clauses": mut(sx_item, evidence=["自主知识产权.二是建立创新生态"]),
        "must_contain not in doc": mut(single, must_contain=["9000亿元"], answer="突破9000亿元"),
        "must_contain missing from answer": mut(single, answer="没有具体说明。"),
        "must_contain not in cited clause": mut(single, must_contain=["3.2万家"], answer="3.2万家"),
        "question copied verbatim": mut(single, question="布局建设30个省级概念验证中心和中试基地是什么？"),
        "unanswerable with evidence": mut(neg_item, evidence=["全省技术合同成交额突破6000亿元"]),
        "unanswerable with clause": mut(neg_item, clause="一、"),
        "compare from one doc": mut(cmp_item, evidence=lambda i: [e for e in i["evidence"]
                                                                   if norm(e) in load_corpus()["qcy"].text]),
        "compare clause without bar": mut(cmp_item, clause=lambda i: i["clause"].split(" | ")[0]),
        "compare typed as fact": mut(cmp_item, type="fact"),
        # `also`: an alternative clause must state the same facts, be where it says, and replace a real label
        "also lacks a must_contain": mut(alt_item, also=[{"clause": "二、（一）2.", "instead_of": "一、",
                                                          "evidence": ["优化“三项改革”线上路演平台功能"]}]),
        "also evidence in another clause": mut(alt_item, also=lambda i: [i["also"][0] | {"clause": "二、（二）6."}]),
        "also instead of an unknown label": mut(alt_item, also=lambda i: [i["also"][0] | {"instead_of": "三、"}]),
        "also evidence ambiguous": mut(alt_item, also=lambda i: [i["also"][0] | {"evidence": ["技术合同成交额突破6000亿元"]}]),
        "also on an unanswerable item": mut(neg_item, also=[{"clause": "一、", "instead_of": "", "evidence": ["x"]}]),
        "also empty": mut(alt_item, also=[]),
    }


@pytest.mark.parametrize("name", list(_corruptions()))
def test_validator_rejects_corrupted_item(name):
    make = _corruptions()[name]
    assert check_item(make()), f"corruption {name!r} was not detected"


def test_validator_accepts_untouched_samples():
    for pred in (lambda i: i["doc"] == "qcy", lambda i: i["doc"] == "sx",
                 lambda i: i["doc"] == "both", lambda i: i["doc"] == "none", lambda i: "also" in i):
        item = _first(pred)
        assert check_item(item) == [], item["id"]
