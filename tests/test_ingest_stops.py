"""No document lost, whatever stops an ingest: a JSONL collection, a changed collection, single files and a folder,
stopped by SIGKILL at every write stage, by SIGTERM and by Ctrl-C, then ingested again, must end document by
document and clause by clause where a fresh ingest of the same input ends; `check` must tell an incomplete
collection; no worker process outlives a killed ingest.

The collections are real policy documents from ../shared/corpus-ext/text/policy_docs.jsonl.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.build import ingest
from rag.config import Settings
from rag.index import KILL_ENV

from .conftest import CORPUS, QCY, REPO, SHARED, SX
from .test_reliability import POLICY_RAG, clause_state, policy_rag

POLICY_DOCS = SHARED / "corpus-ext" / "text" / "policy_docs.jsonl"
FIRST, APPENDED = 8, 3  # documents of the collection, and how many a later version appends


def _policy_lines(n: int, skip: int = 0) -> list[str]:
    """`n` real policy documents of a few thousand characters (so a test ingest stays quick)."""
    lines = [line for line in POLICY_DOCS.read_text(encoding="utf-8").splitlines()
             if 500 < len(json.loads(line)["text"]) < 6000]
    return lines[skip : skip + n]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, embedder) -> SimpleNamespace:
    """The inputs, each with the clauses a fresh ingest gives it and a vector cache that holds all their texts."""
    root = tmp_path_factory.mktemp("stops")
    lines = _policy_lines(FIRST + APPENDED)
    collection = root / "collection.jsonl"
    collection.write_text("\n".join(lines[:FIRST]) + "\n", encoding="utf-8")
    changed = root / "changed" / "collection.jsonl"  # v1 above, then 3 documents appended and one edited
    changed.parent.mkdir()
    edited = json.loads(lines[1])
    edited["text"] = edited["text"].replace("。", "。（修订）", 1)
    changed.write_text("\n".join([lines[0], json.dumps(edited, ensure_ascii=False), *lines[2:]]) + "\n",
                       encoding="utf-8")
    folder = root / "folder"
    folder.mkdir()
    for name in (QCY, SX):
        shutil.copy(CORPUS / name, folder / name)
    for i, line in enumerate(lines[:3]):
        (folder / f"doc{i}.txt").write_text(json.loads(line)["text"], encoding="utf-8")

    fresh = {}
    cache = root / "vectors.sqlite"
    for name, path in (("collection", collection), ("changed", changed), ("folder", folder)):
        data = root / f"fresh-{name}"
        report = ingest(Settings(data_dir=data), [path], embedder=embedder)
        assert not report.failed, report.failed
        fresh[name] = clause_state(data)
        _merge_cache(data / "vectors.sqlite", cache)
    return SimpleNamespace(collection=collection, changed=changed, folder=folder, fresh=fresh, cache=cache)


def _merge_cache(source: Path, target: Path) -> None:
    import sqlite3

    db = sqlite3.connect(target)
    db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")
    db.execute("ATTACH DATABASE ? AS other", (str(source),))
    with db:
        db.execute("INSERT OR IGNORE INTO vec SELECT key, v FROM other.vec")
    db.close()


def _data_dir(inputs: SimpleNamespace, tmp_path: Path, warm: bool = True) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    if warm:  # every text embedded already: the stopped runs spend their time writing, not embedding
        shutil.copy(inputs.cache, data / "vectors.sqlite")
    return data


def _assert_resumed_like_fresh(data: Path, target: Path, fresh: dict) -> None:
    """The re-run completes what the stop left, and the index equals a fresh ingest's."""
    again = policy_rag("ingest", target, "--data-dir", data)
    assert again.returncode == 0, again.stdout + again.stderr
    strict = policy_rag("check", "--strict", "--data-dir", data)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    assert clause_state(data) == fresh


