"""``kill -9`` at many points of tile, train and predict, then a rerun: byte-identical to an uninterrupted run.

Each stage runs as a real ``riotvit`` process and is killed with SIGKILL (no cleanup, no handler)
when its work folder reaches a given point: after the n-th journalled tile block, after a
training checkpoint (and a moment later, inside the next write), part-way through a prediction.
The rerun of the same command must finish and give the same bytes as a run that was never
interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pipeline_fixtures import make_world, tiny_config

from riotvit.train.trainer import train

CLI = [sys.executable, "-c", "from riotvit.cli import main; main()"]


def _cli(argv: list[str]) -> None:
    r = subprocess.run(CLI + argv, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def _kill_when(argv: list[str], ready: Callable[[], bool], delay: float = 0.0, timeout: float = 600) -> bool:
    """Run the CLI and SIGKILL it once ``ready()`` holds (plus ``delay`` s); False if it finished first."""
    p = subprocess.Popen(CLI + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while p.poll() is None:
            if ready():
                time.sleep(delay)
                if p.poll() is not None:
                    return False
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                return True
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(argv)
            time.sleep(0.005)
        return False
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _killed_then_rerun(argv: list[str], out: Path, ready: Callable[[], bool], delay: float = 0.0) -> bool:
    """Kill the stage at ``ready`` (+ ``delay``), then rerun it; True if the kill landed before it published.

    A kill that comes after the output was renamed into place (the process was only exiting) leaves a
    finished output, which riotvit rightly refuses to overwrite without --overwrite: nothing to rerun.
    """
    landed = _kill_when(argv, ready, delay) and not out.exists()
    if not out.exists():
        _cli(argv)
    return landed


def _same_bytes(a: Path, b: Path, names: list[str]) -> None:
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), f"{n} differs after kill -9 and rerun"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("killworld")
    return root, make_world(root, size_km=4.0, crop_px=32)


def test_tile_killed_after_many_blocks_resumes_byte_identical(world):
    root, w = world
    args = lambda out: ["tile", str(w.sample / "city.tif"), "--out", str(out), "--crop-px", "32", "--overlap",  # noqa: E731
                        "0.5", "--block-crops", "2", "--quiet"]
    ref = root / "tiles_ref"
    _cli(args(ref))
    killed = 0
    for n in (1, 4, 9, 20):
        out = root / f"tiles_k{n}"
        parts = out.with_name(out.name + ".partial") / "parts"
        killed += _killed_then_rerun(args(out), out, lambda parts=parts, n=n: parts.is_dir() and
                                     len(list(parts.glob("block_*"))) >= n)
        _same_bytes(ref, out, ["chips.npy", "masks.npy", "tiles.parquet", "tileset.json"])
        assert not out.with_name(out.name + ".partial").exists()
    assert killed >= 3  # the kills really landed mid-run


def test_train_killed_at_and_between_checkpoints_resumes_byte_identical(world, tmp_path):
    root, w = world
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(tiny_config(epochs=3).model_dump(mode="json")))
    args = lambda out: ["train", str(w.tiles), str(w.samples), "--out", str(out), "--config", str(cfg_file),  # noqa: E731
                        "--quiet"]
    ref = tmp_path / "ref"
    _cli(args(ref))
    killed = 0
    for i, delay in enumerate((0.0, 0.05, 0.3)):
        out = tmp_path / f"k{i}"
        ckpt = out.with_name(out.name + ".partial") / "checkpoint.safetensors"
        killed += _killed_then_rerun(args(out), out, ckpt.is_file, delay)
        _same_bytes(ref, out, ["model.safetensors", "background.safetensors"])
        assert not out.with_name(out.name + ".partial").exists()
    assert killed >= 2


def test_predict_killed_part_way_reruns_byte_identical(world, tmp_path):
    root, w = world
    bundle = train(w.tiles, w.samples, tmp_path / "model", tiny_config(epochs=1)).path
    import rasterio

    with rasterio.open(w.sample / "city.tif") as s:
        b = s.bounds
    bbox = f"{b.left + 300},{b.bottom + 300},{b.right - 300},{b.top - 300}"
    args = lambda out: ["predict", "--model", str(bundle), "--region", bbox, "--region-crs", "EPSG:32737",  # noqa: E731
                        "--imagery", str(w.sample / "city.tif"), "--out", str(out), "--tta", "2", "--batch-size", "16",
                        "--quiet"]
    ref = tmp_path / "ref"
    _cli(args(ref))
    killed = 0
    for i, delay in enumerate((0.0, 0.3, 0.8)):
        out = tmp_path / f"k{i}"
        partial = out.with_name(out.name + ".partial")
        killed += _killed_then_rerun(args(out), out, partial.is_dir, delay)
        _same_bytes(ref, out, ["risk.tif", "cells.geojson"])
        assert not partial.exists()
    assert killed >= 2
