"""Validator for the held-out staff question set eval/staff/qa.jsonl.

The set is written over real documents in eval/staff/corpus/ (13 national policy documents copied verbatim
from corpus-ext's policy_docs.jsonl, plus two PDFs); eval/staff/docs.json maps each short doc key to its
file (and JSONL id). Documents are read with the product's own loader (`ingest.loaders.load_documents`:
JSONL text through `clean_text(strip_markdown(...))`, PDFs through pypdf + `clean_pages`), so evidence
strings are checked against exactly the text the index holds.

Clause labels come from tests/test_qa_set.py's self-contained marker parser (一、 > （一） > 1. > （1） > 一是).
That parser does not know 第X章/第X条, so a document with line-initial 第X条 articles is labelled with the
product's parser instead (ingest.clauses.split_clauses: 第二章第五条 …; an article's （一） items stay in it).

Every item is checked: exact fields, split "test", type/doc, evidence occurring exactly once in its document
(and nowhere else in the staff corpus) inside the clause the item names, must_contain in that clause and in
the answer, no 15-character run copied from any document into the question, unique ids and questions, and
the counts the set promises.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from tests.test_qa_set import Doc, Segment, find_all, label_ok, norm, parse_doc
from tests.test_qa_set import assert_items_valid, assert_json_lines, assert_unique, mutated
from tests.test_qa_set import load_lines as qa_set_lines

ROOT = Path(__file__).resolve().parents[1]
STAFF_DIR = ROOT / "eval" / "staff"
QA_PATH = STAFF_DIR / "qa.jsonl"
CORPUS_DIR = STAFF_DIR / "corpus"
DOCS_PATH = STAFF_DIR / "docs.json"
SOURCE_JSONL = ROOT.parent / "shared" / "corpus-ext" / "text" / "policy_docs.jsonl"

FIELDS = ("id", "question", "answer", "must_contain", "evidence", "doc", "type", "clause", "split")
TYPES = ("fact", "list", "explain", "unanswerable")
NONE = "none"

MIN_ITEMS = 150
MIN_UNANSWERABLE = 25
MIN_LIST = 20
MIN_DOCS = 12
MIN_PER_DOC = 8
EVIDENCE_LEN = (8, 40)
EVIDENCE_COUNT = (1, 2)
MUST_LEN = (2, 12)
MUST_COUNT = (1, 4)
MAX_COPIED = 15          # a question may not share this many consecutive characters with any document
JSONL_CHARS = (3000, 40000)
SPREAD = 0.5             # per document, cited evidence must span at least half of the text

_ARTICLE_LINE = re.compile(r"(?m)^[^\S\n]*第[一二三四五六七八九十百千零〇两\d]{1,8}条")

# ---------------------------------------------------------------------------- corpus


@lru_cache(maxsize=1)
def doc_map() -> dict[str, dict]:
    return json.loads(DOCS_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def raw_texts() -> dict[str, str]:
    """doc key → cleaned text, read by the product loader."""
    from ingest.loaders import load_documents

    loaded: dict[str, dict[str, str]] = {}      # file → {doc_id or "": text}
    out = {}
    for key, entry in doc_map().items():
        file = entry["file"]
        if file not in loaded:
            docs = load_documents(CORPUS_DIR / file)
            loaded[file] = {d.doc_id.split("#", 1)[1] if "#" in d.doc_id else "": d.text for d in docs}
        out[key] = loaded[file][entry.get("id", "")]
    return out


def uses_articles(text: str) -> bool:
    return bool(_ARTICLE_LINE.search(text))


def parse_articles(key: str, text: str) -> Doc:
    """A 第X条 document segmented by the product's clause parser, in the same Doc form as parse_doc."""
    from ingest.clauses import split_clauses
    from rag.records import Document

    clauses = split_clauses(Document(doc_id=key, source=key, title="", text=text, content_hash=""), max_chars=10**9)
    starts = sorted({(c.start, c.label) for c in clauses})
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, ""))
    parts, segments, offset = [], [], 0
    for i, (start, label) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        piece = norm(text[start:end])
        parts.append(piece)
        segments.append(Segment(key, label, offset, offset + len(piece)))
        offset += len(piece)
    return Doc(key, "".join(parts), tuple(segments))


@lru_cache(maxsize=1)
def load_corpus() -> dict[str, Doc]:
    return {k: (parse_articles(k, t) if uses_articles(t) else parse_doc(k, t)) for k, t in raw_texts().items()}


