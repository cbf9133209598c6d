"""``import riotvit`` exposes every stage as one call with its config, and stays light."""

from __future__ import annotations

import inspect
import subprocess
import sys

import riotvit


def test_stage_functions_and_configs_are_public_names():
    from riotvit.explain.run import explain
    from riotvit.join.stage import JoinConfig, join
    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile
    from riotvit.train.bundle import Bundle
    from riotvit.train.config import TrainConfig
    from riotvit.train.evaluate import evaluate_bundle
    from riotvit.train.trainer import train

    for package, fn in ((riotvit.tile, tile), (riotvit.join, join), (riotvit.train, train),
                        (riotvit.predict, predict), (riotvit.explain, explain)):
        assert callable(package)
        assert inspect.signature(package) == inspect.signature(fn)
    assert riotvit.evaluate is evaluate_bundle
    assert riotvit.load_bundle == Bundle.open
    assert (riotvit.TileConfig, riotvit.JoinConfig, riotvit.TrainConfig, riotvit.PredictConfig) == (
        TileConfig, JoinConfig, TrainConfig, PredictConfig)
    assert riotvit.tile.TileConfig is TileConfig  # still the package
    assert set(riotvit.__all__) >= {"tile", "join", "train", "evaluate", "predict", "explain", "load_bundle"}
    for name in riotvit.__all__:
        assert getattr(riotvit, name) is not None


def test_calling_a_stage_package_runs_the_stage(monkeypatch):
    import riotvit.tile.tiler as tiler

    seen = {}
    monkeypatch.setattr(tiler, "tile", lambda *a, **k: seen.setdefault("call", (a, k)) and "ran")
    assert riotvit.tile(["a.tif"], "out", overwrite=True) == "ran"
    assert seen["call"] == ((["a.tif"], "out"), {"overwrite": True})


def test_import_riotvit_does_not_load_torch_or_gdal():
    code = "import sys, riotvit; print(sorted(m for m in ('torch', 'rasterio', 'geopandas', 'shap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
