"""The answer-or-refuse decision: a logistic model over retrieval and reading signals, fitted on dev data by
`policy-rag eval --fit-abstain` (eval/abstain_fit.py), its weights in rag/data/abstain.json.

The signals are what the old hand rule looked at (the question's content terms or figures missing from the
evidence, a "how much" question whose best sentence holds no figure) and what it could not weigh against each
other: how strongly dense search and BM25 agree on the top clause, how well its best sentence matches, and the
kind of question. The model answers when the probability that the corpus holds the answer reaches its
threshold, chosen on dev data for few false refusals."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.citations import arabic_numerals, fold
from rag.question import Question, places_in
from rag.records import Hit
from rag.sentences import spelt_in
from rag.tokens import spellings

WEIGHTS = Path(__file__).parent / "data" / "abstain.json"
NUMBERISH = re.compile(r"\d|[一二两三四五六七八九十百千万亿]+(?:[个项家条名所件类大批种倍亿万]|年)")
FEATURES = (
    "fused_top", "fused_margin", "dense_top", "dense_margin", "bm25_top", "lexical_top", "sentence_top",
    "sentence_coverage", "missing_share", "missing_any", "figure_missing", "quantity_without_figure", "terms",
    "type_missing", "top_coverage", "top5_coverage", "place_missing", "doc_consensus", "bm25_per_token",
    "asks_quantity", "asks_list", "asks_when", "asks_who", "asks_compare", "asks_purpose",
)


def signals(question: Question, hits: Sequence[Hit], best_sentence: str, best_score: float,
            best_coverage: float) -> dict[str, float]:
    """Every feature of the decision for one question, its hits and its best candidate sentence."""
    top = list(hits[:5])
    evidence = "".join(h.clause.index_text() for h in top)
    # a document's province counts as mentioned (秦创原's plan is about 陕西 in every clause)
    evidence += "".join(p for h in top for p in places_in(h.clause.title))
    lowered = fold(evidence).lower()
    dense = sorted((h.scores.get("dense", 0.0) for h in hits[:10]), reverse=True) + [0.0, 0.0]
    fused = [h.score for h in hits[:2]] + [0.0, 0.0]
    missing = missing_share(question.content_terms, lowered)
    first = fold(hits[0].clause.index_text() if hits else "").lower()
    bm25 = max((h.scores.get("bm25", 0.0) for h in top), default=0.0)
    return {
        "type_missing": float(type_missing(question.text, best_sentence)),
        "top_coverage": term_coverage(question, first),
        "top5_coverage": term_coverage(question, lowered),
        "place_missing": float(any(not spelt_in(lowered, spellings(p)) for p in question.place_terms)),
        "doc_consensus": sum(h.clause.doc_id == top[0].clause.doc_id for h in top) / len(top) if top else 0.0,
        "bm25_per_token": bm25 / max(1, len(question.tokens)),
        "fused_top": fused[0],
        "fused_margin": fused[0] - fused[1],
        "dense_top": dense[0],
        "dense_margin": dense[0] - dense[1],
        "bm25_top": math.log1p(bm25),
        "lexical_top": max((h.scores.get("lexical", 0.0) for h in top), default=0.0),
        "sentence_top": best_score,
        "sentence_coverage": best_coverage,
        "missing_share": missing,
        "missing_any": float(missing > 0),
        "figure_missing": float(bool(figures(question.text, named_only=True) - figures(evidence))),
        "quantity_without_figure": float(question.intent.quantity and not NUMBERISH.search(best_sentence)),
        "terms": math.log1p(len(question.content_terms)),
        **{f"asks_{name}": float(on) for name, on in asdict(question.intent).items()},
    }


# What a question asks for, and how a sentence holding such a value reads: an amount of money, a share, a date,
# a contact. A question asking for one is not answered by a sentence holding none.
VALUE_TYPES = {
    "money": (re.compile(r"多少钱|金额|多少元|多少万|额度|安家费|(?:补贴|补助|奖励|资助|奖补|经费|资金|费用)(?:标准|是|有|能)?多少"
                         r"|多少(?:补贴|补助|奖励|资助|奖补|经费|资金)"),
              re.compile(r"\d\s*(?:万|亿)?元|[一二两三四五六七八九十百千万亿]元")),
    "share": (re.compile(r"比例|占比|比重|百分之|百分比|几成|多少%"), re.compile(r"%|％|百分之|[\d一二三四五六七八九]成")),
    "date": (re.compile(r"什么时候|何时|哪一?年|几月|几号|截止|截至|期限|到期|多久"),
             re.compile(r"\d{4}年|\d+月|\d+日|年底|年内|[\d一二两三四五六七八九十]+(?:年|个月|日|天)")),
    "contact": (re.compile(r"网址|网站|电话|邮箱|联系方式|在哪报名|怎么报名"), re.compile(r"https?://|www\.|\d{7,}|@|网站|热线")),
}


def type_missing(question: str, sentence: str) -> bool:
    """The question asks for a kind of value (an amount, a share, a date, a contact) the sentence does not hold."""
    return any(asks.search(question) and not holds.search(arabic_numerals(sentence))
               for asks, holds in VALUE_TYPES.values())


NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*([万亿])?")
UNIT = {None: 1, "万": 10_000, "亿": 100_000_000}


def figures(text: str, *, named_only: bool = False) -> set[float]:
    """The values of the numbers a text writes, in any form (3.2万 and 32000, 百分之六十五 and 65%, 二〇二六 and
    2026 are the same); `named_only`: only those a question names on purpose (two digits or more, or 万/亿)."""
    out = set()
    for m in NUMBER.finditer(arabic_numerals(text)):
        if named_only and len(m.group(1).replace(".", "")) < 2 and not m.group(2):
            continue
        out.add(round(float(m.group(1)) * UNIT[m.group(2)], 6))
    return out


def term_coverage(question: Question, lowered: str) -> float:
    """Weighted share of the question's key terms that the folded, lower-cased text holds in any spelling."""
    total = sum(t.weight for t in question.terms)
    return sum(t.weight for t in question.terms if spelt_in(lowered, t.spellings)) / total if total else 0.0


