"""The package as users and maintainers meet it: the public API of `rag`, prompts inside a wheel, and imports
that point one way (ui/, eval/ → ingest/ → rag/)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

LAYERS = {"rag": set(), "ingest": {"rag"}, "eval": {"rag", "ingest"}, "ui": {"rag", "ingest"}}
EDGE = {"rag/cli.py"}  # the command group registers the other packages' commands by name, at run time


def test_the_public_api_loads_on_first_use():
    code = ("import sys, rag\n"
            "assert not any(m.startswith(('langchain', 'chromadb', 'rag.assistant')) for m in sys.modules)\n"
            "from rag import *\n"
            "assert Assistant.__module__ == 'rag.assistant' and PolicyRetriever.__module__ == 'rag.langchain_retriever'\n"
            "assert issubclass(PolicyRagError, Exception) and Settings().top_k > 0\n"
            "print(sorted(rag.__all__))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert {"Assistant", "Settings", "Answer", "Citation", "Clause", "Hit", "PolicyRagError",
            "PolicyRetriever"} <= set(eval(out))  # noqa: S307 - our own printed list
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        import rag

        rag.Nope  # noqa: B018


def test_a_wheel_carries_the_prompts(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("policy_rag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"rag/prompt_files/{p.name}" for p in (REPO / "prompts").glob("*.txt")} <= set(names)
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "rag").rglob("*.py")} <= set(names)
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import rag.prompts as p; assert p.__file__.startswith(%r); "
            "print(p.render('source_block.zh.txt', n=1, title='t', label='一、', text='x'))") % str(unpacked)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(unpacked)},
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith('<source id="1" title="t" clause="一、">')


def _imports(path: Path) -> set[str]:
    """Top-level packages a module imports (at module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_point_one_way(package):
    backwards = {}
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        wrong = (_imports(path) & set(LAYERS)) - LAYERS[package] - {package}
        if wrong and rel not in EDGE:
            backwards[rel] = sorted(wrong)
    assert not backwards, backwards


def _module_graph(package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (anywhere in it)."""
    modules = {}
    for path in (REPO / package).rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps |= {node.module} & set(modules)
                deps |= {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & set(modules)
        graph[name] = deps - {name}
    return graph


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_import_cycles_inside_a_package(package):
    graph = _module_graph(package)
    assert graph, package
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " → ".join(path[path.index(module):] + [module])
        if module not in done:
            for dep in sorted(graph[module]):
                visit(dep, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])
