"""Optional cross-encoder rerank (sentence-transformers CrossEncoder by name or local path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rag.records import Hit


class CrossEncoderReranker:
    """Re-scores the fused candidates with a cross-encoder; off unless a model is configured."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import CrossEncoder

        self.name = model
        self._model = CrossEncoder(model, device="cpu")

    def rerank(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict([(question, h.clause.index_text()) for h in hits], show_progress_bar=False)
        ranked = sorted(zip(hits, scores, strict=True), key=lambda hs: -float(hs[1]))
        return [
            replace(h, score=float(s), ranks=h.ranks | {"rerank": i}, scores=h.scores | {"rerank": float(s)})
            for i, (h, s) in enumerate(ranked, 1)
        ]