@lru_cache(maxsize=1)
def corpus_windows() -> frozenset[str]:
    """Every MAX_COPIED-character run of every document (normalised, whitespace-free)."""
    out = set()
    for d in load_corpus().values():
        t = d.text.replace("\n", "")
        out.update(t[i:i + MAX_COPIED] for i in range(len(t) - MAX_COPIED + 1))
    return frozenset(out)


# ---------------------------------------------------------------------------- item check


def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def copied_run(question: str) -> str | None:
    nq = norm(question)
    windows = corpus_windows()
    return next((nq[i:i + MAX_COPIED] for i in range(len(nq) - MAX_COPIED + 1) if nq[i:i + MAX_COPIED] in windows), None)


def check_item(item: object, corpus: dict[str, Doc] | None = None) -> list[str]:
    """Every problem with one item (empty list = valid)."""
    corpus = corpus or load_corpus()
    if not isinstance(item, dict):
        return ["item is not a JSON object"]
    if tuple(item) != FIELDS:
        return [f"fields must be exactly {FIELDS} in that order, got {tuple(item)}"]
    errs: list[str] = []
    for k in ("id", "question", "answer", "doc", "type", "clause", "split"):
        if not isinstance(item[k], str):
            errs.append(f"{k} must be a string")
    if not _is_str_list(item["must_contain"]) or not _is_str_list(item["evidence"]):
        errs.append("must_contain and evidence must be lists of strings")
    if errs:
        return errs
    iid, q, a, doc, typ, clause = (item[k] for k in ("id", "question", "answer", "doc", "type", "clause"))
    must, ev = item["must_contain"], item["evidence"]

    if item["split"] != "test":
        errs.append(f"split must be 'test' (held-out set), got {item['split']!r}")
    if typ not in TYPES:
        errs.append(f"type {typ!r} not in {TYPES}")
    if doc != NONE and doc not in corpus:
        errs.append(f"doc {doc!r} is neither 'none' nor a key of docs.json")
    if errs:
        return errs
    if (typ == "unanswerable") != (doc == NONE):
        errs.append("type 'unanswerable' goes with doc 'none' and only with it")
    want_prefix = "neg" if doc == NONE else doc
    if not re.fullmatch(rf"st-{re.escape(want_prefix)}-\d{{3}}", iid):
        errs.append(f"id {iid!r} must look like st-{want_prefix}-001")
    if not re.search(r"[\u4e00-\u9fff]", q) or not q.rstrip().endswith(("？", "?")):
        errs.append("question must be Chinese and end with ？")
    run = copied_run(q)
    if run:
        errs.append(f"question copies the source verbatim: {run!r}")

    if doc == NONE:
        if must or ev or clause != "":
            errs.append("unanswerable items need empty must_contain, evidence and clause")
        if a and not re.search(r"[\u4e00-\u9fff]", a):
            errs.append("answer of an unanswerable item is '' or a Chinese sentence")
        return errs

    # ---- answerable
    if not a.strip() or not re.search(r"[\u4e00-\u9fff]", a):
        errs.append("answer must be non-empty Chinese")
    if not MUST_COUNT[0] <= len(must) <= MUST_COUNT[1]:
        errs.append(f"must_contain needs {MUST_COUNT[0]}-{MUST_COUNT[1]} strings")
    if not EVIDENCE_COUNT[0] <= len(ev) <= EVIDENCE_COUNT[1]:
        errs.append(f"evidence needs {EVIDENCE_COUNT[0]}-{EVIDENCE_COUNT[1]} strings")
    if len(set(map(norm, ev))) != len(ev) or len(set(map(norm, must))) != len(must):
        errs.append("duplicate evidence or must_contain string")
    if not label_ok(clause):
        errs.append(f"clause {clause!r} is not a well-formed label")

    d = corpus[doc]
    segs: list[Segment] = []
    for e in ev:
        ne = norm(e)
        if not EVIDENCE_LEN[0] <= len(ne) <= EVIDENCE_LEN[1]:
            errs.append(f"evidence {e!r} is {len(ne)} chars, want {EVIDENCE_LEN[0]}-{EVIDENCE_LEN[1]}")
        hits = find_all(d.text, ne)
        flat = len(find_all(d.text.replace("\n", ""), ne))   # also counts occurrences across a line break
        elsewhere = [k for k, other in corpus.items() if k != doc and ne in other.text]
        if not hits:
            errs.append(f"evidence {e!r} not found in doc {doc!r}")
            continue
        if len(hits) > 1 or flat > 1:
            errs.append(f"evidence {e!r} is ambiguous: {max(len(hits), flat)} occurrences in doc {doc!r}")
            continue
        if elsewhere:
            errs.append(f"evidence {e!r} also occurs in {elsewhere}")
        seg = d.segment_at(hits[0])
        if hits[0] + len(ne) > seg.end:
            errs.append(f"evidence {e!r} straddles two clauses")
        if seg.label != clause:
            errs.append(f"evidence {e!r} is in clause {seg.label!r}, item says {clause!r}")
        segs.append(seg)

    seg_text = "\n".join(d.segment_text(s) for s in segs)
    na = norm(a)
    for s in must:
        ns = norm(s)
        if not MUST_LEN[0] <= len(ns) <= MUST_LEN[1]:
            errs.append(f"must_contain {s!r} is {len(ns)} chars, want {MUST_LEN[0]}-{MUST_LEN[1]}")
        if segs and ns not in seg_text:
            errs.append(f"must_contain {s!r} is not in the cited clause {clause!r}")
        if ns not in na:
            errs.append(f"must_contain {s!r} is missing from the reference answer")
    return errs


