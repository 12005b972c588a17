"""`policy-rag serve`: the web app (gradio is imported only when the command runs, so --help stays instant)."""

from __future__ import annotations

import os
from pathlib import Path

import click

AUTH_ENV = "POLICY_RAG_AUTH"


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:password` → (user, password); empty → no login."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise click.UsageError(f"{AUTH_ENV} must look like user:password")
    return user, password


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; use 0.0.0.0 explicitly to serve the whole network.")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default .policy-rag/, env POLICY_RAG_DATA_DIR).")
def serve_command(host: str, port: int, data_dir: Path | None) -> None:
    """Serve the chat web app (optional login from env POLICY_RAG_AUTH=user:password)."""
    from rag.cli import settings_from

    settings = settings_from(data_dir=data_dir)
    auth = parse_auth(os.environ.get(AUTH_ENV))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home at launch
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ui.app import serve

    click.echo(f"policy-rag: 正在加载索引 {settings.data_dir} …", err=True)
    serve(settings, host=host, port=port, auth=auth)
