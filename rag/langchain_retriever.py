"""The hybrid clause retriever as a LangChain `BaseRetriever`, for LangChain pipelines."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from rag.assistant import Assistant
from rag.config import load_settings
from rag.records import Hit


class PolicyRetriever(BaseRetriever):
    """The hybrid clause retriever as a LangChain `BaseRetriever`: `PolicyRetriever(data_dir=PATH, k=5)` or
    `PolicyRetriever(assistant=…)`. `invoke(question, k=3, doc="秦创原")` overrides k and the document filter
    for one call. Each Document is a clause, its metadata the clause's place and its document's fields."""

    assistant: Any = None
    data_dir: str | None = None
    k: int = 5
    doc: str | None = None

    def model_post_init(self, context: Any) -> None:
        if self.assistant is None:  # opened here, so a LangChain user needs only the data dir
            self.assistant = Assistant(load_settings(data_dir=self.data_dir))

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, doc: str | None = None, **kwargs: Any) -> list[LCDocument]:
        k = self.k if k is None else k
        hits = self.assistant.search(query, k=max(k, 1), doc=doc or self.doc)[:k]
        return [LCDocument(page_content=h.clause.text, metadata=_clause_metadata(h)) for h in hits]

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None, doc: str | None = None,
                                       **kwargs: Any) -> list[LCDocument]:
        """The same search in a worker thread (retrieval is CPU work: no event-loop time is taken)."""
        import asyncio

        return await asyncio.to_thread(self._get_relevant_documents, query, run_manager=run_manager.get_sync(),
                                       k=k, doc=doc)


def _clause_metadata(hit: Hit) -> dict[str, Any]:
    c = hit.clause
    return {"clause_id": c.clause_id, "doc_id": c.doc_id, "title": c.title, "label": c.label,
            "headings": " > ".join(c.headings), "page": c.page, "score": hit.score, "source": c.source,
            **{key: c.meta[key] for key in ("doc_number", "issuer", "date") if c.meta.get(key)}}