# ---------------------------------------------------------------------------- loading


def load_lines() -> list[str]:
    return qa_set_lines(QA_PATH)


@lru_cache(maxsize=1)
def load_items() -> tuple[dict, ...]:
    return tuple(json.loads(line) for line in load_lines() if line.strip())


# ---------------------------------------------------------------------------- tests: corpus


def test_corpus_files_match_docs_json():
    """Every document docs.json names is loaded; every corpus file is named; JSONL lines are whole and distinct."""
    docs = doc_map()
    files = {e["file"] for e in docs.values()}
    on_disk = {p.name for p in CORPUS_DIR.iterdir() if p.is_file()}
    assert files == on_disk, f"docs.json files {sorted(files)} != corpus files {sorted(on_disk)}"
    texts = raw_texts()
    assert set(texts) == set(docs)
    ids = [e["id"] for e in docs.values() if e["file"].endswith(".jsonl")]
    assert len(ids) == len(set(ids))
    lines = [json.loads(x) for x in (CORPUS_DIR / "policy_docs.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    assert sorted(r["id"] for r in lines) == sorted(ids), "every JSONL line needs a docs.json key"
    assert 12 <= len(lines) <= 14
    for r in lines:
        assert JSONL_CHARS[0] <= len(r["text"]) <= JSONL_CHARS[1], (r["id"], len(r["text"]))
        assert not re.search(r"政府工作报告|秦创原|山西", r["title"]), r["title"]
    assert sum(1 for f in files if f.endswith(".pdf")) >= 1
    assert len(docs) >= 13


@pytest.mark.skipif(not SOURCE_JSONL.is_file(), reason="corpus-ext not on this machine")
def test_jsonl_lines_are_verbatim_copies():
    source = set(SOURCE_JSONL.read_bytes().splitlines())
    for line in (CORPUS_DIR / "policy_docs.jsonl").read_bytes().splitlines():
        if line.strip():
            assert line in source, line[:80]


def test_titles_in_docs_json_match_the_documents():
    by_id = {}
    for line in (CORPUS_DIR / "policy_docs.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            by_id[record["id"]] = record["title"]
    for key, entry in doc_map().items():
        if "id" in entry:
            assert entry["title"] == by_id[entry["id"]], key
        else:  # a PDF: its title is printed at the top of the extracted text
            assert entry["title"] and norm(entry["title"]) in norm(raw_texts()[key][:300]), key


@pytest.mark.parametrize(
    "doc, snippet, label",
    [
        ("gszx", "按照每个子女每月1000元的标准定额扣除", "第二章第五条"),
        ("gszx", "在80000元限额内据实扣除", "第四章第十一条"),
        ("gszx", "扣除标准为每月1500元", "第六章第十七条"),          # （一） items stay in their article
        ("gszx", "本办法自2019年1月1日起施行", "第九章第三十二条"),
        ("zjgg", "建设50所高水平高等职业学校", ""),
        ("zjgg", "每3年修订1次教材", "三、（九）"),
        ("yyjx", "标记“▲”的26个指标为国家监测指标", "四、（十四）2."),
        ("ypcg", "二是坚持依法合规", "一、（三）二是"),
        ("sjz", "凭居民身份证和户口簿", "一、2."),
        ("gmww", "基本陈列超过10年的可进行全面改陈布展", "三、（四）"),
    ],
)
def test_parser_labels(doc, snippet, label):
    d = load_corpus()[doc]
    pos = d.text.find(norm(snippet))
    assert pos >= 0, snippet
    assert d.segment_at(pos).label == label


# ---------------------------------------------------------------------------- tests: the set


def test_lines_are_json_objects_unescaped():
    assert_json_lines(load_lines(), "eval/staff/qa.jsonl")


def test_every_item_is_valid():
    corpus = load_corpus()
    assert_items_valid(load_items(), lambda item: check_item(item, corpus))


def test_ids_and_questions_unique():
    assert_unique(load_items())


def test_counts_and_distribution():
    items = load_items()
    types = Counter(i["type"] for i in items)
    docs = Counter(i["doc"] for i in items if i["doc"] != NONE)
    assert len(items) >= MIN_ITEMS, len(items)
    assert types["unanswerable"] >= MIN_UNANSWERABLE, types
    assert types["list"] >= MIN_LIST, types
    assert types["explain"] >= 1 and types["fact"] >= len(items) // 3, types
    assert set(docs) == set(doc_map()), f"documents without questions: {set(doc_map()) - set(docs)}"
    assert len(docs) >= MIN_DOCS
    thin = {k: n for k, n in docs.items() if n < MIN_PER_DOC}
    assert not thin, f"documents with fewer than {MIN_PER_DOC} questions: {thin}"


def test_questions_spread_over_each_document():
    """Not just the opening: each document's cited evidence spans at least half of its text."""
    corpus = load_corpus()
    positions: dict[str, list[int]] = {}
    for item in load_items():
        for e in item["evidence"]:
            p = corpus[item["doc"]].text.find(norm(e)) if item["doc"] in corpus else -1
            if p >= 0:
                positions.setdefault(item["doc"], []).append(p)
    for key, d in corpus.items():
        ps = positions.get(key, [])
        assert ps and max(ps) - min(ps) >= SPREAD * len(d.text), f"{key}: evidence bunched in one part"


# ---------------------------------------------------------------------------- tests: the validator can fail


def _first(pred) -> dict:
    return dict(next(i for i in load_items() if pred(i)))


def _corruptions():
    fact = lambda: _first(lambda i: i["type"] == "fact" and i["doc"] == "zjgg")
    art = lambda: _first(lambda i: i["doc"] == "gszx")
    neg = lambda: _first(lambda i: i["doc"] == NONE)

    mut = mutated

    return {
        "missing field": mut(fact, clause=KeyError),
        "extra field": mut(fact, also=[]),
        "dev split": mut(fact, split="dev"),
        "bad type": mut(fact, type="compare"),
        "unknown doc": mut(fact, doc="qcy"),
        "id prefix vs doc": mut(fact, id="st-yyjx-001"),
        "wrong clause": mut(fact, clause="九、"),
        "wrong article": mut(art, clause="第一章第一条"),
        "evidence not in doc": mut(fact, evidence=["到2035年建成一千所高水平高等职业学校"]),
        "evidence in another doc": mut(fact, evidence=["按照每个子女每月1000元的标准定额扣除"]),
        "ambiguous evidence": mut(fact, evidence=["职业技能等级证书"]),
        "evidence too short": mut(fact, evidence=["职业教育"]),
        "must_contain not in clause": mut(fact, must_contain=["12000元"], answer="12000元"),
        "must_contain missing from answer": mut(fact, answer="文件没有说。"),
        "question copied": mut(fact, question="职业院校实践性教学课时原则上占总课时一半以上吗？"),
        "unanswerable with evidence": mut(neg, evidence=["顶岗实习时间一般为6个月"]),
        "unanswerable with clause": mut(neg, clause="一、"),
        "unanswerable typed fact": mut(neg, type="fact"),
    }


@pytest.mark.parametrize("name", list(_corruptions()))
def test_validator_rejects_corrupted_item(name):
    assert check_item(_corruptions()[name]()), f"corruption {name!r} was not detected"
