"""Every name the README, CONTRIBUTING, docs/ and the notebook mention exists.

Docs rot silently when code moves. These tests read the prose and check that each library name
(``riotvit.x.y``, ``from riotvit.x import a``), each repository path (``riotvit/tile/``,
``pipelines/demo.yaml``) and each CLI command (``riotvit tile``) it mentions is real.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOP_DIRS = ("riotvit", "tests", "docs", "bench", "pipelines", "configs", "data_catalog", "notebooks")


def _documents() -> dict[str, str]:
    docs = {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8")
            for p in [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md")),
                      REPO / "bench" / "README.md"] if p.is_file()}
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        docs[nb.relative_to(REPO).as_posix()] = "\n".join("".join(c["source"]) for c in cells)
    return docs


DOCS = _documents()


def _resolve(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_library_names_exist(doc):
    text = DOCS[doc]
    names = set(re.findall(r"(?<![\w/.-])(riotvit(?:\.\w+)+)", text))
    imports = re.findall(r"from (riotvit[\w.]*) import \(([\w,\s]+)\)", text)
    imports += re.findall(r"from (riotvit[\w.]*) import ([\w, ]+)$", text, flags=re.M)
    for module, items in imports:
        names |= {f"{module}.{n.strip()}" for n in items.replace("\n", ",").split(",") if n.strip()}
    names = {n for n in names if not n.endswith((".qgs", ".py", ".md", ".yaml", ".json"))}
    missing = sorted(n for n in names if not _resolve(n))
    assert not missing, f"{doc} mentions names that do not exist: {missing}"


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_repository_paths_exist(doc):
    paths = set(re.findall(r"`((?:%s)/[\w./-]*)`" % "|".join(TOP_DIRS), DOCS[doc]))
    paths |= set(re.findall(r"\]\(((?:%s)/[\w./-]*)\)" % "|".join(TOP_DIRS), DOCS[doc]))
    paths = {p for p in paths if not re.search(r"[A-Z]{1,2}(/|\.|$)|\*|\.\.\.", p)}  # placeholders: riotvit/X/, *.qml
    missing = sorted(p for p in paths if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"{doc} mentions paths that do not exist: {missing}"


def test_cli_commands_exist():
    from typer.main import get_command

    from riotvit.cli import app

    root = get_command(app)
    known = set(root.commands)
    mentioned = set()
    for text in DOCS.values():
        # as code: `riotvit X ...` in backticks, or a command line in a fenced block
        mentioned |= set(re.findall(r"`riotvit ([a-z]+)\b", text))
        # fences paired in order (an opening fence of another language must not pair with the next block)
        for lang, block in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
            if lang in ("", "bash", "sh", "console"):
                mentioned |= set(re.findall(r"^\s*(?:\$ )?(?:\.venv/bin/)?riotvit ([a-z]+)\b", block, flags=re.M))
    unknown = sorted(m for m in mentioned if m not in known)
    assert not unknown, f"docs mention commands that do not exist: {unknown} (known: {sorted(known)})"
    assert "demo" in known
