"""Pytest-side helpers that open riotvit outputs in real QGIS through ``tests/qgis_harness.py``.

QGIS's Python bindings live in the system interpreter (``/usr/bin/python3``), not in the venv,
so the harness runs as a subprocess and answers with JSON. Tests that use it are marked
``@pytest.mark.qgis`` and ``@requires_qgis`` so they skip cleanly where QGIS is absent.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

QGIS_PYTHON = os.environ.get("RIOTVIT_QGIS_PYTHON", "/usr/bin/python3")
HARNESS = Path(__file__).resolve().with_name("qgis_harness.py")


def _qgis_env(home: Path) -> dict[str, str]:
    """The venv's Python paths removed, headless Qt, and QGIS settings kept out of $HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_RUNTIME_DIR": str(runtime),
    })
    return env


@functools.lru_cache(maxsize=1)
def qgis_available() -> bool:
    """Whether ``/usr/bin/python3`` can import ``qgis.core`` (checked once per session)."""
    if not Path(QGIS_PYTHON).exists():
        return False
    with tempfile.TemporaryDirectory(prefix="riotvit-qgis-") as home:
        try:
            done = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], env=_qgis_env(Path(home)),
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


requires_qgis = pytest.mark.skipif(
    not qgis_available(), reason=f"QGIS python bindings not importable by {QGIS_PYTHON}"
)


def run_qgis_check(
    paths: Iterable[str | Path],
    render: Path | None = None,
    probes: Sequence[tuple[float, float]] = (),
    size: tuple[int, int] = (800, 600),
    timeout: float = 120,
) -> dict:
    """Open ``paths`` (layers and/or ``.qgs`` projects) in QGIS and return the harness report.

    Args:
        paths: rasters, vector files and projects, opened in this order.
        render: write a PNG of the last project (or of the layers) here.
        probes: map coordinates (project CRS) whose rendered colour is reported.
        size: render size in pixels.
        timeout: seconds before the QGIS process is killed.

    Raises:
        RuntimeError: the harness failed; the message carries its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="riotvit-qgis-") as tmp:
        home = Path(tmp)
        out = home / "report.json"
        cmd = [QGIS_PYTHON, str(HARNESS), "--json", str(out)]
        if render is not None:
            cmd += ["--render", str(render), "--size", f"{size[0]}x{size[1]}"]
            for x, y in probes:
                cmd.append(f"--probe={float(x)!r},{float(y)!r}")
        cmd += [str(p) for p in paths]
        try:
            done = subprocess.run(cmd, env=_qgis_env(home), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"QGIS harness timed out after {timeout} s: {exc.stderr!r}") from None
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"QGIS harness failed (exit {done.returncode}): {done.stderr[-4000:]}")
        return json.loads(out.read_text())
