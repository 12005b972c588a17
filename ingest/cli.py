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

    try:
        report = run_ingest(settings, list(paths) or None, progress=progress)
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
        counts = {s: sum(1 for r in report.documents if r.status == s) for s in STATUS_MARK}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        click.echo(f"{report.clauses_total} clauses indexed in {report.seconds:.1f}s ({summary}) → {settings.data_dir}")
    sys.exit(2 if report.failed else 0)
