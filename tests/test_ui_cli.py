"""`policy-rag serve`: defaults, login from the environment, and a --help that does not load gradio."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from rag.cli import main
from ui.cli import parse_auth

from .conftest import REPO


def test_serve_binds_localhost_by_default():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "[default: 127.0.0.1]" in result.output and "[default: 7860]" in result.output
    assert "--data-dir" in result.output


def test_help_does_not_import_gradio():
    code = "import sys; from rag.cli import main; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_login_from_environment():
    assert parse_auth(None) is None and parse_auth("") is None
    assert parse_auth("staff:s3cret:with:colons") == ("staff", "s3cret:with:colons")
    for bad in ("staff", "staff:", ":pw"):
        with pytest.raises(click.UsageError, match="user:password"):
            parse_auth(bad)
