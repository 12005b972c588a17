"""Scoring: pure functions from (QA item, `ask --json` object) to per-question checks and metrics.

A QA item (eval/qa.jsonl) has `evidence` (strings that occur in the clause answering it),
`must_contain` (strings a correct answer states), `clause` (the expected label; compare items join
one label per cited clause with " | "), `doc` (qcy | sx | both | none) and `type`. Optionally `also`:
other clauses that state the same facts (秦创原 gives its 2026 targets in 一、 and again in 二、（一）3.),
each `{"clause", "evidence", "instead_of"}` — citing one is as right as citing the label it stands in for.
The validator (tests/test_qa_set.py) admits an alternative only when its clause holds every must_contain
string that the clause it replaces holds.

Matching is done on `norm()` text on both sides: whitespace removed and punctuation width folded,
so evidence written `(一)` or `6000 亿元` matches the cleaned `（一）`/`6000亿元` of the index.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

KS = (1, 5, 10)
UNANSWERABLE = "unanswerable"
LABEL_SEPARATOR = " | "

_WHITESPACE = re.compile(r"\s+")
# NFKC leaves these alone; the cleaner turns "." into "。" after Chinese text and may curl quotes.
_EXTRA_FOLD = str.maketrans({"。": ".", "｡": ".", "〔": "[", "〕": "]", "“": '"', "”": '"', "‘": "'", "’": "'"})
_WINDOW = re.compile(r"~\d+$")

# Metrics where lower is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"false_abstain_rate", "latency_p50_ms", "latency_p95_ms"})
METRIC_NAMES = (
    "hit_at_1", "hit_at_5", "hit_at_10", "mrr", "fact_accuracy", "citation_hit", "label_accuracy",
    "abstain_recall", "false_abstain_rate", "latency_p50_ms", "latency_p95_ms",
)


def norm(text: str) -> str:
    """Matching form: no whitespace, NFKC (full-width → ASCII), 。 → '.', curly quotes → straight."""
    return unicodedata.normalize("NFKC", _WHITESPACE.sub("", text)).translate(_EXTRA_FOLD)


def contains_any(text: str, needles: Iterable[str]) -> bool:
    """True when `text` contains one of `needles` once both are normalised."""
    haystack = norm(text)
    return any(norm(n) and norm(n) in haystack for n in needles)


def is_answerable(item: Mapping[str, Any]) -> bool:
    return item["type"] != UNANSWERABLE


def docs_needed(item: Mapping[str, Any]) -> int:
    """How many distinct documents the evidence must come from: 2 for a comparison, else 1."""
    return 2 if item.get("doc") == "both" else 1


def evidence_rank(item: Mapping[str, Any], clauses: Sequence[Mapping[str, Any]]) -> int | None:
    """1-based rank at which the retrieved clauses first hold the item's evidence, or None.

    A clause holds evidence when its text contains one of the evidence strings. A comparison needs
    evidence from both documents, so its rank is where the second document's evidence first shows up.
    """
    docs: set[str] = set()
    evidence = all_evidence(item)
    for rank, clause in enumerate(clauses, 1):
        if contains_any(clause["text"], evidence):
            docs.add(clause["doc_id"])
            if len(docs) >= docs_needed(item):
                return rank
    return None


def all_evidence(item: Mapping[str, Any]) -> list[str]:
    """The item's evidence strings and those of its alternative clauses."""
    return [*item["evidence"], *(e for alt in item.get("also", ()) for e in alt["evidence"])]


def expected_labels(item: Mapping[str, Any]) -> list[str]:
    return [label.strip() for label in item["clause"].split(LABEL_SEPARATOR.strip())] if item["clause"] else [""]


