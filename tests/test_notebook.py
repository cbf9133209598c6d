"""The quickstart notebook uses only the public API, is committed executed, and runs top to bottom.

Two fast tests read the committed file (no execution): its code reaches riotvit only through
``riotvit.<name in __all__>``, and every code cell carries its outputs (plots as PNG). The slow test
executes it on a small city, so it never goes stale.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

import riotvit

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
MAX_BYTES = 1_500_000


def _cells(kind: str) -> list[dict]:
    return [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == kind]


def _text(lines: str | list[str]) -> str:
    """A notebook string field, stored as one string or a list of lines."""
    return lines if isinstance(lines, str) else "".join(lines)


def _python(source: str) -> str:
    """A code cell's source without IPython magics and shell escapes (``%matplotlib``, ``!ls``)."""
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in source.splitlines())


def _chain(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    """``riotvit.a.b`` -> (Name riotvit, ["a", "b"])."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, attrs[::-1]


def private_uses(source: str) -> list[str]:
    """Every way ``source`` reaches riotvit other than ``import riotvit`` and ``riotvit.<name in __all__>``.

    Forbidden: ``from riotvit[.x] import ...``, ``import riotvit.x``, ``riotvit.a`` with ``a`` not in
    ``riotvit.__all__``, and ``riotvit.a.b`` where ``b`` is a submodule of a stage package
    (``riotvit.train.trainer``). Attributes of what a public name returns are the user's own.
    """
    tree = ast.parse(_python(source))
    aliases: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "riotvit":
            found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "riotvit":
                    aliases.add(a.asname or "riotvit")
                elif a.name.startswith("riotvit."):
                    found.append(f"import {a.name}")
    public = set(riotvit.__all__)
    attributes = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    inner = {id(n.value) for n in attributes}
    for node in attributes:
        if id(node) in inner:  # part of a longer chain: checked with it
            continue
        root, attrs = _chain(node)
        if not (isinstance(root, ast.Name) and root.id in aliases):
            continue
        if attrs[0] not in public or (len(attrs) > 1 and _is_submodule(attrs[0], attrs[1])):
            found.append("riotvit." + ".".join(attrs))
    return sorted(set(found))


def _is_submodule(package: str, name: str) -> bool:
    spec = importlib.util.find_spec(f"riotvit.{package}")
    if spec is None or spec.submodule_search_locations is None:
        return False
    return importlib.util.find_spec(f"riotvit.{package}.{name}") is not None


def test_private_use_checker_catches_internal_imports():
    bad = ("from riotvit.tile.plan import TileConfig\nimport riotvit.train\nimport riotvit\n"
           "riotvit.config.project_file('x')\nriotvit.train.trainer.train\nriotvit._EXPORTS\n")
    assert private_uses(bad) == ["from riotvit.tile.plan import TileConfig", "import riotvit.train",
                                 "riotvit._EXPORTS", "riotvit.config.project_file", "riotvit.train.trainer.train"]
    good = ("%matplotlib inline\nimport riotvit as rv\nt = rv.tile(['a.tif'], 'out', rv.TileConfig(crop_px=64))\n"
            "print(t.path.name, rv.TrainConfig.model_fields, rv.tile.TileConfig)\n")
    assert private_uses(good) == []


def test_notebook_uses_only_the_public_api():
    code = _cells("code")
    assert any(re.search(r"^import riotvit$", _text(c["source"]), re.M) for c in code)
    found = {i: private_uses(_text(c["source"])) for i, c in enumerate(code)}
    assert not {i: f for i, f in found.items() if f}, "code cells reach riotvit internals (use riotvit.<name>)"
    used = {m for c in code for m in re.findall(r"\briotvit\.(\w+)", _text(c["source"]))}
    assert {"generate_sample", "tile", "join", "train", "evaluate", "explain", "resolve_region"} <= used


def test_committed_notebook_has_its_outputs():
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    code = _cells("code")
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), "execute the notebook top to bottom and commit it with outputs"
    outputs = [o for c in code for o in c["outputs"]]
    assert all(c["outputs"] for c in code)
    assert not [o for o in outputs if o["output_type"] == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the city, the risk and attribution maps, and the map.png predict writes
    text = "".join(_text(o.get("text", "")) + _text(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "riot crops" in text and "crops/s" in text and "completeness" in text
    assert re.search(r"P\(≥ 1 riot\), \d{4}-\d\d-\d\d → \d{4}-\d\d-\d\d", text)  # the forecast window
    assert "expected_riots" in text and "ward_name" in text  # the admin.csv rows
    assert "/tmp/" not in text and "/work/" not in text  # no machine-specific paths in the committed outputs


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("RIOTVIT_NB_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("RIOTVIT_NB_SIZE_KM", "4")
    monkeypatch.setenv("RIOTVIT_NB_EPOCHS", "4")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the city, the risk/attribution maps and map.png, inline
    text = "".join(o.get("text", "") for o in outputs)
    assert "riot crops" in text and "crops/s" in text and "completeness" in text
    pred = tmp_path / "work" / "predict"
    for name in ("risk.tif", "drivers.tif", "cells.gpkg", "riotvit.qgs", "map.png", "admin.csv", "admin.gpkg", "run.json"):
        assert (pred / name).is_file(), name
    assert (pred / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    admin = (pred / "admin.csv").read_text(encoding="utf-8").splitlines()
    assert "expected_riots" in admin[0] and len(admin) > 2  # a header and the sample's wards
    window = json.loads((pred / "run.json").read_text(encoding="utf-8"))["window"]
    assert window["label"] in text  # the notebook prints the window the prediction states
