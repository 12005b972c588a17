"""PolicyRetriever as LangChain users meet it: LangChain's own standard retriever suite, k and the document
filter per call, sync and async, built from a data dir alone, clause metadata on every Document."""

from __future__ import annotations

import asyncio

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag import PolicyRetriever

from .conftest import QCY, SX

QUESTION = "秦创原到2026年技术合同成交额要达到多少？"


class TestPolicyRetrieverStandard(RetrieversIntegrationTests):
    """langchain-tests' RetrieversIntegrationTests against a real index of the seed documents."""

    @pytest.fixture(autouse=True)
    def _seed_index(self, seed_index_dir, monkeypatch):
        monkeypatch.setenv("POLICY_RAG_DATA_DIR", str(seed_index_dir))

    @property
    def retriever_constructor(self) -> type[PolicyRetriever]:
        return PolicyRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {}  # the data dir comes from POLICY_RAG_DATA_DIR, as for every command

    @property
    def retriever_query_example(self) -> str:
        return QUESTION


def test_k_and_the_document_filter_apply_per_call(seed_index_dir):
    retriever = PolicyRetriever(data_dir=str(seed_index_dir), k=4)
    assert len(retriever.invoke(QUESTION)) == 4
    assert len(retriever.invoke(QUESTION, k=1)) == 1
    within = retriever.invoke("创新生态的主要任务有哪些？", k=3, doc="山西")
    assert len(within) == 3 and {d.metadata["doc_id"] for d in within} == {SX}
    assert {d.metadata["doc_id"] for d in retriever.invoke(QUESTION, doc="秦创原")} == {QCY}


def test_async_and_metadata(seed_index_dir):
    retriever = PolicyRetriever(data_dir=str(seed_index_dir), k=2)
    docs = asyncio.run(retriever.ainvoke(QUESTION, k=3))
    assert len(docs) == 3
    top = docs[0].metadata
    assert top["doc_id"] == QCY and top["title"].startswith("秦创原") and top["label"] and top["clause_id"]
    assert "6000亿元" in " ".join(d.page_content for d in docs)


def test_langchain_retriever_returns_clause_documents(assistant):
    from rag.langchain_retriever import PolicyRetriever

    docs = PolicyRetriever(assistant=assistant, k=3).invoke("技术合同成交额")
    assert len(docs) == 3 and docs[0].metadata["label"] and docs[0].metadata["title"]
