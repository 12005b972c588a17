"""policy-rag's library: ask questions of Chinese policy documents and get answers citing the exact clause.

    from rag import Assistant, Settings
    answer = Assistant(Settings(data_dir=".policy-rag")).ask("秦创原到2026年技术合同成交额要达到多少？")

Names load on first use (PEP 562), so `import rag` and `policy-rag --help` stay instant: PolicyRetriever
brings in LangChain, Assistant the embedder and the index.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Answer", "Assistant", "Citation", "Clause", "Document", "Hit", "PolicyRagError", "PolicyRetriever",
           "Settings"]

_HOME = {
    "Answer": "rag.records", "Citation": "rag.records", "Clause": "rag.records", "Document": "rag.records",
    "Hit": "rag.records", "Assistant": "rag.assistant", "PolicyRagError": "rag.errors",
    "PolicyRetriever": "rag.langchain_retriever", "Settings": "rag.config",
}

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.errors import PolicyRagError
    from rag.langchain_retriever import PolicyRetriever
    from rag.records import Answer, Citation, Clause, Document, Hit


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
