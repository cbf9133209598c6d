"""Artifacts travel: a folder of tile set, samples, bundle and inputs moved elsewhere, used from another directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import rasterio
from pipeline_fixtures import make_world, tiny_config

from riotvit.io import PARTIAL_MARKER
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.predict.region import resolve_region
from riotvit.tile.plan import SourceSpec
from riotvit.train.evaluate import evaluate_bundle
from riotvit.train.trainer import train


def _paths(obj, key="path"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in (key, "population_raster") and isinstance(v, str):
                yield v
            else:
                yield from _paths(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from _paths(v, key)


def test_moved_artifacts_work_from_another_directory(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # every stage is given cwd-relative paths
    world = make_world(Path("w"))
    train(world.tiles, world.samples, "w/model", tiny_config(epochs=1))
    bundle = json.loads(Path("w/model/bundle.json").read_text())
    assert all(not Path(p).is_absolute() for p in _paths(bundle["provenance"]))

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(tmp_path / "here" / "w"), str(moved))
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")

    table, _ = evaluate_bundle(str(moved / "model"))  # tile set and samples found from the bundle
    assert "riotvit" in table.to_dict()["models"]

    with rasterio.open(moved / "sample" / "city.tif") as src:
        b = src.bounds
    region = resolve_region(f"{b.left + 500},{b.bottom + 500},{b.right - 500},{b.top - 500}", "EPSG:32737")
    out = tmp_path / "preds" / "p"
    (out.parent / "p.partial").mkdir(parents=True)  # a killed prediction: cleared, not resumed
    (out.parent / "p.partial" / "risk.tif").write_bytes(b"half")
    (out.parent / "p.partial" / PARTIAL_MARKER).touch()  # riotvit's own working folder (a user's would be refused)
    res = predict(moved / "model", region, out, PredictConfig(tta=1), imagery=[SourceSpec(moved / "sample" / "city.tif")])
    assert not (out.parent / "p.partial").exists()
    assert not any("ACLED" in w for w in res.warnings), res.warnings
    run = json.loads((out / "run.json").read_text())
    assert run["metadata"]["mode"] == "auto" and run["metadata"]["acled"]
    for p in _paths(run):  # one convention: relative to the prediction folder
        assert not Path(p).is_absolute() and (out / p).exists(), p
    assert (out / run["model"]["path"]).resolve() == (moved / "model").resolve()

    other = tmp_path / "acled_copy.csv"
    other.write_text((moved / "sample" / "acled.csv").read_text() + "\n")
    res = predict(moved / "model", region, tmp_path / "preds" / "q", PredictConfig(tta=1),
                  imagery=[SourceSpec(moved / "sample" / "city.tif")], acled=other)
    warn = [w for w in res.warnings if "not the ACLED export the model was trained with" in w]
    assert len(warn) == 1 and "acled_copy.csv" in warn[0] and str(moved / "sample" / "acled.csv") in warn[0]
