"""Answerers: the extractive one (default, no LLM) and the shared pieces every answerer uses."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Protocol

from rag.citations import check_citations, fold, split_sentences
from rag.abstain import NUMBERISH, AbstainModel, default_model, signals, term_coverage
from rag.question import Question
from rag.records import Answer, Citation, Clause, Hit
from rag.sentences import clause_sentences, spelt_in, strip_marker

# a document states its purpose once, as 为（了）…，制定本法/现制定本行动计划 (a law's 第一条)
PURPOSE_SENTENCE = re.compile(r"^为了?[^，。]{2,}，.*(?:制定|特制定|现制定|制订)本|^为了?.+(?:制定|制订)本[\u4e00-\u9fff]{0,6}[。；]?$")

MAX_SENTENCES = 3
MAX_LIST_ITEMS = 8
ABSTAIN_MESSAGE = "现有文件中没有找到能回答这个问题的内容。"


class Answerer(Protocol):
    def answer(self, question: Question | str, hits: Sequence[Hit]) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a retrieved clause, scored against the question."""

    sentence: str
    hit: Hit
    rank: int
    score: float
    coverage: float


class ExtractiveAnswerer:
    """Picks the sentences of the top clauses that answer the question; cites each; abstains honestly.

    `related(clause)` returns the clauses of the same list (the clause's children, or its siblings)
    so a list question can list every item; the Assistant wires it to the index.
    """

    def __init__(self, related: Callable[[Clause], list[Clause]] | None = None, *,
                 model: AbstainModel | None = None) -> None:
        self.related = related or (lambda clause: [])
        self.model = model or default_model()

    # ---- entry ----------------------------------------------------------------------------
    def answer(self, question: Question | str, hits: Sequence[Hit]) -> Answer:
        question = Question.of(question)
        candidates = self.score_sentences(question, hits)
        refuse, values, confidence = self.decide(question, hits, candidates)
        if refuse:
            answer = self.abstain(question, hits)
        elif question.intent.compare and len({h.clause.doc_id for h in hits[:10]}) > 1:
            answer = compose(question, self.pick_per_document(candidates), hits)
        elif question.intent.list:
            answer = compose(question, self.pick_list(question, candidates), hits)
        else:
            picked = self.pick_best(candidates)
            if question.intent.quantity or question.intent.when:  # lead with the sentence holding the figure
                picked.sort(key=lambda c: not NUMBERISH.search(c.sentence))
            else:
                picked = _with_next_sentence(picked)
            answer = compose(question, picked, hits)
        answer.signals, answer.confidence = values, confidence
        return answer

    # ---- scoring --------------------------------------------------------------------------
    def score_sentences(self, question: Question, hits: Sequence[Hit]) -> list[Candidate]:
        out: list[Candidate] = []
        asks, grams = question.intent, question.bigrams
        total = sum(t.weight for t in question.terms)
        spelt = [(t.weight, t.spellings) for t in question.terms]
        weights = [w for w, _ in spelt]
        for rank, hit in enumerate(hits[:8]):
            context = fold("".join(hit.clause.headings)).lower()
            in_headings = [spelt_in(context, sp) for _, sp in spelt]
            sentences = clause_sentences(hit.clause.text)
            for i, sentence in enumerate(sentences):
                body = sentence.body
                if len(body) < 4:
                    continue
                inside = [spelt_in(sentence.lower, sp) for _, sp in spelt]
                cov = sum(compress(weights, inside)) / total if total else 0.0
                framed = (sum(w for w, heading, held in zip(weights, in_headings, inside, strict=True)
                              if heading or held) / total if total else 0.0)
                grams_found = sum(1 for g in grams if g in sentence.folded) / len(grams) if grams else 0.0
                score = 0.55 * cov + 0.25 * grams_found + 0.1 * framed
                score += 0.15 / (rank + 1)
                if asks.quantity and NUMBERISH.search(body):
                    score += 0.15
                if asks.when and re.search(r"\d{4}年|\d+月|年底|年内", body):
                    score += 0.15
                if asks.who and re.search(r"负责|牵头|领导小组|办公室|部门|中心", body):
                    score += 0.1
                if asks.purpose and PURPOSE_SENTENCE.search(body):
                    score += 0.3
                if i == 0 and len(sentences) > 1 and len(body) <= 40 and hit.clause.path:
                    score *= 0.6  # a heading names the topic; the sentences after it answer
                out.append(Candidate(body, hit, rank, score, cov))
        out.sort(key=lambda c: -c.score)
        return out

    def decide(self, question: Question, hits: Sequence[Hit], candidates: list[Candidate]) -> tuple[bool, dict, float | None]:
        """(abstain?, the signals, the probability that the corpus answers) from the fitted model (rag/abstain.py)."""
        if not hits or not candidates:
            return True, {}, None
        best = candidates[0]
        values = signals(question, hits, best.sentence, best.score, best.coverage)
        p = self.model.probability(values)
        # a year or figure the question names that no retrieved clause holds (2030年 where the plan says 2026年):
        # whatever the other signals say, these clauses do not answer it
        return p < self.model.threshold or values["figure_missing"] > 0, values, p

    # ---- picking --------------------------------------------------------------------------
    def pick_best(self, candidates: list[Candidate], limit: int = MAX_SENTENCES) -> list[Candidate]:
        """The best sentence, plus close runners-up: from its own clause, or adding a figure or item it lacks."""
        best = candidates[0]
        picked = [best]
        for c in candidates[1:]:
            if len(picked) >= limit or c.score < 0.6 * best.score:
                break
            if c.sentence in {p.sentence for p in picked} or c.hit.clause.doc_id != best.hit.clause.doc_id:
                continue
            same_clause = c.hit.clause.clause_id == best.hit.clause.clause_id
            if (same_clause and c.score >= 0.7 * best.score) or (c.score >= 0.8 * best.score and c.rank <= 2
                                                                 and _adds_information(c, picked)):
                picked.append(c)
        return sorted(picked, key=lambda c: (c.rank, c.hit.clause.text.find(c.sentence)))

    def pick_per_document(self, candidates: list[Candidate]) -> list[Candidate]:
        """For a comparison: the best sentences of each of the two leading documents, document by document."""
        docs: list[str] = []
        for c in candidates:
            if c.hit.clause.doc_id not in docs:
                docs.append(c.hit.clause.doc_id)
        picked: list[Candidate] = []
        for doc in docs[:2]:
            picked += self.pick_best([c for c in candidates if c.hit.clause.doc_id == doc], limit=2)
        return picked

    def pick_list(self, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        """Items of a list clause when the best match is a heading with sub-items; else the best sentences."""
        best = candidates[0]
        clause = best.hit.clause
        is_heading = len(split_sentences(clause.text)) == 1 and len(strip_marker(clause.text)) <= 40
        items = [c for c in self.related(clause) if c.path[: len(clause.path)] == clause.path] if is_heading else []
        if len(items) < 2:
            return self.pick_best(candidates)
        picked = []
        for clause in items[:MAX_LIST_ITEMS]:
            sentences = [strip_marker(s) for s in split_sentences(clause.text)]
            sentences = [s for s in sentences if len(s) >= 4]
            if sentences:
                hit = Hit(clause, best.hit.score, {}, {})
                picked.append(Candidate(sentences[0], hit, best.rank, best.score,
                                        term_coverage(question, fold(sentences[0]).lower())))
        return picked or self.pick_best(candidates)

    def abstain(self, question: Question | str, hits: Sequence[Hit]) -> Answer:
        closest = "；".join(f"《{h.clause.title}》{h.clause.label or '（导语）'}" for h in hits[:3])
        text = ABSTAIN_MESSAGE + (f"最接近的条款：{closest}。" if closest else "")
        return Answer(question=Question.of(question).text, text=text, abstained=True, citations=[],
                      retrieved=list(hits))


def _with_next_sentence(picked: list[Candidate], max_chars: int = 160) -> list[Candidate]:
    """A what / how question: the best sentence often restates the question (蔡奇到通州调研……) and the next one
    of its clause says what was asked (他强调……); add it when the answer stays short."""
    best = picked[0]
    bodies = [s.body for s in clause_sentences(best.hit.clause.text)]
    if best.sentence not in bodies:
        return picked
    after = [b for b in bodies[bodies.index(best.sentence) + 1 :] if len(b) >= 4][:1]
    if not after or after[0] in {p.sentence for p in picked}:
        return picked
    if sum(len(p.sentence) for p in picked) + len(after[0]) > max_chars:
        return picked
    extra = Candidate(after[0], best.hit, best.rank, best.score, best.coverage)
    return sorted([*picked, extra], key=lambda c: (c.rank, c.hit.clause.text.find(c.sentence)))


def _adds_information(candidate: Candidate, picked: list[Candidate]) -> bool:
    """True when the candidate comes from another clause or holds a figure the picked sentences do not."""
    have = "".join(p.sentence for p in picked)
    figures = re.findall(r"\d+(?:\.\d+)?", candidate.sentence)
    return any(f not in have for f in figures) or candidate.hit.clause.clause_id != picked[0].hit.clause.clause_id


def _by_document(picked: list[Candidate], lines: list[str]) -> list[str]:
    """One paragraph per document: 《title》：sentence[1]sentence[2]."""
    order: dict[str, list[str]] = {}
    for c, line in zip(picked, lines, strict=True):
        order.setdefault(c.hit.clause.title, []).append(line)
    return [f"《{title}》：{''.join(parts)}" for title, parts in order.items()]


def compose(question: Question, picked: list[Candidate], hits: Sequence[Hit]) -> Answer:
    """Join the picked sentences into an answer; each ends with the marker of its clause."""
    citations: list[Citation] = []
    numbers: dict[str, int] = {}
    lines: list[str] = []
    for c in picked:
        cid = c.hit.clause.clause_id
        if cid not in numbers:
            numbers[cid] = len(citations) + 1
            citations.append(Citation(numbers[cid], c.hit.clause, c.sentence))
        sentence = c.sentence.rstrip("；;，,")
        if not sentence.endswith(("。", "！", "？")):
            sentence += "。"
        lines.append(f"{sentence}[{numbers[cid]}]")
    multi_doc = len({c.hit.clause.doc_id for c in picked}) > 1
    if multi_doc:
        text = "\n".join(_by_document(picked, lines))
    elif len(lines) > 1 and len({c.hit.clause.clause_id for c in picked}) > 1:
        text = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    else:
        text = "".join(lines)
    answer = Answer(question=question.text, text=text, abstained=False, citations=citations, retrieved=list(hits))
    answer.unsupported = check_citations(text, citations)
    return answer
