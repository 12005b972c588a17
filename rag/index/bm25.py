"""The jieba BM25 index of the clauses (bm25/: a bm25s index and ids.json), derived from the tokens stored in
clauses.sqlite: rebuilt into a new folder and swapped in after every change."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.index.manifest import kill_point
from rag.index.store import ClauseStore

FOLDER = "bm25"


def best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, highest first (ties in position order)."""
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _bm25_from(corpus: list[list[str]]):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return retriever


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (a swapped-in folder's file has another inode or time)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class Bm25Store:
    """Loads bm25/ when it matches clauses.sqlite (else builds BM25 in memory from the stored tokens),
    searches it, rebuilds it."""

    def __init__(self, data_dir: Path, store: ClauseStore) -> None:
        self.folder = Path(data_dir) / FOLDER
        self.store = store
        self._bm25 = None
        self._ids: list[str] = []
        self._doc_codes: dict[str, int] = {}
        self._doc_of = np.zeros(0, dtype=np.int32)
        self._stamp: tuple[int, int] | None = None  # the ids.json of the folder loaded

    def ids_on_disk(self) -> list[str] | None:
        """The clause ids of the BM25 folder (None when missing or unreadable)."""
        try:
            ids = json.loads((self.folder / "ids.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return ids if isinstance(ids, list) else None

    def rebuild(self) -> None:
        """Rebuild from the stored tokens into a new folder, then swap it in."""
        ids, corpus = self.store.tokens()
        tmp, trash = self.folder.with_name(FOLDER + ".tmp"), self.folder.with_name(FOLDER + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if ids:
            _bm25_from(corpus).save(str(tmp))
        (tmp / "ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        kill_point("bm25-written")
        shutil.rmtree(trash, ignore_errors=True)
        if self.folder.exists():
            os.replace(self.folder, trash)
        kill_point("bm25-swapping")
        os.replace(tmp, self.folder)
        shutil.rmtree(trash, ignore_errors=True)
        self._bm25 = None

    def reload_if_swapped(self) -> None:
        """Another process swapped in a new folder: load it at the next search."""
        if self._bm25 is not None and self._stamp != _stamp(self.folder / "ids.json"):
            self._bm25 = None

    def search(self, tokens: list[str], k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(clause_id, BM25 score) of the k best-scoring clauses with a score above zero."""
        self._load()
        if self._bm25 is None or not tokens:
            return []
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        if doc_ids is not None:
            codes = [self._doc_codes[d] for d in doc_ids if d in self._doc_codes]
            scores = np.where(np.isin(self._doc_of, codes), scores, 0.0)
        top = best(scores, k)
        return [(self._ids[i], s) for i, s in zip(top.tolist(), scores[top].tolist()) if s > 0]

    def _load(self) -> None:
        if self._bm25 is not None:
            return
        self._stamp = _stamp(self.folder / "ids.json")
        rows = self.store.clause_docs()
        ids = [cid for cid, _ in rows]
        bm25 = None
        if ids and self.ids_on_disk() == ids:
            import bm25s

            try:
                # memory-mapped: a query reads only its tokens' postings, so a new process answers
                # without first reading the whole index (≈ 170 MB for the laws)
                bm25 = bm25s.BM25.load(str(self.folder), mmap=True)
            except (OSError, ValueError, KeyError):  # swapped or damaged while being read
                bm25 = None
            if self.ids_on_disk() != ids:  # an ingest swapped the folder meanwhile
                bm25 = None
        if bm25 is None:
            ids, corpus = self.store.tokens()
            bm25 = _bm25_from(corpus) if ids else None
            rows = self.store.clause_docs()
        self._ids = ids
        # each BM25 row's document as a small integer, for document filters (a mask in microseconds)
        doc_of = dict(rows)
        self._doc_codes = {d: i for i, d in enumerate(dict.fromkeys(doc_of.values()))}
        self._doc_of = np.array([self._doc_codes.get(doc_of.get(cid), -1) for cid in ids], dtype=np.int32)
        self._bm25 = bm25
