"""The targets table measured against a hand-checked gold list (eval/targets_gold.jsonl): every quantitative
target of both seed documents and of policy documents from ../shared with a 主要目标/发展目标 section, plus tricky
figures that are not targets.

A gold target is found when an extracted record of the same document has the same value (range) and unit in the
same sentence. Precision and recall on those values are the issue's figures; of the matched records, the share
whose clause label, year and indicator also agree is reported, and precision/recall of the whole tuple.
Each document is read by the loader ingest uses and parsed by the clause parser, so what is scored is what the
index holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.clauses import split_clauses
from ingest.loaders import load_documents, load_jsonl
from rag.errors import PolicyRagError
from rag.records import Document
from rag.targets import Target, extract

GOLD = Path(__file__).resolve().parent / "targets_gold.jsonl"
REPO = Path(__file__).resolve().parents[1]
METRICS = ("value_precision", "value_recall", "clause_accuracy", "year_accuracy", "indicator_accuracy",
           "tuple_precision", "tuple_recall", "non_target_rejected")
_PUNCT = re.compile(r"[\s，,。；;：:、“”\"'（）()《》「」]")


@dataclass
class Counts:
    extracted: int = 0
    gold: int = 0
    matched: int = 0          # gold values found (= extracted records that match one)
    clause: int = 0           # of the matched: clause label agrees
    year: int = 0
    indicator: int = 0
    tuple: int = 0            # all of indicator, value, unit, year and clause agree
    non_targets: int = 0
    non_targets_rejected: int = 0

    def add(self, other: Counts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def metrics(self) -> dict[str, float | None]:
        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        return {"value_precision": ratio(self.matched, self.extracted), "value_recall": ratio(self.matched, self.gold),
                "clause_accuracy": ratio(self.clause, self.matched), "year_accuracy": ratio(self.year, self.matched),
                "indicator_accuracy": ratio(self.indicator, self.matched),
                "tuple_precision": ratio(self.tuple, self.extracted), "tuple_recall": ratio(self.tuple, self.gold),
                "non_target_rejected": ratio(self.non_targets_rejected, self.non_targets)}


@dataclass
class TargetsReport:
    counts: dict[str, Counts]
    documents: dict[str, int] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self, split: str = "all") -> dict[str, float | None]:
        return self.counts[split].metrics()

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "metrics": {s: self.metrics(s) for s in self.counts},
                "counts": {s: vars(c) for s, c in self.counts.items()}, "misses": self.misses}


def load_gold(path: Path = GOLD) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise PolicyRagError(f"{path}: line {number}: invalid JSON ({err.msg})") from None
        missing = [k for k in ("doc_id", "split", "targets") if k not in item]
        if missing:
            raise PolicyRagError(f"{path}: line {number}: missing field(s) {', '.join(missing)}")
        items.append(item)
    return items


def read_document(doc_id: str, shared: Path) -> Document:
    """The gold document as ingest reads it: a file of corpus/, or one line of a JSONL collection in ../shared."""
    name, _, record_id = doc_id.partition("#")
    if not record_id:
        return load_documents(REPO / "corpus" / name)[0]
    matches = list((shared / "corpus-ext").rglob(name))
    if not matches:
        raise PolicyRagError(f"{name} not found under {shared / 'corpus-ext'} (named in the gold file)")
    with matches[0].open(encoding="utf-8") as fh:
        for line in fh:
            if json.loads(line).get("id") == record_id:
                return load_jsonl(line.encode("utf-8"), name)[0]
    raise PolicyRagError(f"{matches[0]}: no document with id {record_id!r} (named in the gold file)")


def evaluate(gold: Sequence[Mapping[str, Any]], shared: Path) -> TargetsReport:
    report = TargetsReport({s: Counts() for s in ("all", "dev", "test")}, {"all": 0, "dev": 0, "test": 0})
    for item in gold:
        doc = read_document(item["doc_id"], shared)
        found = extract(split_clauses(doc))
        counts, misses = score_document(item, found)
        for split in ("all", item["split"]):
            report.counts[split].add(counts)
            report.documents[split] += 1
        report.misses += [m | {"doc": item["doc_id"], "split": item["split"]} for m in misses]
    return report


def _norm(text: str) -> str:
    return _PUNCT.sub("", text or "")


def _same_sentence(gold: str, extracted: str) -> bool:
    a, b = _norm(gold), _norm(extracted)
    return bool(a and b) and (a in b or b in a)


def _same_value(g: Mapping[str, Any], t: Target) -> bool:
    def close(x: float | None, y: float | None) -> bool:
        if x is None or y is None:
            return x is None and y is None
        return abs(x - y) <= 1e-6 * max(1.0, abs(x))

    unit = (g.get("unit") or "").replace("％", "%")
    return close(float(g["value"]), t.value) and close(g.get("value_high"), t.value_high) and unit == t.unit


def same_indicator(gold: str, extracted: str) -> bool:
    """The same thing measured: one name holds the other, or they share half of the gold name's characters."""
    a, b = _norm(gold), _norm(extracted)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    return sum(ch in b for ch in a) / len(a) >= 0.5


