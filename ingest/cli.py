"""`policy-rag ingest`: index files and folders, one report line per document."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rag.errors import IngestInterrupted, PolicyRagError

STATUS_MARK = {"added": "＋", "updated": "↻", "unchanged": "＝", "removed": "－", "failed": "✗", "skipped": "·"}


@click.command("ingest")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR).")
@click.option("--chroma-url", default=None, metavar="http://HOST:PORT",
              help="Vectors in this Chroma server (`chroma run`) instead of the data dir (env POLICY_RAG_CHROMA_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def ingest_command(paths: tuple[Path, ...], data_dir: Path | None, chroma_url: str | None, as_json: bool) -> None:
    """Index PATHS (files or folders; default corpus/) into clause chunks.

    Exit 0 when every file is fine, 2 when some failed (the good ones are still indexed), 1 on a fatal error.
    """
    from ingest.build import ingest as run_ingest
    from rag.cli import print_json, settings_from

    settings = settings_from(data_dir=data_dir, chroma_url=chroma_url)
    bar = None
    if not as_json and sys.stderr.isatty():
        from tqdm import tqdm

        # characters of document text (a single big JSONL is one file): the ETA follows the embedding
        bar = tqdm(total=0, unit="字", unit_scale=True, file=sys.stderr, desc="ingest")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    def pages(file: str, done: int, total: int) -> None:
        """A scan is read by OCR, seconds a page: say which page it is at."""
        if bar is not None:
            bar.set_description(f"OCR {Path(file).name} {done}/{total}")
            if done == total:
                bar.set_description("ingest")
        elif not as_json:
            click.echo(f"OCR {file}: page {done}/{total}", err=True)

    try:
        report = run_ingest(settings, list(paths) or None, progress=progress, pages=pages)
    except IngestInterrupted as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(err.exit_code)
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        print_json(report.to_dict())
    else:
        for r in report.documents:
            if r.status == "unchanged" and len(report.documents) > 50:
                continue
            detail = r.error or f"{r.clauses} clauses"
            click.echo(f"{STATUS_MARK[r.status]} {r.status:9} {r.doc_id or r.path}  {detail}")
            for warning in r.warnings:
                click.echo(f"    ⚠ not read: {warning}")
        counts = {s: sum(1 for r in report.documents if r.status == s) for s in STATUS_MARK}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        click.echo(f"{report.clauses_total} clauses indexed in {report.seconds:.1f}s ({summary}) → {settings.data_dir}")
    sys.exit(2 if report.failed else 0)


@click.command("meta")
@click.argument("doc")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Set a field (doc_number, issuer, date, effective, expires, repeals; dates YYYY-MM-DD). Repeatable.")
@click.option("--unset", "unsets", multiple=True, metavar="FIELD", help="Remove a field read from the text. Repeatable.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR).")
def meta_command(doc: str, sets: tuple[str, ...], unsets: tuple[str, ...], data_dir: Path | None) -> None:
    """Show or correct the metadata of the document whose title or id contains DOC.

    A correction applies at once and to every later ingest of the document.
    """
    from ingest import corrections
    from rag.cli import print_json, settings_from
    from rag.index import ClauseIndex

    settings = settings_from(data_dir=data_dir)
    try:
        change = {}
        for item in sets:
            field, sep, value = item.partition("=")
            if not sep or not value.strip():
                raise PolicyRagError(f"--set {item!r}: write FIELD=VALUE")
            change[field.strip()] = value.strip()
        change |= {field.strip(): "" for field in unsets}
        for field, value in change.items():
            corrections.check(field, value)
        index = ClauseIndex.inspect(settings.data_dir, settings.chroma_url)
        try:
            found = index.find_documents(doc)
            if len(found) != 1:
                names = "、".join(index.manifest.documents[d].get("title", d) for d in found[:5])
                raise PolicyRagError(f"{doc!r} matches {len(found)} documents{'：' + names if names else ''}; "
                                     "give more of the title or the document id")
            (doc_id,) = found
            if change:
                corrections.correct(index, doc_id, change)
            entry = index.manifest.documents[doc_id]
        finally:
            index.close()
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    print_json({"doc_id": doc_id, "title": entry.get("title", ""), "meta": entry.get("meta") or {}})
