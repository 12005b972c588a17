"""Answerers: the extractive one (default, no LLM) and the shared pieces every answerer uses."""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from typing import NamedTuple, Protocol

from rag.citations import check_citations, fold, split_sentences
from rag.index import EXACT_SEARCH_MAX
from rag.records import Answer, Citation, Clause, Hit
from rag.tokens import pos_cut, question_words, spellings

# Question intents, from the way staff phrase questions.
QUANTITY = re.compile(r"多少|(?<!哪)几[个项家所名年成]|比例|比重|数量|规模|金额|多大|多高|多长|目标|指标|达到|超过|占比|百分")
WHEN = re.compile(r"什么时候|何时|哪一?年|时间|期限|截至|截止|到哪年")
WHO = re.compile(r"谁|哪个部门|哪些部门|哪家|由谁|牵头|负责")
LIST = re.compile(r"哪些|哪几|几个方面|几项|有什么(?:措施|举措|任务|要求|内容|方面)|包括什么|包括哪|都有|列举|主要任务|重点任务|分别是|举措|措施有")
# "分别/各自" alone is not a comparison ("科技型中小企业和高新技术企业分别要突破多少家" asks one document).
COMPARE = re.compile(r"对比|比较|区别|异同|不同|两[省地份个]|相比|还是|vs|VS")
PLACES = re.compile(
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西|海南|重庆|四川"
    "|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|秦创原"
)
GENERIC = frozenset("发展 推动 推进 建设 加强 支持 实施 工作 创新 全面 加快 打造 构建 提升 开展 完善 计划 行动 意见 指导 三年 文件 方面".split())

# Words that frame a question rather than name its subject: their absence from the evidence means nothing.
FRAMING = frozenset(
    """目标 数量 结构 架构 机构 经验 目的 说法 方向 战略 年份 指标 硬指标 定位 地方 安排 做法 具体做法 内容 方面
    办法 措施 举措 要求 模式 作用 发挥作用 领域 类 类产品 数字 思路 阶段 方式 政策 文件 两份 两地 计划 行动计划 意见
    指导意见 规定 情况 问题 重点 工作 方案 体系 时候 事情 东西 部分 规模 比例 比重 金额 标准 多大 多少 哪里 哪些
    什么 怎么 如何 回事 怎么回事 一年 一共 具体 主要 分别 各自 打算 准备 哪几个 哪些地方 几环 哪几 说法 规划 大力
    省里 两省 政府 国家 初衷 宗旨 意图 用意""".split()
)
# "why was it issued": a document states its purpose once, as 为（了）…，制定本法/现制定本行动计划 (a law's 第一条)
PURPOSE = re.compile(r"目的|宗旨|初衷|意图|想达到|为什么(?:要)?(?:出台|制定|印发)|为啥(?:要)?(?:出台|制定)|立法目的")
PURPOSE_SENTENCE = re.compile(r"^为了?[^，。]{2,}，.*(?:制定|特制定|现制定|制订)本|^为了?.+(?:制定|制订)本[\u4e00-\u9fff]{0,6}[。；]?$")
CONTENT_FLAGS = frozenset("n nr ns nt nz nw vn eng j nrt nrfg".split())
NUMBERISH = re.compile(r"\d|[一二两三四五六七八九十百千万亿]+(?:[个项家条名所件类大批种倍亿万]|年)")

MAX_SENTENCES = 3
MAX_LIST_ITEMS = 8
ABSTAIN_MESSAGE = "现有文件中没有找到能回答这个问题的内容。"


