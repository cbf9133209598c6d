"""Every bad input gets one clean line: non-zero exit, the input named, no traceback, nothing left.

The cases are in ``fuzz_cases.py``; this file runs each through the CLI in-process and checks the
promise of ``riotvit`` to a stranger: a failure is one line on stderr that names what was wrong,
a non-zero exit, and no new file or folder (no ``.partial`` that looks like progress, no stray
temporary file).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fuzz_cases import CASES, World
from pipeline_fixtures import make_world, tiny_config
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.train.trainer import train

runner = CliRunner()

KNOWN_FAILING: dict[str, str] = {}
"""Cases that still fail, with why and whose fix it is; strict, so a fixed case fails as XPASS and must
be removed from here."""


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[case.id])] if case.id in KNOWN_FAILING else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("fuzzworld")
    w = make_world(root, size_km=3.0, crop_px=32)
    bundle = train(w.tiles, w.samples, root / "model", tiny_config(epochs=1)).path
    return World(w.sample, w.tiles, w.samples, bundle)


def _snapshot(*roots: Path) -> set[str]:
    return {os.path.join(dp, n) for r in roots for dp, dns, fns in os.walk(r) for n in dns + fns}


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_one_clean_line(case, world, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # pipelines/demo.yaml, ./data_catalog
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = case.argv(world, scratch)
    before = _snapshot(scratch, world.sample.parent)
    r = runner.invoke(app, argv)
    after = _snapshot(scratch, world.sample.parent)
    err = r.stderr.strip()
    assert r.exit_code != 0, f"exit 0 for {argv}: {r.output[-500:]}"
    assert r.exception is None or isinstance(r.exception, SystemExit), f"uncaught {r.exception!r}"
    assert "Traceback" not in r.output and "Traceback" not in err, err[-2000:]
    assert len(err.splitlines()) == 1, f"not one line:\n{err[-2000:]}"
    if case.mentions:
        assert case.mentions.lower() in err.lower(), f"the error does not name {case.mentions!r}: {err}"
    assert after == before, f"left behind: {sorted(after - before)[:5]}"
