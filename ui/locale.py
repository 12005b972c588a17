"""Gradio's own interface strings (「Drop File Here - or - Click to Upload」, the table's sort menu …) in Chinese,
whatever the browser's language.

Gradio picks its strings by the browser's locale. Custom translations are merged into each locale's dictionary,
and a key written whole ("upload_text.drop_file") is looked up before the nested built-in one, so giving every
locale Gradio ships its own 简体中文 strings makes the page Chinese everywhere. data/gradio-zh-CN.json holds those
strings and locales, read from the installed Gradio's frontend bundle (lang/zh-CN.json); refresh it when
upgrading Gradio (tests/test_ui_browser.py checks the upload box in an en-US browser).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import gradio as gr

DATA = Path(__file__).with_name("data") / "gradio-zh-CN.json"


@cache
def chinese() -> gr.I18n:
    """Gradio's Chinese strings for every locale it knows (and the bare languages of regional ones)."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    locales = {*data["locales"], *(loc.split("-")[0] for loc in data["locales"])}
    return gr.I18n(**{loc: data["strings"] for loc in sorted(locales)})
