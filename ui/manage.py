"""Staff actions on indexed documents from the 文件 tab: remove one, or mark one replaced by a new upload.

A removed document's file is moved to <data dir>/removed/ (not deleted: moving it back and ingesting restores it),
so no later ingest of its folder brings it back. A replacement is recorded as a metadata correction of the new
document (its `repeals` names the old one's id), so it survives re-ingest and rag/validity.py reads it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ingest import corrections
from ingest.build import remove
from rag.config import Settings
from rag.errors import PolicyRagError
from rag.index import ClauseIndex


@dataclass(frozen=True)
class Removed:
    """What a removal did: the document's title, and where its file went (None when it was not found)."""

    doc_id: str
    title: str
    moved_to: Path | None


def removed_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "removed"


def _documents(settings: Settings) -> dict[str, dict]:
    index = ClauseIndex.inspect(settings.data_dir, settings.chroma_url)
    try:
        return dict(index.manifest.documents)
    finally:
        index.close()


def remove_document(settings: Settings, doc_id: str, embedder=None) -> Removed:
    """Take the document out of the index under the ingest lock and move its file aside."""
    documents = _documents(settings)
    entry = documents.get(doc_id)
    if entry is None:
        raise PolicyRagError(f"文件库中没有 {doc_id}（可能已被删除），请刷新页面")
    file = entry.get("file", "")
    shared = [d for d, e in documents.items() if e.get("file") == file]
    if len(shared) > 1:  # a collection (.jsonl …): moving it would take all its documents with it
        raise PolicyRagError(f"《{entry.get('title', doc_id)}》来自合集文件 {file}（含 {len(shared)} 份文件），"
                             "不能单独删除；请由管理员从合集中删去后重新导入")
    source, moved = Path(file), None
    if file and source.is_file():
        folder = removed_dir(settings)
        folder.mkdir(parents=True, exist_ok=True)
        moved = folder / f"{datetime.now():%Y%m%d-%H%M%S}-{source.name}"
        shutil.move(source, moved)
    try:
        remove(settings, [doc_id], embedder=embedder)
    except BaseException:
        if moved is not None:  # the index still has it: so must its folder
            shutil.move(moved, source)
        raise
    return Removed(doc_id, entry.get("title") or doc_id, moved)


def mark_replaced(settings: Settings, new_id: str, old_id: str) -> dict[str, str]:
    """Record that `new_id` replaces `old_id` (added to its `repeals`, kept across re-ingest); its new meta."""
    if new_id == old_id:
        raise PolicyRagError("上传的文件与要替代的文件是同一份，未标记替代")
    index = ClauseIndex.inspect(settings.data_dir, settings.chroma_url)
    try:
        for doc_id in (new_id, old_id):
            if doc_id not in index.manifest.documents:
                raise PolicyRagError(f"文件库中没有 {doc_id}，未标记替代")
        meta = index.manifest.documents[new_id].get("meta") or {}
        refs = [r for r in meta.get("repeals", "").split("；") if r]
        return corrections.correct(index, new_id, {"repeals": "；".join([*refs, old_id] if old_id not in refs else refs)})
    finally:
        index.close()
