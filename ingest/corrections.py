"""Metadata corrections staff make with `policy-rag meta` (<data dir>/corrections.json): applied to the index at
once and to every later ingest of the document, so a correction survives re-ingest."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.metadata import merged
from rag.errors import PolicyRagError

if TYPE_CHECKING:
    from rag.index import ClauseIndex

FILE = "corrections.json"
FIELDS = ("doc_number", "issuer", "date", "effective", "expires", "repeals")
DATE_FIELDS = ("date", "effective", "expires")


def load(data_dir: Path) -> dict[str, dict[str, str]]:
    path = Path(data_dir) / FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PolicyRagError(f"{path}: not readable as JSON ({err}); fix or delete it") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PolicyRagError(f"{path}: expected {{doc_id: {{field: value}}}}")
    return data


def save(data_dir: Path, corrections: dict[str, dict[str, str]]) -> None:
    """Atomic: a kill leaves the old file or the new one."""
    path = Path(data_dir) / FILE
    tmp = path.with_name(FILE + ".tmp")
    tmp.write_text(json.dumps(corrections, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def check(field: str, value: str) -> None:
    """A field staff may set, with a value of its kind; else an error naming the field."""
    if field not in FIELDS:
        raise PolicyRagError(f"unknown metadata field {field!r}; fields: {', '.join(FIELDS)}")
    if value and field in DATE_FIELDS and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PolicyRagError(f"{field}: {value!r} is not a date written YYYY-MM-DD")


def apply(meta: dict[str, str], correction: dict[str, str] | None) -> dict[str, str]:
    """`meta` with the correction applied: a field set to a value, or removed when set to ""."""
    if not correction:
        return meta
    out = merged(meta, {k: v for k, v in correction.items() if v})
    for field, value in correction.items():
        if not value:
            out.pop(field, None)
            out.pop(f"{field}_from", None)
    return out | {"corrected": ",".join(sorted(correction))}


def correct(index: ClauseIndex, doc_id: str, change: dict[str, str]) -> dict[str, str]:
    """Record `change` for the document and apply it to the index at once, under the ingest lock; its new meta."""
    from filelock import FileLock, Timeout

    for field, value in change.items():
        check(field, value)
    lock = FileLock(str(Path(index.data_dir) / "ingest.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise PolicyRagError("an ingest is writing to the index; correct the metadata after it") from None
    try:
        saved = load(index.data_dir)
        saved[doc_id] = saved.get(doc_id, {}) | change
        save(index.data_dir, saved)
        meta = apply(index.manifest.documents[doc_id].get("meta") or {}, saved[doc_id])
        index.set_meta(doc_id, meta)
    finally:
        lock.release()
    return meta
