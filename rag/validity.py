"""Whether a policy is in force: 现行有效, 尚未施行, 已过有效期, or 已被废止或替代 (by which document of the corpus,
since when), from the metadata read at ingest (ingest/metadata.py) and the documents that repeal others."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

IN_FORCE, NOT_YET, EXPIRED, REPEALED = "现行有效", "尚未施行", "已过有效期", "已被废止或替代"
STATUSES = (IN_FORCE, NOT_YET, EXPIRED, REPEALED)
_BRACKETS = str.maketrans("[]（）()［］【】", "〔〕〔〕〔〕〔〕〔〕")


@dataclass(frozen=True)
class Status:
    """A document's status on a day, and why."""

    doc_id: str
    title: str
    status: str
    since: str | None = None          # the day it expired or was repealed, or takes effect
    replaced_by: str | None = None    # the title of the document that repeals it
    replaced_by_id: str | None = None
    reason: str = ""                  # the sentence that says so

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def warning(self) -> str | None:
        """What an answer citing this document must say, or None when it is in force."""
        if self.status == REPEALED:
            return f"《{self.title}》已被《{self.replaced_by}》废止或替代" + (f"（{self.since}起）" if self.since else "")
        if self.status == EXPIRED:
            return f"《{self.title}》已过有效期（{self.since}到期）"
        if self.status == NOT_YET:
            return f"《{self.title}》尚未施行（{self.since}起施行）"
        return None


def _iso(value: str | None) -> bool:
    """A date read as a real day (one kept as written, 2月30日, decides nothing)."""
    return bool(value and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))


def ref_key(text: str) -> str:
    """A title or 文号 written one way: no spaces, 〔〕 for every bracket pair, no 《》."""
    return re.sub(r"\s+", "", text).translate(_BRACKETS).strip("《》")


def statuses(documents: Mapping[str, Mapping[str, Any]], as_of: date | None = None) -> dict[str, Status]:
    """The status of every document (doc_id → its manifest entry, with `title` and `meta`) on `as_of` (today).

    A document's `repeals` names the ones it repeals (separated by ；) by title, 文号 or document id.
    """
    today = (as_of or date.today()).isoformat()
    by_ref: dict[str, str] = {}
    for doc_id, entry in documents.items():
        meta = entry.get("meta") or {}
        by_ref[ref_key(entry.get("title", ""))] = doc_id
        if meta.get("doc_number"):
            by_ref[ref_key(meta["doc_number"])] = doc_id
    by_ref |= {ref_key(doc_id): doc_id for doc_id in documents}  # an id names one document even when titles repeat
    repealed_by: dict[str, str] = {}
    for doc_id, entry in documents.items():
        for ref in filter(None, (entry.get("meta") or {}).get("repeals", "").split("；")):
            target = by_ref.get(ref_key(ref))
            if target and target != doc_id:
                repealed_by.setdefault(target, doc_id)
    out = {}
    for doc_id, entry in documents.items():
        meta, title = entry.get("meta") or {}, entry.get("title", "")
        if doc_id in repealed_by:
            by = documents[repealed_by[doc_id]]
            by_meta = by.get("meta") or {}
            out[doc_id] = Status(doc_id, title, REPEALED, by_meta.get("effective") or by_meta.get("date"),
                                 by.get("title", ""), repealed_by[doc_id], by_meta.get("repeals_from", ""))
        elif _iso(meta.get("effective")) and meta["effective"] > today:
            out[doc_id] = Status(doc_id, title, NOT_YET, meta["effective"], reason=meta.get("effective_from", ""))
        elif _iso(meta.get("expires")) and meta["expires"] < today:
            out[doc_id] = Status(doc_id, title, EXPIRED, meta["expires"], reason=meta.get("expires_from", ""))
        else:
            out[doc_id] = Status(doc_id, title, IN_FORCE, meta.get("effective"))
    return out


BOTH_ANSWER = 0.9  # the replacement's best hit scores at least this share of the repealed one's: both answer


def current_first(hits: Sequence[Any], found: Mapping[str, Status]) -> list[Any]:
    """Hits (with `.clause.doc_id` and `.score`) in the same order, except that a repealed document's hits wait
    until the first hit of the document replacing it when both versions answer (the replacement's best hit
    scores about as well): the current one leads and is cited first. A question only the old text answers
    keeps its order."""
    best: dict[str, float] = {}
    for h in hits:
        best[h.clause.doc_id] = max(best.get(h.clause.doc_id, h.score), h.score)
    stale = {d: s.replaced_by_id for d, s in found.items()
             if s.status == REPEALED and d in best and s.replaced_by_id in best
             and best[s.replaced_by_id] >= BOTH_ANSWER * best[d]}
    if not stale:
        return list(hits)
    out: list[Any] = []
    held: list[Any] = []
    seen: set[str] = set()
    for hit in hits:
        doc = hit.clause.doc_id
        if doc in stale and stale[doc] not in seen:
            held.append(hit)
            continue
        out.append(hit)
        seen.add(doc)
        out += [h for h in held if stale[h.clause.doc_id] in seen]
        held = [h for h in held if stale[h.clause.doc_id] not in seen]
    return out + held
