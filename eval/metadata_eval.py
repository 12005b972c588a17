"""Metadata extraction measured against a hand-checked gold file (eval/metadata_gold.jsonl): per-field precision
and recall of 文号, 发文机关, 成文日期, 施行日期, 有效期 and repeal links, on the dev and test halves.

Each gold document is read from ../shared by the loader ingest uses (`ingest.loaders`), so what is scored is
what ingest would store. A collection's own metadata fields (policy_docs.jsonl carries `doc_number` and
`issuer` for some documents) are left out: the extraction from the text is what is measured.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.abstain_fit import split_of
from ingest.loaders import load_documents, load_jsonl
from rag.errors import PolicyRagError
from rag.validity import ref_key

GOLD = Path(__file__).resolve().parent / "metadata_gold.jsonl"
FIELDS = ("doc_number", "issuer", "date", "effective", "expires", "repeals")
METRICS = tuple(f"{f}_{m}" for f in FIELDS for m in ("precision", "recall"))
_ISSUER_SPLIT = re.compile(r"[、，,；;\s]+")


@dataclass
class FieldScore:
    """Counts for one field: extracted values (and how many are right), gold values (and how many were found)."""

    extracted: int = 0
    correct: int = 0
    gold: int = 0
    found: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.extracted if self.extracted else None

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    def add(self, other: FieldScore) -> None:
        self.extracted += other.extracted
        self.correct += other.correct
        self.gold += other.gold
        self.found += other.found


@dataclass
class MetadataReport:
    """Scores per split ("all", "dev", "test") and field, and every miss (a wrong, extra or missing value)."""

    scores: dict[str, dict[str, FieldScore]]
    misses: list[dict[str, Any]] = field(default_factory=list)
    n: dict[str, int] = field(default_factory=dict)

    def metrics(self, split: str = "all") -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, score in self.scores[split].items():
            out[f"{name}_precision"], out[f"{name}_recall"] = score.precision, score.recall
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "metrics": {split: self.metrics(split) for split in self.scores},
            "counts": {split: {f: vars(s) for f, s in fields.items()} for split, fields in self.scores.items()},
            "misses": self.misses,
        }


def load_gold(path: Path = GOLD) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise PolicyRagError(f"{path}: line {number}: invalid JSON ({err.msg})") from None
        missing = [k for k in ("source", *FIELDS) if k not in item]
        if missing:
            raise PolicyRagError(f"{path}: line {number}: missing field(s) {', '.join(missing)}")
        items.append(item)
    return items


def gold_key(item: Mapping[str, Any]) -> str:
    """`source#doc` (or the source file alone): names the gold document and decides its split."""
    return f"{item['source']}#{item['doc']}" if item.get("doc") else item["source"]


def read_meta(item: Mapping[str, Any], shared: Path, records: dict[str, dict[str, dict]]) -> dict[str, str]:
    """The metadata ingest reads for the gold document, through the loader ingest uses."""
    path = shared / item["source"]
    if not item.get("doc"):
        return load_documents(path)[0].meta
    if item["source"] not in records:
        records[item["source"]] = _records(path)
    record = records[item["source"]].get(item["doc"])
    if record is None:
        raise PolicyRagError(f"{path}: no document with id {item['doc']!r} (named in the gold file)")
    line = json.dumps({"id": record["id"], "title": record.get("title") or "", "text": record["text"]}, ensure_ascii=False)
    return load_jsonl(line.encode("utf-8"), path.name)[0].meta


def _records(path: Path) -> dict[str, dict]:
    if not path.exists():
        raise PolicyRagError(f"{path} not found (the gold file reads its documents from ../shared)")
    with path.open(encoding="utf-8") as fh:
        return {r["id"]: r for r in map(json.loads, fh)}


def evaluate(gold: Sequence[Mapping[str, Any]], shared: Path) -> MetadataReport:
    scores = {split: {f: FieldScore() for f in FIELDS} for split in ("all", "dev", "test")}
    report = MetadataReport(scores, n={"all": 0, "dev": 0, "test": 0})
    records: dict[str, dict[str, dict]] = {}
    for item in gold:
        meta = read_meta(item, Path(shared), records)
        split = split_of(gold_key(item))
        report.n["all"] += 1
        report.n[split] += 1
        for name in FIELDS:
            score, wrong = compare(name, item[name], meta.get(name))
            scores["all"][name].add(score)
            scores[split][name].add(score)
            if wrong:
                report.misses.append({"doc": gold_key(item), "split": split, "field": name, "gold": item[name],
                                      "extracted": meta.get(name), "from": meta.get(f"{name}_from", "")[:120]})
    return report


def compare(name: str, gold: Any, extracted: str | None) -> tuple[FieldScore, bool]:
    """The counts of one field of one document, and whether it has a miss."""
    if name == "issuer":
        return _compare_sets(gold or [], _ISSUER_SPLIT.split(extracted or ""), _same_issuer)
    if name == "repeals":
        return _compare_sets(gold or [], (extracted or "").split("；"), _same_ref)
    options = gold if isinstance(gold, list) else [gold] if gold else []  # a list: any of these is right
    right = bool(extracted) and any(_same_value(name, g, extracted) for g in options)
    score = FieldScore(extracted=int(bool(extracted)), correct=int(right), gold=int(bool(options)), found=int(right))
    return score, bool(extracted or options) and not right


def _compare_sets(gold: Sequence[Any], extracted: Sequence[str], same) -> tuple[FieldScore, bool]:
    extracted = [e for e in extracted if e.strip()]
    correct = sum(any(same(g, e) for g in gold) for e in extracted)
    found = sum(any(same(g, e) for e in extracted) for g in gold)
    score = FieldScore(extracted=len(extracted), correct=correct, gold=len(gold), found=found)
    return score, correct < len(extracted) or found < len(gold)


def _same_value(name: str, gold: str, extracted: str) -> bool:
    if name == "doc_number":
        return _number_key(gold) == _number_key(extracted)
    return gold == extracted


def _number_key(text: str) -> str:
    """国办发[2019] 6号 and 中华人民共和国国务院令第431号 written one way (国办发〔2019〕6号, 国务院令第431号)."""
    return ref_key(unicodedata.normalize("NFKC", text)).removeprefix("中华人民共和国")


def _same_issuer(gold: str, extracted: str) -> bool:
    """The same organ, also when one name drops a leading 国家 or 中国 (发展改革委办公厅 = 国家发展改革委办公厅)."""
    a, b = sorted((re.sub(r"\s+", "", gold), re.sub(r"\s+", "", extracted)), key=len)
    return a == b or (len(a) >= 4 and b.endswith(a))


def _same_ref(gold: Mapping[str, str], extracted: str) -> bool:
    """A repealed document named by its title or its 文号."""
    key = _number_key(extracted)
    return any(_number_key(gold[k]) == key for k in ("title", "doc_number") if gold.get(k))


def print_report(report: MetadataReport, echo, misses: bool = True) -> None:
    echo(f"metadata: {report.n['all']} gold documents (dev {report.n['dev']}, test {report.n['test']})")
    echo(f"{'field':<12}" + "".join(f"{split + ' P':>10}{split + ' R':>10}" for split in ("dev", "test", "all"))
         + "   counts (all: right/extracted, found/gold)")
    for name in FIELDS:
        row = f"{name:<12}"
        for split in ("dev", "test", "all"):
            s = report.scores[split][name]
            row += "".join(f"{'-' if v is None else f'{v:.3f}':>10}" for v in (s.precision, s.recall))
        s = report.scores["all"][name]
        echo(row + f"   {s.correct}/{s.extracted}, {s.found}/{s.gold}")
    if misses and report.misses:
        echo(f"\n{len(report.misses)} misses:")
        for m in report.misses:
            echo(f"  [{m['split']}] {m['doc']} {m['field']}: gold {m['gold']!r}, extracted {m['extracted']!r}")
