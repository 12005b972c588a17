"""The `policy-rag` command line: ingest, clauses, ask (heavy imports stay inside commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rag.config import Settings, load_settings
from rag.errors import PolicyRagError
from rag.validity import STATUSES, statuses

DATA_DIR_HELP = "Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR)."


def data_dir_option(f):
    return click.option("--data-dir", type=click.Path(path_type=Path), default=None, help=DATA_DIR_HELP)(f)


def chroma_url_option(f):
    return click.option("--chroma-url", default=None, metavar="http://HOST:PORT",
                        help="Vectors in this Chroma server (`chroma run`) instead of the data dir "
                             "(env POLICY_RAG_CHROMA_URL).")(f)


def settings_from(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except Exception as err:  # pydantic ValidationError: name the bad setting
        raise click.UsageError(f"invalid setting: {err}") from None


def print_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="policy-rag")
def main() -> None:
    """policy-rag: answers questions about Chinese policy documents, citing the exact clause."""


@main.command()
@data_dir_option
@click.option("--doc", default=None, help="Only documents whose title or id contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def clauses(data_dir: Path | None, doc: str | None, as_json: bool) -> None:
    """List the indexed clauses with their labels."""
    from rag.assistant import Assistant

    assistant = Assistant(settings_from(data_dir=data_dir))
    try:
        doc_ids = assistant.retriever.resolve_docs(doc)
        for clause in assistant.index.clauses(doc_ids):
            if as_json:
                print_json(clause.to_dict())
            else:
                text = clause.text.replace("\n", " ")
                click.echo(f"{clause.label or '（导语）'}\t{text[:60]}{'…' if len(text) > 60 else ''}")
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None


@main.command()
@data_dir_option
@click.option("--status", type=click.Choice(STATUSES), default=None,
              help="Only documents of this status.")
@click.option("--issuer", default=None, help="Only documents whose issuer contains TEXT.")
@click.option("--year", type=int, default=None, help="Only documents issued (成文/发布) in YEAR.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Status on this day (YYYY-MM-DD; default today).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def docs(data_dir: Path | None, status: str | None, issuer: str | None, year: int | None, as_of, as_json: bool) -> None:
    """List the indexed documents with their 文号, issuer, dates and whether they are in force."""
    from rag.assistant import Assistant
    assistant = Assistant(settings_from(data_dir=data_dir))
    try:
        documents = assistant.index.documents()
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    found = statuses(documents, as_of.date() if as_of else None)
    for doc_id, entry in documents.items():
        meta, st = entry.get("meta") or {}, found[doc_id]
        if (status and st.status != status) or (issuer and issuer not in meta.get("issuer", "")) or (
                year and not str(meta.get("date") or meta.get("year") or "").startswith(str(year))):
            continue
        if as_json:
            print_json({"doc_id": doc_id, "title": entry.get("title", ""), "file": entry.get("file"),
                        **{k: meta.get(k) for k in ("doc_number", "issuer", "date", "effective", "expires", "repeals",
                                                    "warnings")},
                        "status": st.status, "since": st.since, "replaced_by": st.replaced_by,
                        "replaced_by_id": st.replaced_by_id, "reason": st.reason})
        else:
            number = f"（{meta['doc_number']}）" if meta.get("doc_number") else ""
            when = meta.get("date") or meta.get("year") or "日期不详"
            click.echo(f"《{entry.get('title', doc_id)}》{number}\t{meta.get('issuer', '')}\t{when}\t"
                       + (st.warning or st.status))


@main.command()
@data_dir_option
@click.option("--doc", default=None, help="Only documents whose title or id contains TEXT.")
@click.option("--year", type=int, default=None, help="Only targets for this year (到2026年 → 2026).")
@click.option("--region", default=None, help="Only documents about this province (陕西), or 全国.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "csv_file", type=click.Path(path_type=Path), default=None, help="Write the table to FILE.csv.")
@click.option("--xlsx", "xlsx_file", type=click.Path(path_type=Path), default=None, help="Write the table to FILE.xlsx.")
def targets(data_dir: Path | None, doc: str | None, year: int | None, region: str | None, as_json: bool,
            csv_file: Path | None, xlsx_file: Path | None) -> None:
    """List every quantitative target (指标) of the indexed documents with its value, year and clause."""
    from rag.assistant import Assistant
    from rag.targets import select, write_table

    assistant = Assistant(settings_from(data_dir=data_dir))
    try:
        found = select(assistant.targets(), doc=doc, year=year, region=region)
    except PolicyRagError as err:
        raise click.ClickException(str(err)) from None
    for path in (p for p in (csv_file, xlsx_file) if p):
        try:
            write_table(found, path)
        except OSError as err:
            raise click.ClickException(f"cannot write {path}: {err.strerror or err}") from None
        click.echo(f"{len(found)} targets → {path}", err=True)
    if csv_file or xlsx_file:
        return
    for t in found:
        if as_json:
            print_json(t.to_dict())
        else:
            year_text = f"{t.year}年" if t.year else "—"
            click.echo(f"{t.indicator}\t{t.comparator}{t.as_written}\t{year_text}\t{t.citation}")


@main.command()
@click.argument("question", required=False)
@click.option("-k", "k", type=int, default=None, help="How many clauses to retrieve (default 5).")
@click.option("--doc", multiple=True, help="Ask within documents whose title or id contains TEXT (repeatable).")
@click.option("--answerer", type=click.Choice(["extractive", "llm"]), default=None)
@data_dir_option
@chroma_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
def ask(question: str, k: int | None, doc: tuple[str, ...], answerer: str | None, data_dir: Path | None,
        chroma_url: str | None, as_json: bool) -> None:
    """Answer QUESTION from the indexed documents, citing clauses (no QUESTION: ask one after another)."""
    from rag.assistant import Assistant

    settings = settings_from(data_dir=data_dir, answerer=answerer, top_k=k, chroma_url=chroma_url)
    assistant = Assistant(settings)
    assistant.warm_up()
    questions = [question] if question else _read_questions()
    for q in questions:
        try:
            answer = assistant.ask(q, k=k, doc=list(doc) or None)
        except PolicyRagError as err:
            raise click.ClickException(str(err)) from None
        if as_json:
            print_json(answer.to_dict())
        else:
            _print_answer(answer)


def _read_questions():
    """Questions typed at a prompt until EOF or an empty line."""
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("请输入问题（空行或 Ctrl-D 退出）。", err=True)
    while True:
        try:
            line = input("问题：" if interactive else "")
        except EOFError:
            return
        if not line.strip():
            return
        yield line.strip()


def _print_answer(answer) -> None:
    click.echo(answer.as_text() + "\n")


def _register_commands() -> None:
    """Commands that live with their own package (their modules import only click at the top)."""
    import importlib

    for module, name in (("ingest.cli", "ingest_command"), ("ingest.cli", "meta_command"), ("eval.cli", "eval_command"),
                         ("ui.cli", "serve_command"), ("eval.latency", "bench_command"),
                         ("rag.index.check", "check_command")):
        try:
            command = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        main.add_command(command)


_register_commands()

if __name__ == "__main__":
    main()
