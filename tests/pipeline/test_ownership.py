"""``riotvit run`` never deletes a file it did not create: a user's file in a stage's output stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riotvit.errors import OutputExistsError
from riotvit.pipeline import run_pipeline

DEMO = Path(__file__).resolve().parents[2] / "pipelines" / "demo.yaml"
TINY = ["sample.size_km=2"]


def test_a_user_file_in_a_stage_output_stops_the_run_and_survives(tmp_path):
    run = tmp_path / "run"
    (run / "tiles").mkdir(parents=True)
    mine = run / "tiles" / "notes.txt"
    mine.write_text("my notes")
    with pytest.raises(OutputExistsError, match=r"tiles/notes\.txt: not written by this pipeline.*move it out"):
        run_pipeline(DEMO, run, sets=TINY, until="tile")
    assert mine.read_text() == "my notes" and not (run / "tiles" / "tileset.json").exists()
    mine.unlink()
    (run / "tiles").rmdir()

    run_pipeline(DEMO, run, sets=TINY, until="tile")  # into a clean folder: runs
    man = json.loads((run / "manifest.json").read_text())
    assert "tiles/tileset.json" in man["stages"]["tile"]["files"]["tiles"]
    again = run_pipeline(DEMO, run, sets=TINY, until="tile", from_stage="tile")  # its own files: replaced
    assert again.record("tile").status == "ran"

    mine = run / "tiles" / "sub" / "keep.tif"
    mine.parent.mkdir()
    mine.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match=r"tiles/sub/keep\.tif: not written by this pipeline"):
        run_pipeline(DEMO, run, sets=TINY, until="tile", from_stage="tile")
    assert mine.read_bytes() == b"user data" and (run / "tiles" / "tileset.json").is_file()
