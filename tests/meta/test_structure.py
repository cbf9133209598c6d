"""The shape of the code: stage packages, no import cycles, modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "riotvit"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """riotvit module -> riotvit modules it imports at module level (what runs on import)."""
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:  # module level only: lazy imports are not edges
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("riotvit"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("riotvit")]
            for t in targets:
                if t in mods and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_every_stage_command_has_its_package():
    """A newcomer finds the code of ``riotvit X`` in ``riotvit/X/``."""
    for stage in ("synth", "tile", "join", "train", "predict", "explain", "publish", "pipeline", "cli"):
        assert (PKG / stage / "__init__.py").is_file(), stage
    for old in ("raster", "inference", "training", "models", "events", "census", "sample", "data"):
        assert not (PKG / old).exists(), f"riotvit/{old}/ should have moved into its stage package"


def test_modules_stay_readable():
    """No module over ~400 lines unless its docstring says why (a line starting 'Size:')."""
    long = []
    for p in PKG.rglob("*.py"):
        text = p.read_text()
        n = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > MAX_LINES and "Size:" not in doc:
            long.append(f"{p.relative_to(PKG.parent)} ({n} lines)")
    assert not long, "modules over 400 lines without a reason in their docstring: " + ", ".join(long)


def test_cli_import_stays_light():
    code = ("import sys, riotvit.cli; heavy = [m for m in ('torch', 'shap', 'timm', 'geopandas', 'rasterio') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import riotvit.cli loaded {out}"


def test_library_imports_riotvit_at_the_top():
    """Lazy imports are for torch, shap and friends; riotvit's own modules are imported at the top
    of library modules. The CLI is the exception: it must import without the heavy libraries."""
    inside = []
    for p in PKG.rglob("*.py"):
        if "cli" in p.relative_to(PKG).parts:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("riotvit"):
                        inside.append(f"{p.relative_to(PKG.parent)}:{sub.lineno}")
    assert not inside, "riotvit imports inside functions: " + ", ".join(inside)
