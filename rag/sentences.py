"""The sentences of a clause, and how well one matches a question (the reranker and the answerers use them)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from rag.citations import fold, split_sentences
from rag.question import Question, char_bigrams

MARKER_PREFIX = re.compile(
    r"^(?:第[一二三四五六七八九十百零〇两\d]+[编章节条款项]\s*|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|\d+[.．、]|[①-⑳]|[一二三四五六七八九十]+是)"
)


def strip_marker(sentence: str) -> str:
    return MARKER_PREFIX.sub("", sentence, count=1).strip()


class Sentence(NamedTuple):
    """A sentence of a clause without its clause marker, and its folded (and lower-cased) form."""

    body: str
    folded: str
    lower: str


@lru_cache(maxsize=4096)  # the reranker and then the answerer read the same top clauses
def clause_sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of a clause text, without their markers, folded and lower-cased."""
    return tuple(Sentence(body, folded, folded.lower())
                 for body in (strip_marker(s) for s in split_sentences(text)) for folded in (fold(body),))


def sentence_match(question: Question | str, text: str) -> float:
    """How well the best sentence of `text` matches the question: 0.7 × the weighted share of the question's
    key terms it holds (any spelling) + 0.3 × the share of the question's character bigrams it holds.
    (Counting the title's terms for every sentence was measured too: legal_dc 0.925 → 0.905.)"""
    question = Question.of(question)
    spelt, grams = question.weighted_spellings(), question.bigrams
    best = 0.0
    for sentence in clause_sentences(text):
        if len(sentence.body) >= 4:
            cov = sum([w for sp, w in spelt if spelt_in(sentence.lower, sp)])
            overlap = sum(1 for g in grams if g in sentence.folded) / len(grams) if grams else 0.0
            best = max(best, 0.7 * cov + 0.3 * overlap)
    return best


def spelt_in(text: str, spelt: tuple[str, ...]) -> bool:
    """One of a term's spellings occurs in `text`."""
    for spelling in spelt:
        if spelling in text:
            return True
    return False


def bigram_overlap(text: str, other: str) -> float:
    """Share of the character bigrams of `text` that occur in `other`."""
    return gram_share(char_bigrams(text), fold(other))


def gram_share(grams: frozenset[str], folded: str) -> float:
    return sum(1 for g in grams if g in folded) / len(grams) if grams else 0.0