def label_correct(item: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
    """Every expected label (or an alternative standing in for it) is the label of a cited clause
    (exactly: a parent or child label is wrong).

    A window of a long clause (clause id ending in ~N) carries its clause's label, so it counts.
    """
    if answer["abstained"]:
        return False
    cited = {_WINDOW.sub("", c["label"]) for c in answer["citations"]}
    alternatives = item.get("also", ())
    return all(label in cited or any(a["instead_of"] == label and a["clause"] in cited for a in alternatives)
               for label in expected_labels(item))


def citation_correct(item: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
    """A cited clause contains the evidence (a comparison: cited evidence from both documents)."""
    return not answer["abstained"] and evidence_rank(item, answer["citations"]) is not None


def fact_correct(item: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
    """The answer states every must_contain string and does not abstain."""
    if answer["abstained"]:
        return False
    text = norm(answer["answer"])
    return all(norm(m) in text for m in item["must_contain"])


@dataclass(frozen=True, slots=True)
class ItemScore:
    """Every check of one question; None where a check does not apply to the item."""

    id: str
    type: str
    answerable: bool
    abstained: bool
    rank: int | None = None           # evidence rank among the retrieved clauses
    fact: bool | None = None
    citation: bool | None = None
    label: bool | None = None
    latency_ms: float | None = None

    @property
    def passed(self) -> bool:
        """Answerable: evidence in the top 5, right facts, citation and label. Unanswerable: abstained."""
        if not self.answerable:
            return self.abstained
        in_top5 = self.rank is not None and self.rank <= 5
        return in_top5 and bool(self.fact) and bool(self.citation) and self.label is not False

    def problems(self) -> list[str]:
        """Short names of the failed checks, in pipeline order."""
        if not self.answerable:
            return [] if self.abstained else ["not abstained"]
        out = []
        if self.rank is None or self.rank > 5:
            out.append("retrieval miss" if self.rank is None else f"evidence at rank {self.rank}")
        if self.abstained:
            out.append("false abstain")
        else:
            out += [name for name, ok in (("fact", self.fact), ("citation", self.citation),
                                          ("label", self.label)) if ok is False]
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def score_item(item: Mapping[str, Any], answer: Mapping[str, Any], *, has_labels: bool = True) -> ItemScore:
    """Score one `ask --json` object against its QA item. `has_labels=False` scores label checks as wrong."""
    latency = answer.get("timings_ms", {}).get("total")
    if not is_answerable(item):
        return ItemScore(item["id"], item["type"], False, answer["abstained"], latency_ms=latency)
    return ItemScore(
        item["id"], item["type"], True, answer["abstained"],
        rank=evidence_rank(item, answer["retrieved"]),
        fact=fact_correct(item, answer),
        citation=citation_correct(item, answer),
        label=label_correct(item, answer) if has_labels else False,
        latency_ms=latency,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def aggregate(scores: Sequence[ItemScore]) -> dict[str, float | None]:
    """The metric table of a set of item scores (None where no item applies)."""
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    latencies = [s.latency_ms for s in scores if s.latency_ms is not None]
    metrics: dict[str, float | None] = {
        f"hit_at_{k}": _mean(s.rank is not None and s.rank <= k for s in answerable) for k in KS
    }
    metrics["mrr"] = _mean(1 / s.rank if s.rank else 0.0 for s in answerable)
    metrics["fact_accuracy"] = _mean(bool(s.fact) for s in answerable)
    metrics["citation_hit"] = _mean(bool(s.citation) for s in answerable)
    metrics["label_accuracy"] = _mean(bool(s.label) for s in answerable)
    metrics["abstain_recall"] = _mean(s.abstained for s in unanswerable)
    metrics["false_abstain_rate"] = _mean(s.abstained for s in answerable)
    metrics["latency_p50_ms"] = percentile(latencies, 50)
    metrics["latency_p95_ms"] = percentile(latencies, 95)
    return metrics


def aggregate_by_type(scores: Sequence[ItemScore]) -> dict[str, dict[str, float | None]]:
    types = sorted({s.type for s in scores})
    return {t: aggregate([s for s in scores if s.type == t]) | {"n": len([s for s in scores if s.type == t])}
            for t in types}


def check_thresholds(metrics: Mapping[str, float | None], thresholds: Mapping[str, float]) -> list[str]:
    """One message per metric that is worse than its threshold (a missing metric also fails)."""
    failures = []
    for name, limit in thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name}: no value (threshold {limit})")
        elif name in LOWER_IS_BETTER and value > limit:
            failures.append(f"{name} = {value:.3f} is above the maximum {limit}")
        elif name not in LOWER_IS_BETTER and value < limit:
            failures.append(f"{name} = {value:.3f} is below the minimum {limit}")
    return failures
