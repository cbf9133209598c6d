"""Helpers shared by the benchmarks: best-of timing, page-cache warming, peak memory, load.

Kept dependency-free (standard library + NumPy) so every bench can import it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    """Wall-clock times of repeated runs of one thing; ``best`` is what benches report."""

    times: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        s = sorted(self.times)
        return s[len(s) // 2]


def best_of(
    fn: Callable[[int], Any],
    repeat: int,
    before: Callable[[int], None] | None = None,
    after: Callable[[int, Any], None] | None = None,
) -> Timing:
    """Run ``fn(i)`` ``repeat`` times and time each call with ``time.perf_counter``.

    ``before(i)`` and ``after(i, result)`` run outside the timed region (set-up and clean-up,
    e.g. deleting the previous run's output). The result of the last call is kept.
    """
    t = Timing()
    for i in range(repeat):
        if before is not None:
            before(i)
        t0 = time.perf_counter()
        res = fn(i)
        t.times.append(time.perf_counter() - t0)
        if after is not None:
            after(i, res)
        t.result = res
    return t


def warm_page_cache(path: str | Path, chunk: int = 1 << 24) -> int:
    """Read a file once so that timed runs read it from the page cache; returns its size."""
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return n
            n += len(b)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: the high-water mark of the current
    address space. ``ru_maxrss`` is not used there because it survives ``fork`` + ``exec``: a
    child started from a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024  # macOS reports bytes


def run_json_child(argv: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python argv...`` in a fresh process and parse the JSON object it prints last.

    A fresh interpreter is what makes peak-RSS figures comparable between runs: nothing
    allocated by the parent (or by an earlier run) is counted.
    """
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(last)


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (zeros where the OS has none)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (0.0, 0.0, 0.0)


def environment() -> dict[str, Any]:
    """What the figures depend on: CPU count, load, library versions."""
    import numpy as np

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": list(load_average()),
        "numpy": np.__version__,
    }
    try:
        import rasterio

        env["rasterio"] = rasterio.__version__
        env["gdal"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return env


def fmt_rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "inf"


def emit_json(out: dict[str, Any], path: Path | None) -> None:
    """Print a bench's figures as JSON, and write them to ``path`` too when given."""
    text = json.dumps(out, indent=2)
    print(text)
    if path:
        Path(path).write_text(text)
