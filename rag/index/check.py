"""`policy-rag check`: verifies that an index's clause store, Chroma, BM25, manifest and files agree.

What queries see is clauses.sqlite's committed state: a clause is found by BM25 and by its vector in
Chroma, and listed in its document's manifest entry. The verdict has three kinds of finding:
- problems: queries could see a wrong or mixed state (a clause without its vector, a vector of another
  clause, clause counts that disagree with the manifest, a damaged sqlite file). Exit 1.
- pending: what a killed ingest may leave and queries never see (vectors no clause points at, a BM25
  folder or manifest.json behind clauses.sqlite, temporary files). The next ingest repairs them.
- incomplete: files only some of whose documents are indexed (an ingest stopped half-way through a
  collection); queries miss the rest until the next ingest completes them. Exit 1.
- stale: files changed or gone since they were indexed; the next ingest updates their documents.
Exit 0 when there are no problems and nothing is incomplete; `--strict` also fails on pending and stale findings.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

SPOT_CHECKS = 20  # vectors looked up through Chroma's ANN index, not just its records


@dataclass
class CheckReport:
    """The findings about one data dir."""

    data_dir: str
    documents: int = 0
    clauses: int = 0
    vectors: int = 0
    problems: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.problems

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.problems or self.incomplete or (strict and (self.pending or self.stale)) else 0

    def to_dict(self) -> dict:
        return asdict(self) | {"consistent": self.consistent}


def check_index(data_dir: Path, chroma_url: str | None = None) -> CheckReport:
    """Verify the index in `data_dir`; raises IndexMissingError/IndexMismatchError when there is none to verify."""
    from rag.index import ClauseIndex

    report = CheckReport(str(data_dir))
    index = ClauseIndex.inspect(Path(data_dir), chroma_url)
    try:
        documents = index.documents()
        report.documents = len(documents)
        _check_store(index, documents, report)
        _check_vectors(index, report)
        _check_bm25(index, report)
        _check_leftovers(index, report)
        _check_complete(documents, report)
        _check_files(documents, report)
    finally:
        index.close()
    return report


def _check_store(index, documents: dict[str, dict], report: CheckReport) -> None:
    """clauses.sqlite: undamaged; every clause belongs to a document that counts it; manifest.json agrees."""
    verdict = index.store.integrity()
    if verdict != "ok":
        report.problems.append(f"clauses.sqlite is damaged ({verdict}); delete the data dir and re-ingest")
        return
    per_doc: Counter[str] = Counter()
    for clause_id, doc_id, vec_id, data in index.store.rows():
        report.clauses += 1
        per_doc[doc_id] += 1
        record = json.loads(data)
        if (record.get("clause_id"), record.get("doc_id")) != (clause_id, doc_id) or not vec_id.startswith(clause_id + "@"):
            report.problems.append(f"clause {clause_id}: its record says {record.get('clause_id')} (vector {vec_id})")
        if doc_id not in documents:
            report.problems.append(f"clause {clause_id} belongs to no indexed document")
    for doc_id, entry in documents.items():
        if entry.get("clauses") != per_doc[doc_id]:
            report.problems.append(
                f"{doc_id}: the manifest says {entry.get('clauses')} clauses, clauses.sqlite holds {per_doc[doc_id]}"
            )
    if not index.manifest_file_agrees():
        report.pending.append("manifest.json is behind clauses.sqlite (queries read clauses.sqlite); "
                              "the next ingest rewrites it")


def _check_vectors(index, report: CheckReport) -> None:
    """Chroma: every clause's vector, with its metadata; vectors no clause points at are orphans."""
    refs = index.store.vector_refs()
    ids = index.dense.all_ids()
    report.vectors = len(ids)
    if len(set(ids)) != len(ids):
        report.problems.append("Chroma holds duplicate vector ids")
    missing = sorted(set(refs) - set(ids))
    if missing:
        report.problems.append(f"{len(missing)} clauses have no vector in Chroma (e.g. {refs[missing[0]][0]}); "
                               "re-ingest their documents")
    orphans = len(set(ids) - set(refs))
    if orphans:
        report.pending.append(f"{orphans} vectors in Chroma belong to no clause (queries skip them); "
                              "the next ingest deletes them")
    absent = set(missing)
    present = [v for v in refs if v not in absent]
    for i in range(0, len(present), 1000):
        got = index.collection.get(ids=present[i : i + 1000], include=["metadatas"])
        for vec_id, meta in zip(got["ids"], got["metadatas"], strict=True):
            clause_id, doc_id = refs[vec_id]
            if (meta or {}).get("doc_id") != doc_id or (meta or {}).get("clause_id") != clause_id:
                report.problems.append(f"vector {vec_id} is labelled {meta}, not clause {clause_id} of {doc_id}")
    _spot_check_search(index, present[:: max(1, len(present) // SPOT_CHECKS)][:SPOT_CHECKS], orphans, report)


def _spot_check_search(index, sample: list[str], orphans: int, report: CheckReport) -> None:
    """A stored vector searched for must come back at distance 0: the ANN index serves what the records hold."""
    if not sample:
        return
    got = index.collection.get(ids=sample, include=["embeddings"])
    for vec_id, vector in zip(got["ids"], got["embeddings"], strict=True):
        if len(vector) != index.manifest.dim:
            report.problems.append(f"vector {vec_id} has {len(vector)} dimensions, the index {index.manifest.dim}")
            continue
        res = index.collection.query(query_embeddings=[vector], n_results=min(1 + orphans, report.vectors),
                                     include=["distances"])
        if not res["distances"][0] or res["distances"][0][0] > 1e-3:
            report.problems.append(f"vector {vec_id} is stored but Chroma's search does not find it")


def _check_bm25(index, report: CheckReport) -> None:
    """bm25/ids.json lists the committed clauses, in order, once each (else queries rebuild BM25 in memory)."""
    on_disk = index.bm25.ids_on_disk()
    committed = index.store.all_clause_ids()
    if on_disk == committed:
        return
    if on_disk is None:
        what = "missing or unreadable"
    else:
        missing, extra = len(set(committed) - set(on_disk)), len(set(on_disk) - set(committed))
        dupes = len(on_disk) - len(set(on_disk))
        what = f"behind clauses.sqlite ({missing} clauses missing, {extra} extra, {dupes} duplicates)"
    report.pending.append(f"BM25 folder {what}: queries build BM25 from clauses.sqlite; the next ingest rewrites it")


def _check_leftovers(index, report: CheckReport) -> None:
    from rag.index import LEFTOVERS

    left = [name for name in LEFTOVERS if (index.data_dir / name).exists()]
    if left:
        report.pending.append(f"temporary files of an interrupted write: {', '.join(left)}; the next ingest removes them")
    if index.interrupted():
        report.pending.append("an ingest started writing and has not finished (it was killed, or is still running); "
                              "run `policy-rag ingest` again to complete it")


def _check_complete(documents: dict[str, dict], report: CheckReport) -> None:
    """Every file's documents are all indexed, from one version of the file (see ClauseIndex.complete_file)."""
    by_file: dict[str, list[dict]] = {}
    for entry in documents.values():
        if entry.get("file"):
            by_file.setdefault(entry["file"], []).append(entry)
    for file, entries in sorted(by_file.items()):
        hashes = {e.get("file_hash") for e in entries}
        holds = max((e.get("file_docs") or 0 for e in entries), default=0) or _jsonl_documents(file, hashes)
        if None in hashes or len(hashes) > 1:
            report.incomplete.append(f"{file}: an ingest stopped before all its documents were written "
                                     f"({len(entries)} indexed); run `policy-rag ingest` again to complete it")
        elif holds > len(entries):
            report.incomplete.append(f"{file}: {len(entries)} of its {holds} documents are indexed; "
                                     "run `policy-rag ingest` again to complete it")


def _jsonl_documents(file: str, hashes: set) -> int:
    """How many documents a .jsonl collection holds (its non-blank lines), when it is still the file that was
    indexed; 0 otherwise. For entries written before an ingest recorded each file's document count."""
    from rag.index import file_hash

    path = Path(file)
    if path.suffix.lower() != ".jsonl" or not path.is_file() or hashes != {file_hash(path)}:
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _check_files(documents: dict[str, dict], report: CheckReport) -> None:
    """Each document's file still has the hash it had when indexed (paths are relative to the ingest's folder)."""
    from rag.index import file_hash

    by_file: dict[str, list[str]] = {}
    for doc_id, entry in documents.items():
        if entry.get("file") and entry.get("file_hash"):
            by_file.setdefault(entry["file"], []).append(doc_id)
    for file, doc_ids in sorted(by_file.items()):
        path = Path(file)
        if not path.is_file():
            report.stale.append(f"{file}: gone since it was indexed (or check runs from another folder than ingest)")
            continue
        digest = file_hash(path)
        if any(documents[d]["file_hash"] != digest for d in doc_ids):
            report.stale.append(f"{file}: changed since it was indexed; run `policy-rag ingest`")


@click.command("check")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR).")
@click.option("--strict", is_flag=True, help="Also fail on leftovers of an interrupted ingest and on changed files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def check_command(data_dir: Path | None, strict: bool, as_json: bool) -> None:
    """Verify the index: clause store, Chroma, BM25 and manifest agree, and files match their hashes.

    Exit 0 when what queries see is consistent, 1 when not (with --strict: also when the next
    ingest has something to repair or update).
    """
    from rag.cli import settings_from
    from rag.errors import PolicyRagError

    settings = settings_from(data_dir=data_dir)
    try:
        report = check_index(settings.data_dir, settings.chroma_url)
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    raise SystemExit(report.exit_code(strict))


def _print_report(report: CheckReport) -> None:
    for line in report.problems:
        click.echo(f"✗ {line}")
    for line in report.pending:
        click.echo(f"… {line}")
    for line in report.incomplete:
        click.echo(f"✗ {line}")
    for line in report.stale:
        click.echo(f"△ {line}")
    verdict = "consistent" if report.consistent else "NOT consistent"
    if report.incomplete:
        verdict += f", {len(report.incomplete)} files INCOMPLETE"
    click.echo(f"{report.data_dir}: {verdict}: {report.documents} documents, {report.clauses} clauses, "
               f"{report.vectors} vectors ({len(report.problems)} problems, {len(report.pending)} pending repair, "
               f"{len(report.stale)} files changed)")