def _committed_documents(data: Path) -> int:
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{data / 'clauses.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


# ---- SIGKILL at every write stage ------------------------------------------------------------------------

STAGES = [
    "vectors-added:3",        # the 3rd document's vectors are in Chroma, its clauses not committed
    "document-committed:1",   # right after the first document's commit
    "document-committed:5",   # half-way through the collection
    "bm25-written",           # every document committed, inside the BM25 rebuild
    "bm25-swapping",
    "manifest-writing",
]


@pytest.mark.parametrize("stage", STAGES)
def test_a_collection_killed_at_any_stage_resumes_to_the_fresh_index(inputs, tmp_path, stage):
    data = _data_dir(inputs, tmp_path)
    killed = policy_rag("ingest", inputs.collection, "--data-dir", data, env={KILL_ENV: stage})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    if stage.startswith(("vectors-added", "document-committed")):
        checked = policy_rag("check", "--data-dir", data)  # not --strict: a half-written collection is a finding
        assert checked.returncode == 1 and "run `policy-rag ingest` again" in checked.stdout, checked.stdout
    _assert_resumed_like_fresh(data, inputs.collection, inputs.fresh["collection"])


@pytest.mark.parametrize("stage", ["vectors-added:2", "document-committed:1", "document-committed:3", "bm25-swapping"])
def test_a_changed_collection_killed_resumes_to_the_fresh_index(inputs, tmp_path, stage):
    """v1 indexed whole; v2 (3 appended, 1 edited) killed part-way: the re-run must bring every v2 document."""
    data = _data_dir(inputs, tmp_path)
    target = tmp_path / "src" / "collection.jsonl"  # one path for both versions, as a user's corpus file
    target.parent.mkdir()
    shutil.copy(inputs.collection, target)
    first = policy_rag("ingest", target, "--data-dir", data)
    assert first.returncode == 0, first.stderr
    shutil.copy(inputs.changed, target)
    killed = policy_rag("ingest", target, "--data-dir", data, env={KILL_ENV: stage})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    if stage != "bm25-swapping":
        assert policy_rag("check", "--data-dir", data).returncode == 1
    again = policy_rag("ingest", target, "--data-dir", data)
    assert again.returncode == 0, again.stdout + again.stderr
    assert policy_rag("check", "--strict", "--data-dir", data).returncode == 0
    assert clause_state(data) == inputs.fresh["changed"]


@pytest.mark.parametrize("stage", ["document-committed:2", "document-committed:4", "bm25-written"])
def test_a_folder_killed_resumes_to_the_fresh_index(inputs, tmp_path, stage):
    data = _data_dir(inputs, tmp_path)
    killed = policy_rag("ingest", inputs.folder, "--data-dir", data, env={KILL_ENV: stage})
    assert killed.returncode == -signal.SIGKILL
    assert policy_rag("check", "--data-dir", data).returncode == 0  # each file whole: nothing incomplete
    _assert_resumed_like_fresh(data, inputs.folder, inputs.fresh["folder"])


# ---- SIGTERM and Ctrl-C ------------------------------------------------------------------------------------

@pytest.mark.parametrize("signame", ["TERM", "INT"])
def test_a_signal_during_a_write_lets_it_finish_then_stops_cleanly(inputs, tmp_path, signame):
    """The signal arrives inside the 3rd document's commit: that write completes, nothing after it starts."""
    data = _data_dir(inputs, tmp_path)
    stopped = policy_rag("ingest", inputs.collection, "--data-dir", data,
                         env={KILL_ENV: f"document-committed:3:{signame}"})
    signum = getattr(signal, "SIG" + signame)
    assert stopped.returncode == 128 + signum, stopped.stdout + stopped.stderr
    assert f"stopped by SIG{signame} after 3 documents were committed" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert len(clause_state(data)) == 3
    checked = policy_rag("check", "--data-dir", data)
    assert checked.returncode == 1 and "3 indexed" in checked.stdout, checked.stdout
    _assert_resumed_like_fresh(data, inputs.collection, inputs.fresh["collection"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_embedding_stops_the_ingest_and_its_workers(inputs, tmp_path, signum):
    """A real stop at a real moment: vectors being computed (no cache) by the worker processes."""
    data = _data_dir(inputs, tmp_path, warm=False)
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(_policy_lines(24, skip=FIRST + APPENDED)) + "\n", encoding="utf-8")
    run = subprocess.Popen([str(POLICY_RAG), "ingest", str(big), "--data-dir", str(data)], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = _wait_for_workers(run)
    deadline = time.monotonic() + 120
    while _committed_documents(data) < 1 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    run.send_signal(signum)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, out + err
    assert "Run `policy-rag ingest` again" in err and "Traceback" not in err
    _assert_gone(workers)
    assert 1 <= len(clause_state(data)) < 24
    again = policy_rag("ingest", big, "--data-dir", data)
    assert again.returncode == 0, again.stderr
    assert len(clause_state(data)) == 24
    assert policy_rag("check", "--strict", "--data-dir", data).returncode == 0


# ---- no orphan processes -----------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _wait_for_workers(run: subprocess.Popen, timeout: float = 120) -> list[int]:
    """The ingest's worker processes (its embedding pool and multiprocessing's resource tracker), once started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        kids = _children(run.pid)
        if len(kids) >= 2:
            return kids
        time.sleep(0.1)
    pytest.fail("the ingest started no worker processes")


def _assert_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return
        time.sleep(0.1)
    pytest.fail(f"processes outlived the ingest: {alive}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_no_worker_outlives_a_killed_ingest(inputs, tmp_path):
    data = _data_dir(inputs, tmp_path, warm=False)
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(_policy_lines(24, skip=FIRST + APPENDED)) + "\n", encoding="utf-8")
    run = subprocess.Popen([str(POLICY_RAG), "ingest", str(big), "--data-dir", str(data)], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = _wait_for_workers(run)
    run.send_signal(signal.SIGKILL)
    run.wait()
    _assert_gone(workers)


# ---- check tells the truth about an index written before files recorded their document count ------------

def test_check_finds_a_collection_missing_documents_in_an_older_index(inputs, tmp_path):
    """An older release recorded the file hash with each document: a collection killed half-way looked done.
    `check` counts the collection's documents; the next ingest reads the file again and completes it."""
    import sqlite3

    data = _data_dir(inputs, tmp_path)
    assert policy_rag("ingest", inputs.collection, "--data-dir", data).returncode == 0
    db = sqlite3.connect(data / "clauses.sqlite")
    with db:  # the state an older release left: 5 of 8 documents, each entry with the file's hash
        doomed = [d for (d,) in db.execute("SELECT doc_id FROM documents ORDER BY doc_id")][5:]
        for doc_id in doomed:
            db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
            db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        for doc_id, entry in list(db.execute("SELECT doc_id, entry FROM documents")):
            old = {k: v for k, v in json.loads(entry).items() if k != "file_docs"}
            db.execute("UPDATE documents SET entry = ? WHERE doc_id = ?", (json.dumps(old, ensure_ascii=False), doc_id))
    db.close()
    checked = policy_rag("check", "--data-dir", data)
    assert checked.returncode == 1 and f"5 of its {FIRST} documents are indexed" in checked.stdout, checked.stdout
    _assert_resumed_like_fresh(data, inputs.collection, inputs.fresh["collection"])


def test_the_next_ingest_writes_again_a_vector_chroma_lost_in_a_kill(inputs, tmp_path):
    """Chroma persists its search index in batches: a kill right after a commit may leave a committed clause
    whose vector Chroma lacks or cannot find. The next ingest's repair writes it again (from the vector cache)."""
    from rag.index import ClauseIndex

    data = _data_dir(inputs, tmp_path)
    killed = policy_rag("ingest", inputs.collection, "--data-dir", data, env={KILL_ENV: "document-committed:2"})
    assert killed.returncode == -signal.SIGKILL
    index = ClauseIndex.inspect(data)
    lost = next(iter(index.store.vector_refs()))
    index.collection.delete(ids=[lost])
    index.close()
    assert "have no vector in Chroma" in policy_rag("check", "--data-dir", data).stdout
    _assert_resumed_like_fresh(data, inputs.collection, inputs.fresh["collection"])
    index = ClauseIndex.inspect(data)
    try:
        assert index.collection.get(ids=[lost])["ids"] == [lost]
    finally:
        index.close()
