"""Questions about targets answered from the targets table: 「秦创原到2026年有哪些量化目标？」 gets the document's
targets as a cited list, 「两省的研发投入目标分别是多少？」 one cited line per document.

Retrieval and the answer-or-refuse decision run first, as for any question; this only reshapes an answer that
was not refused, for the documents retrieval put first, so a question the corpus cannot answer is still refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.citations import check_citations
from rag.question import Question
from rag.records import Answer, Citation, Clause, Hit
from rag.targets import Target
from rag.tokens import alternatives

ASKS_TARGETS = re.compile(r"目标|指标")
# wording that asks for the set of targets or a figure per document, not one figure of one target
ASKS_LIST = re.compile(r"哪些|哪几|有什么|都有|列出|列举|量化目标|量化指标|主要目标|发展目标|目标任务")
# words of the question that say what is asked, not which target: they do not narrow the table
FRAME = re.compile(r"目标|指标|量化|主要|发展|哪些|哪几|多少|分别|各自|什么|数量|规模|方面|领域|情况|问题|明确|具体|有没有|"
                   r"没有|是否|硬|到|年|有|的|是|定|了|要|提出|设定|规定|计划|方案|文件|意见|行动|三年|两省|两地|对比|比较|"
                   r"相比|省|市|全省|全市")
MAX_ROWS = 12


def asks_for_targets(question: Question) -> bool:
    """A question about a document's targets: their list (有哪些量化目标), or one kind of target compared across
    documents (两省的研发投入目标分别是多少). A question about one figure of one document is left to the answerer."""
    text = question.text
    if not ASKS_TARGETS.search(text) or question.intent.purpose:
        return False
    return bool(ASKS_LIST.search(text)) or question.intent.compare


def answer_from_targets(question: Question, answer: Answer, targets: Sequence[Target], hits: Sequence[Hit],
                        clause_of: Callable[[str], Clause]) -> Answer | None:
    """The answer rebuilt from the targets of the documents retrieval ranked first (two for a comparison), narrowed
    to the indicator the question names and the year it names; None when the table has nothing for them."""
    if answer.abstained or not hits:
        return None
    docs = list(dict.fromkeys(h.clause.doc_id for h in hits))
    regions = {t.doc_id: t.region for t in targets}
    if question.places:   # the documents of the provinces named, best-ranked first; none of theirs: not ours to list
        docs = [d for d in docs if regions.get(d) in question.places]
    docs = docs[: max(2, len(question.places)) if question.intent.compare else 1]
    by_doc = {d: [t for t in targets if t.doc_id == d] for d in docs}
    topic = _topic_terms(question, [hits[0].clause.title, *(h.clause.title for h in hits)])
    chosen: dict[str, list[Target]] = {}
    for doc_id, found in by_doc.items():
        if topic:
            found = _matching(found, topic)
        if question.years:
            in_year = [t for t in found if t.year in question.years]
            found = in_year or found
        if found:
            chosen[doc_id] = _distinct(found)
    if not chosen:
        return None
    missing = [d for d in docs if d not in chosen]
    return _compose(question, chosen, answer, clause_of, missing, regions, hits)


def _topic_terms(question: Question, titles: Sequence[str]) -> list[str]:
    """The words of the question that name what is measured (研发投入), not the document (秦创原, 创新生态指导意见),
    the place or the ask (哪些, 目标)."""
    text = question.text
    for place in (*question.place_terms, *question.places):
        text = text.replace(place, " ")
    pieces = re.split(rf"{FRAME.pattern}|[\s\d和与及在上的是了吗呢？?，,。、“”]", text)
    title_bigrams = {t[i:i + 2] for t in titles for i in range(len(t) - 1)} | \
        {t.replace("的", "")[i:i + 2] for t in titles for i in range(len(t) - 1)}
    topic = []
    pieces = [re.sub(r"^(?:关于|对于|对|在|就|把|给|为|向|从)|[各等]$", "", p) for p in pieces]
    for piece in (p for p in pieces if p and len(p) >= 2):
        bigrams = [piece[i:i + 2] for i in range(len(piece) - 1)]
        if sum(b in title_bigrams for b in bigrams) / len(bigrams) < 0.6:
            topic.append(piece)
    return topic


def _matching(targets: Sequence[Target], terms: Sequence[str]) -> list[Target]:
    """The targets whose indicator names a term (or its synonym); failing that, whose sentence does."""
    def names(text: str) -> bool:
        return any(_share(t, text) >= 0.6 or any(alt in text for alt in alternatives(t)) for t in terms)

    return [t for t in targets if names(t.indicator)] or [t for t in targets if names(t.sentence)]


def _share(term: str, text: str) -> float:
    """How much of the term's character pairs the text holds (企业研发经费占比 in 企业研发经费占全省研发经费比例)."""
    pairs = [term[i:i + 2] for i in range(len(term) - 1)]
    return sum(p in text for p in pairs) / len(pairs) if pairs else 0.0


def _distinct(targets: Sequence[Target]) -> list[Target]:
    """A target repeated in another clause (the goals section and the task that serves it) listed once."""
    seen: set[tuple] = set()
    out = []
    for t in targets:
        key = (t.value, t.value_high, t.unit, t.year, t.indicator[-6:])
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out[:MAX_ROWS]


def _line(t: Target, n: int) -> str:
    year = f"（到{t.year}年）" if t.year else ""
    comparator = t.comparator if t.comparator and not t.as_written.startswith(t.comparator) else ""
    return f"{t.indicator}：{comparator}{t.as_written}{year}[{n}]"


def _compose(question: Question, chosen: dict[str, list[Target]], answer: Answer, clause_of: Callable[[str], Clause],
             missing: Sequence[str], regions: dict[str, str], hits: Sequence[Hit]) -> Answer:
    citations: list[Citation] = []
    numbers: dict[str, int] = {}

    def number(t: Target) -> int:
        if t.clause_id not in numbers:
            numbers[t.clause_id] = len(citations) + 1
            citations.append(Citation(numbers[t.clause_id], clause_of(t.clause_id), t.sentence))
        return numbers[t.clause_id]

    def number_of(c: Citation) -> int:
        if c.clause.clause_id not in numbers:
            numbers[c.clause.clause_id] = len(citations) + 1
            citations.append(Citation(numbers[c.clause.clause_id], c.clause, c.quote))
        return numbers[c.clause.clause_id]

    if len(chosen) + len(missing) > 1:
        lines = []
        for found in chosen.values():
            head = found[0]
            region = f"{head.region}：" if head.region and head.region != "全国" else ""
            lines.append(f"{region}《{head.title}》" + "；".join(_line(t, number(t)) for t in found))
        titles = {h.clause.doc_id: h.clause.title for h in hits}
        for doc_id in missing:   # a comparison says which document sets no such figure, and what it says instead
            said = [c for c in answer.citations if c.clause.doc_id == doc_id][:2]
            line = f"{regions.get(doc_id) or titles.get(doc_id, doc_id)}：文件中未见该项的量化目标"
            if said:
                line += "；相关表述：" + "".join(f"{c.quote.rstrip('。；;')}。[{number_of(c)}]" for c in said)
            lines.append(line)
    else:
        (found,) = chosen.values()
        lines = ["量化目标："] + [f"{i}. {_line(t, number(t))}" for i, t in enumerate(found, 1)]
    text = "\n".join(lines)
    shaped = Answer(question=question.text, text=text, abstained=False, citations=citations,
                    retrieved=answer.retrieved, signals=answer.signals, confidence=answer.confidence)
    shaped.unsupported = check_citations(text, citations)
    return shaped