def score_document(item: Mapping[str, Any], found: Sequence[Target]) -> tuple[Counts, list[dict[str, Any]]]:
    counts = Counts(extracted=len(found), gold=len(item["targets"]))
    misses: list[dict[str, Any]] = []
    unused = list(found)
    for g in item["targets"]:
        candidates = [t for t in unused if _same_value(g, t) and _same_sentence(g["sentence"], t.sentence)]
        if not candidates:
            misses.append({"kind": "missed", "gold": g["as_written"], "indicator": g.get("indicator"),
                           "sentence": g["sentence"][:80]})
            continue
        t = max(candidates, key=lambda c: (same_indicator(g.get("indicator", ""), c.indicator),
                                           c.clause_label == g.get("clause")))
        unused.remove(t)
        counts.matched += 1
        agree = {"clause": t.clause_label == (g.get("clause") or ""), "year": t.year == g.get("year"),
                 "indicator": same_indicator(g.get("indicator", ""), t.indicator)}
        counts.clause += agree["clause"]
        counts.year += agree["year"]
        counts.indicator += agree["indicator"]
        counts.tuple += all(agree.values())
        if not all(agree.values()):
            extracted = {"clause": t.clause_label, "year": t.year, "indicator": t.indicator}
            misses.append({"kind": "differs", "gold": g["as_written"],
                           **{k: [g.get(k), extracted[k]] for k, ok in agree.items() if not ok}})
    for t in unused:
        misses.append({"kind": "extra", "extracted": t.as_written, "indicator": t.indicator,
                       "sentence": t.sentence[:80]})
    for n in item.get("non_targets", []):
        counts.non_targets += 1
        taken = any(_same_sentence(n["sentence"], t.sentence)
                    and (n["as_written"] in t.as_written or t.as_written in n["as_written"]) for t in found)
        counts.non_targets_rejected += not taken
    return counts, misses


def print_report(report: TargetsReport, echo, misses: bool = True) -> None:
    echo(f"targets: {report.documents['all']} gold documents (dev {report.documents['dev']}, "
         f"test {report.documents['test']})")
    echo(f"{'metric':<20}" + "".join(f"{split:>10}" for split in ("dev", "test", "all")))
    for name in METRICS:
        cells = [report.metrics(split)[name] for split in ("dev", "test", "all")]
        echo(f"{name:<20}" + "".join(f"{'-' if v is None else f'{v:.3f}':>10}" for v in cells))
    c = report.counts["all"]
    echo(f"counts (all): {c.matched} of {c.gold} gold values found, {c.extracted} extracted, "
         f"{c.non_targets_rejected} of {c.non_targets} non-targets left out")
    if misses and report.misses:
        echo(f"\n{len(report.misses)} misses:")
        for m in report.misses:
            echo("  " + json.dumps(m, ensure_ascii=False))