class Answerer(Protocol):
    def answer(self, question: str, hits: Sequence[Hit]) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a retrieved clause, scored against the question."""

    sentence: str
    hit: Hit
    rank: int
    score: float
    coverage: float


def intent(question: str) -> dict[str, bool]:
    purpose = bool(PURPOSE.search(question))
    return {
        "quantity": bool(QUANTITY.search(question)) and not purpose,  # 想达到什么目的 asks no figure
        "when": bool(WHEN.search(question)),
        "who": bool(WHO.search(question)),
        "list": bool(LIST.search(question)),
        "compare": bool(COMPARE.search(question)) or len(places_in(question)) > 1,
        "purpose": purpose,
    }


def places_in(question: str) -> set[str]:
    """Provinces the question names (秦创原 is Shaanxi's platform)."""
    return {"陕西" if p == "秦创原" else p for p in PLACES.findall(question)}


# A national notice's addressee line: "各省、自治区、直辖市人民政府，新疆生产建设兵团：" names no province it is about.
NATIONAL_ADDRESSEE = re.compile(r"新疆生产建设兵团")


def document_places(title: str, opening: str) -> set[str]:
    """Provinces a document is about, read from its title and the opening of its text (the 新疆生产建设兵团
    every national notice is addressed to left out of the opening: it had put 关于阶段性减免企业社会保险费的通知
    out of reach of every question naming a province but 新疆)."""
    return places_in(title + NATIONAL_ADDRESSEE.sub("", opening))


def key_terms(question: str) -> dict[str, float]:
    """Search-mode terms of the question weighted by their rarity in general Chinese (framing words dropped)."""
    return dict(_key_terms(question))


@lru_cache(maxsize=256)  # the reranker and the answerer both ask, once per question
def _key_terms(question: str) -> dict[str, float]:
    terms: dict[str, float] = {}
    for t in question_words(question):
        if t in GENERIC or t in FRAMING:
            continue
        terms[t] = max(terms.get(t, 0.0), min(_rarity(t), 14.0) + (4.0 if re.search(r"\d", t) else 0.0))
    return terms


def content_terms(question: str) -> list[str]:
    """Nouns and names of the question (jieba POS), without framing words: what the evidence must mention."""
    terms = []
    for word, flag in pos_cut(question):
        word = word.strip().lower().lstrip("和与及或的")  # jieba's HMM glues 和 to a new word: 和战新
        if flag in CONTENT_FLAGS and len(word) >= 2 and word not in FRAMING and word not in terms:
            terms.append(word)
    return terms


def missing_share(terms: list[str], text: str) -> float:
    """Share of the question's content terms (weighted by rarity in general Chinese) absent from `text`."""
    if not terms:
        return 0.0
    folded = fold(text).lower()
    weights = {t: _rarity(t) for t in terms}
    return sum(w for t, w in weights.items() if not mentions(folded, t)) / sum(weights.values())


def mentions(text: str, term: str) -> bool:
    """`term` occurs in `text` (folded, lower-cased) as written or with its abbreviation spelt out (社保 → 社会保险)."""
    return _spelt_in(text, spellings(term))


def _spelt_in(text: str, spelt: tuple[str, ...]) -> bool:
    """`mentions` for a term's spellings already looked up (the hot loops look them up once a question)."""
    for spelling in spelt:
        if spelling in text:
            return True
    return False


def _rarity(word: str) -> float:
    from rag.tokens import _jieba

    dictionary = _jieba().dt
    return math.log(dictionary.total / (dictionary.FREQ.get(word, 0) + 1))


def coverage(terms: dict[str, float], *texts: str) -> float:
    """Weighted share of the question's key terms that occur in any of `texts`."""
    return term_share(terms, *(fold(t).lower() for t in texts))


def term_share(terms: dict[str, float], *lowered: str) -> float:
    """`coverage` over texts already folded and lower-cased."""
    total = sum(terms.values())
    if not total:
        return 0.0
    return sum(w for t, w in terms.items() if any(mentions(text, t) for text in lowered)) / total


def bigram_overlap(question: str, text: str) -> float:
    """Share of the question's character bigrams that occur in `text`."""
    return gram_share(question_bigrams(question), fold(text))


def gram_share(grams: frozenset[str], folded: str) -> float:
    return sum(1 for g in grams if g in folded) / len(grams) if grams else 0.0


@lru_cache(maxsize=256)
def question_bigrams(question: str) -> frozenset[str]:
    q = re.sub(r"[^\u4e00-\u9fff0-9A-Za-z%]", "", question)
    return frozenset(q[i : i + 2] for i in range(len(q) - 1))


class Sentence(NamedTuple):
    """A sentence of a clause without its clause marker, and its folded (and lower-cased) form.
    (A named tuple: a clause's sentences are built on first sight, and a frozen dataclass took 4.5 µs each.)"""

    body: str
    folded: str
    lower: str


@lru_cache(maxsize=EXACT_SEARCH_MAX + 4096)  # an index held in memory (rag.index) has every clause cached
def clause_sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of a clause text, folded in one pass. Cached: the reranker and the answerer both read
    the top clauses, and the same clauses come up again and again."""
    bodies = [strip_marker(s) for s in split_sentences(text)]
    folded = fold("\x00".join(bodies)).split("\x00")  # NUL is a starter: NFKC never joins across it
    if len(folded) != len(bodies):  # a NUL in the text itself
        folded = [fold(b) for b in bodies]
    return tuple(Sentence(b, f, f.lower()) for b, f in zip(bodies, folded, strict=True))


class Joined(NamedTuple):
    """A clause's sentences, lower-cased and folded, each joined by NUL, and where each sentence starts in
    them: a term or bigram is looked for once a clause, and the sentences it is in are told by its places."""

    lower: str
    folded: str
    lower_starts: list[int]
    folded_starts: list[int]


@lru_cache(maxsize=EXACT_SEARCH_MAX + 4096)
def _joined(text: str) -> Joined:
    sentences = clause_sentences(text)
    lower_starts, folded_starts, at_lower, at_folded = [], [], 0, 0
    for s in sentences:
        lower_starts.append(at_lower)
        folded_starts.append(at_folded)
        at_lower += len(s.lower) + 1
        at_folded += len(s.folded) + 1
    return Joined("\x00".join(s.lower for s in sentences), "\x00".join(s.folded for s in sentences),
                  lower_starts, folded_starts)


class ClauseMatch(NamedTuple):
    """Which of a question's key terms and bigrams a clause holds, sentence by sentence."""

    present: list[int]             # places (in the question's terms) of the terms the clause holds
    terms_in: dict[int, list[int]]  # sentence → places in `present` of the terms it holds, in order
    grams_in: dict[int, int]       # sentence → how many of the question's bigrams it holds (empty: none)


@lru_cache(maxsize=1024)  # the reranker matches 20 clauses a question; the answerer then reads 8 of them
def clause_match(spelt: tuple[tuple[str, ...], ...], grams: frozenset[str], text: str) -> ClauseMatch:
    """`spelt`: each key term's spellings. Each term and bigram is looked for once in the joined sentences and
    its sentences told by where it occurs: the same as testing it against every sentence (neither holds a NUL,
    so none spans two), and the rerank's 20 clauses take 480 µs a question instead of 640."""
    joined = _joined(text)
    present = [j for j, sp in enumerate(spelt) if _spelt_in(joined.lower, sp)]
    terms_in: dict[int, list[int]] = {}
    for place, j in enumerate(present):
        for spelling in spelt[j]:
            at = joined.lower.find(spelling)
            if at >= 0:
                for sentence in _sentences_holding(joined.lower, joined.lower_starts, spelling, at):
                    held = terms_in.setdefault(sentence, [])
                    if not held or held[-1] != place:  # another spelling of the term found it already
                        held.append(place)
    grams_in: dict[int, int] = {}
    for gram in grams:
        at = joined.folded.find(gram)
        if at >= 0:  # most are not in the clause
            for sentence in _sentences_holding(joined.folded, joined.folded_starts, gram, at):
                grams_in[sentence] = grams_in.get(sentence, 0) + 1
    return ClauseMatch(present, terms_in, grams_in)


def _sentences_holding(joined: str, starts: list[int], needle: str, at: int) -> list[int]:
    """The sentences (by place; `starts`: where each begins in `joined`) holding `needle`, each once, from
    `at`, its first place in `joined`."""
    found = []
    while at >= 0:
        sentence = bisect_right(starts, at) - 1
        found.append(sentence)
        if sentence + 1 == len(starts):
            break
        at = joined.find(needle, starts[sentence + 1])
    return found


def warm_sentences(texts: Iterable[str]) -> None:
    """Split and fold clause texts into the sentence caches ahead of the questions that will read them: a
    clause first met by a question costs it ≈ 50 µs, and a question meets 10-15 new ones. Meant for a
    background thread: it lets go of the GIL after each clause, so a question never waits behind it."""
    for text in texts:
        _joined(text)
        time.sleep(0)


def sentence_match(question: str, terms: dict[str, float], text: str) -> float:
    """How well the best sentence of `text` matches the question: key-term coverage and bigram overlap.
    (Counting the title's terms for every sentence was measured too: legal_dc 0.925 → 0.905.)"""
    return best_sentence_match(weighted_spellings(terms), question_bigrams(question), text)


def weighted_spellings(terms: dict[str, float]) -> list[tuple[tuple[str, ...], float]]:
    """Each key term's spellings with its share of the terms' weight: what `best_sentence_match` looks for."""
    total = sum(terms.values()) or 1.0
    return [(spellings(t), w / total) for t, w in terms.items()]


def best_sentence_match(spelt: list[tuple[tuple[str, ...], float]], grams: frozenset[str], text: str,
                        key: tuple[tuple[str, ...], ...] | None = None) -> float:
    """`sentence_match` with the question's part prepared once (the reranker scores 20 clauses a question);
    `key`: the spellings of `spelt`, for `clause_match`."""
    match = clause_match(key if key is not None else tuple(sp for sp, _ in spelt), grams, text)
    if not match.present and not match.grams_in:
        return 0.0
    weights = [spelt[j][1] for j in match.present]
    sentences = clause_sentences(text)
    best = 0.0
    # a sentence holding no term and no bigram scores 0, which `best` starts from
    for i in match.terms_in.keys() | match.grams_in.keys():
        if len(sentences[i].body) >= 4:
            held = match.terms_in.get(i)
            cov = sum([weights[p] for p in held]) if held else 0
            overlap = match.grams_in.get(i, 0) / len(grams) if match.grams_in else 0.0
            best = max(best, 0.7 * cov + 0.3 * overlap)
    return best


MARKER_PREFIX = re.compile(
    r"^(?:第[一二三四五六七八九十百零〇两\d]+[编章节条款项]\s*|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|\d+[.．、]|[①-⑳]|[一二三四五六七八九十]+是)"
)


def strip_marker(sentence: str) -> str:
    return MARKER_PREFIX.sub("", sentence, count=1).strip()


class ExtractiveAnswerer:
    """Picks the sentences of the top clauses that answer the question; cites each; abstains honestly.

    `related(clause)` returns the clauses of the same list (the clause's children, or its siblings)
    so a list question can list every item; the Assistant wires it to the index.
    """

    def __init__(self, related: Callable[[Clause], list[Clause]] | None = None, *,
                 max_missing: float = 0.2) -> None:
        self.related = related or (lambda clause: [])
        self.max_missing = max_missing

    # ---- entry ----------------------------------------------------------------------------
    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        asks = intent(question)
        terms = key_terms(question)
        candidates = self.score_sentences(question, terms, asks, hits)
        if self.should_abstain(question, terms, hits, candidates):
            return self.abstain(question, hits)
        if asks["compare"] and len({h.clause.doc_id for h in hits[:10]}) > 1:
            picked = self.pick_per_document(candidates)
        elif asks["list"]:
            picked = self.pick_list(question, terms, candidates)
        else:
            picked = self.pick_best(candidates)
        return compose(question, picked, hits)

    # ---- scoring --------------------------------------------------------------------------
    def score_sentences(self, question: str, terms: dict[str, float], asks: dict[str, bool],
                        hits: Sequence[Hit]) -> list[Candidate]:
        out: list[Candidate] = []
        grams = question_bigrams(question)
        total = sum(terms.values())
        spelt = [(w, spellings(t)) for t, w in terms.items()]
        key = tuple(sp for _, sp in spelt)
        for rank, hit in enumerate(hits[:8]):
            context = fold("".join(hit.clause.headings)).lower()
            sentences = clause_sentences(hit.clause.text)
            # term_share and gram_share of each sentence from where the clause holds the terms and bigrams
            # (the reranker's `clause_match`, cached): the same sums, in the same order
            match = clause_match(key, grams, hit.clause.text)
            place_of = {j: place for place, j in enumerate(match.present)}  # term → its place among the clause's
            clause_weights = [spelt[j][0] for j in match.present]  # of the terms in the clause, in order
            framing = []  # (weight, in the headings, its place in `match.present` or None) of each term that can count
            for j, (w, sp) in enumerate(spelt):
                heading = _spelt_in(context, sp)
                if heading or j in place_of:
                    framing.append((w, heading, place_of.get(j)))
            for i, sentence in enumerate(sentences):
                body = sentence.body
                if len(body) < 4:
                    continue
                inside = [False] * len(clause_weights)  # each clause term: in this sentence?
                for place in match.terms_in.get(i, ()):
                    inside[place] = True
                cov = sum(compress(clause_weights, inside)) / total if total else 0.0
                framed = (sum(w for w, heading, j in framing if heading or (j is not None and inside[j]))
                          / total if total else 0.0)
                grams_found = match.grams_in.get(i, 0) / len(grams) if grams else 0.0
                score = 0.55 * cov + 0.25 * grams_found + 0.1 * framed
                score += 0.15 / (rank + 1)
                if asks["quantity"] and NUMBERISH.search(body):
                    score += 0.15
                if asks["when"] and re.search(r"\d{4}年|\d+月|年底|年内", body):
                    score += 0.15
                if asks["who"] and re.search(r"负责|牵头|领导小组|办公室|部门|中心", body):
                    score += 0.1
                if asks["purpose"] and PURPOSE_SENTENCE.search(body):
                    score += 0.3
                if i == 0 and len(sentences) > 1 and len(body) <= 40 and hit.clause.path:
                    score *= 0.6  # a heading names the topic; the sentences after it answer
                out.append(Candidate(body, hit, rank, score, cov))
        out.sort(key=lambda c: -c.score)
        return out

    def should_abstain(self, question: str, terms: dict[str, float], hits: Sequence[Hit],
                       candidates: list[Candidate]) -> bool:
        if not hits or not candidates:
            return True
        top_text = "".join(h.clause.index_text() for h in hits[:5])
        # a document's province counts as mentioned (秦创原's plan is about 陕西 in every clause)
        top_text += "".join(p for h in hits[:5] for p in places_in(h.clause.title))
        # a year or figure the question names must be in the evidence (2030年 when the plan says 2026年)
        if any(figure not in top_text for figure in re.findall(r"\d{2,}", question)):
            return True
        # the subject of the question (河南, 安家费, 利率) must be in the evidence
        if missing_share(content_terms(question), top_text) >= self.max_missing:
            return True
        # a "how much" question needs a figure in the sentences that answer it
        if intent(question)["quantity"] and not NUMBERISH.search(candidates[0].sentence):
            return True
        return False

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

    def pick_list(self, question: str, terms: dict[str, float], candidates: list[Candidate]) -> list[Candidate]:
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
                picked.append(Candidate(sentences[0], hit, best.rank, best.score, coverage(terms, sentences[0])))
        return picked or self.pick_best(candidates)

    def abstain(self, question: str, hits: Sequence[Hit]) -> Answer:
        closest = "；".join(f"《{h.clause.title}》{h.clause.label or '（导语）'}" for h in hits[:3])
        text = ABSTAIN_MESSAGE + (f"最接近的条款：{closest}。" if closest else "")
        return Answer(question=question, text=text, abstained=True, citations=[], retrieved=list(hits))


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


def compose(question: str, picked: list[Candidate], hits: Sequence[Hit]) -> Answer:
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
    answer = Answer(question=question, text=text, abstained=False, citations=citations, retrieved=list(hits))
    answer.unsupported = check_citations(text, citations)
    return answer
