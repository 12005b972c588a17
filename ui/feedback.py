"""Answer feedback (👍/👎 + comment) appended as JSON lines under the data dir, ready to grow the eval set."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ui.render import Turn

FILE_NAME = "feedback.jsonl"
_lock = threading.Lock()  # several staff at once: one whole line per write


def feedback_record(turn: Turn, liked: bool, comment: str = "") -> dict[str, Any]:
    """One feedback line: the rating, the comment, and what was asked, answered and cited."""
    answer = turn.answer
    assert answer is not None
    return {
        "time": datetime.now().isoformat(timespec="seconds"),
        "rating": "up" if liked else "down",
        "comment": comment.strip(),
        "asked": turn.asked,
        "question": turn.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [{"n": c.n, "doc_id": c.clause.doc_id, "title": c.clause.title, "label": c.clause.label,
                       "quote": c.quote, "memo": c.memo} for c in answer.citations],
        "unsupported": [u.sentence for u in answer.unsupported],
        "docs": list(turn.docs),
    }


def append_feedback(data_dir: Path, record: dict[str, Any]) -> Path:
    """Append `record` to <data_dir>/feedback.jsonl and return that path."""
    path = Path(data_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _lock, path.open("a", encoding="utf-8") as fh:
        fh.write(line)
    return path
