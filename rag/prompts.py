"""Prompt templates live in prompts/ as files; `render` fills $variables and refuses missing ones."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from string import Template

from rag.errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"  # a source checkout
INSTALLED = "rag.prompt_files"  # the same files in an installed wheel (pyproject's package-dir)


@cache
def load(name: str) -> Template:
    """The template `name`, from the installed package when there is one, else from the checkout's prompts/."""
    try:
        text = files(INSTALLED).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        path = PROMPTS_DIR / name
        if not path.exists():
            raise ConfigError(f"prompt template {name} is missing (looked in {PROMPTS_DIR})") from None
        text = path.read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: object) -> str:
    """Fill a template; a variable the template uses but the caller did not give raises ConfigError."""
    try:
        return load(name).substitute({k: str(v) for k, v in values.items()})
    except KeyError as err:
        raise ConfigError(f"prompt {name} needs ${err.args[0]}, which was not given") from None