def missing_share(terms: Sequence[str], lowered: str) -> float:
    """Share of the question's content terms (weighted by rarity in general Chinese) absent from the folded,
    lower-cased evidence, a term counting as present in any of its spellings."""
    from rag.question import rarity

    if not terms:
        return 0.0
    weights = {t: rarity(t) for t in terms}
    return sum(w for t, w in weights.items() if not spelt_in(lowered, spellings(t))) / sum(weights.values())


@dataclass(frozen=True)
class AbstainModel:
    """Standardised features → logistic probability that the corpus answers; answer at `threshold` and above."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    fitted_on: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> AbstainModel:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(features=tuple(raw["features"]), mean=tuple(raw["mean"]), scale=tuple(raw["scale"]),
                   coef=tuple(raw["coef"]), intercept=float(raw["intercept"]), threshold=float(raw["threshold"]),
                   fitted_on=raw.get("fitted_on", {}))

    def save(self, path: Path = WEIGHTS) -> None:
        data = asdict(self) | {"fitted_on": dict(self.fitted_on)}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.intercept + sum(c * (values[f] - m) / s for f, m, s, c in
                                 zip(self.features, self.mean, self.scale, self.coef, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def answers(self, values: Mapping[str, float]) -> bool:
        return self.probability(values) >= self.threshold


_model: AbstainModel | None = None


def default_model() -> AbstainModel:
    """The fitted model shipped in rag/data/abstain.json, read once."""
    global _model
    if _model is None:
        _model = AbstainModel.load()
    return _model


def fit(rows: Sequence[tuple[Mapping[str, float], bool]], *, max_false_abstain: float = 0.03,
        c: float = 1.0, fitted_on: Mapping[str, Any] | None = None) -> AbstainModel:
    """Logistic regression (scikit-learn) on (signals, answerable) rows; the threshold is the highest at which
    at most `max_false_abstain` of the answerable rows would be refused."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r[f] for f in FEATURES] for r, _ in rows], dtype=float)
    y = np.array([answerable for _, answerable in rows], dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
    fitted = AbstainModel(FEATURES, tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()),
                          float(model.intercept_[0]), 0.5, dict(fitted_on or {}))
    answerable = sorted(fitted.probability(r) for r, ok in rows if ok)
    allowed = int(math.floor(max_false_abstain * len(answerable)))  # refusals of answerable rows tolerated
    threshold = answerable[allowed] if answerable else 0.5  # all rows from this one up are answered
    return AbstainModel(**(asdict(fitted) | {"threshold": float(threshold)}))
