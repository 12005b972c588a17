"""Chinese tokenisation for BM25: jieba search-mode words plus character bigrams, stopwords dropped.

Words alone miss whatever jieba segments differently in the question and the document (place names,
new policy terms such as 复工复产 or 揭榜挂帅); character bigrams match those. Measured, passage hit@5:
ncp_policy_qa (300 questions, 400 documents) 0.873 words → 0.907 words + bigrams; eval/qa.jsonl
0.958 → 0.969; legal_dc (first 100 questions) 0.930 → 0.890, where statute wording makes whole words
the stronger signal. Bigrams-only did 0.923 / 0.969 / 0.880: words + bigrams is the compromise.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path

_USERDICT = Path(__file__).parent / "data" / "userdict.txt"
_ABBREVIATIONS = Path(__file__).parent / "data" / "abbreviations.txt"
_SYNONYMS = Path(__file__).parent / "data" / "synonyms.txt"
_lock = threading.Lock()

# Function words and boilerplate that carry no retrieval signal in policy text.
STOPWORDS = frozenset(
    """的 了 和 与 及 以及 等 在 是 为 对 于 以 将 把 被 由 从 向 到 并 或 或者 而 其 之 所 这 那 有 也 都
    就 又 还 更 很 最 要 应 应当 可 可以 能 会 个 各 该 此 本 上 下 中 里 内 外 按 按照 根据 通过 进一步 一批
    一些 什么 怎么 怎样 如何 哪些 哪个 多少 几 吗 呢 吧 啊 请问 关于 方面 相关 有关 其中 我们 你们 他们 省里
    政策 文件 提到 说 讲 规定 提出 里面 呀 嘛 一下 是否 有没有 没有 啥 咋""".split()
)
_KEEP = re.compile(r"[\w\u4e00-\u9fff+%]")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
VERSION = "2"  # 2: character bigrams added. Part of the index identity: a change re-tokenises every clause


@cache
def _jieba():
    """Load jieba once per process (≈0.8 s) with the policy user dictionary."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        jieba.initialize()
        jieba.load_userdict(str(_USERDICT))
    return jieba


@cache
def _posseg():
    """jieba's part-of-speech cutter (the answerer's content terms), after jieba's dictionary is loaded."""
    _jieba()
    import jieba.posseg as pseg

    return pseg


def pos_cut(text: str) -> list[tuple[str, str]]:
    """(word, part of speech) of `text`, as `jieba.posseg.lcut` gives them."""
    return [(pair.word, pair.flag) for pair in _posseg().lcut(text)]


def spellings(term: str) -> tuple[str, ...]:
    """`term`, the same with an abbreviation in it written out (社保缴费 → 社会保险缴费) and with a word of a
    synonym group in it written as each other word of the group (奖补资金 → 补贴资金, 补助资金, 资助资金)."""
    out = [term]
    for short, others in (*abbreviations().items(), *synonyms().items()):
        if short in term:
            out += [term.replace(short, other) for other in others if term.replace(short, other) not in out]
    return tuple(out)


def alternatives(text: str) -> list[str]:
    """The full forms and synonyms of the abbreviations and group words `text` holds, that it does not hold."""
    found = [alt for short, alts in (*abbreviations().items(), *synonyms().items()) if short in text for alt in alts]
    return [alt for alt in dict.fromkeys(found) if alt not in text]


@cache
def synonyms() -> dict[str, tuple[str, ...]]:
    """Word → the other words of its synonym group, from data/synonyms.txt."""
    table: dict[str, tuple[str, ...]] = {}
    for line in _SYNONYMS.read_text(encoding="utf-8").splitlines():
        group = line.split("#", 1)[0].split()
        for word in group:
            table[word] = tuple(w for w in group if w != word)
    return table


def jieba_dictionary() -> tuple[int, dict[str, int]]:
    """jieba's dictionary of general Chinese: its total count and each word's frequency."""
    dictionary = _jieba().dt
    return dictionary.total, dictionary.FREQ


@cache
def abbreviations() -> dict[str, tuple[str, ...]]:
    """Short form → full forms, from data/abbreviations.txt."""
    table: dict[str, tuple[str, ...]] = {}
    for line in _ABBREVIATIONS.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2:
            table[parts[0]] = tuple(parts[1:])
    return table


def tokenize(text: str) -> list[str]:
    """BM25 tokens: the words of `text`, then its Han-character bigrams (stopwords left out)."""
    return words(text) + bigram_tokens(text)


def words(text: str) -> list[str]:
    """Search-mode words of `text`, lower-cased, without stopwords and punctuation."""
    cut = _jieba().lcut_for_search(text)  # HMM stays on: without it "3.2" splits into 3 / . / 2
    return [w for w in (w.strip().lower() for w in cut) if w and w not in STOPWORDS and _KEEP.search(w)]


def bigram_tokens(text: str) -> list[str]:
    return [g for g in _bigrams(text) if g not in STOPWORDS]


def _bigrams(text: str) -> list[str]:
    return [run[i : i + 2] for run in _HAN_RUN.findall(text) for i in range(len(run) - 1)]

