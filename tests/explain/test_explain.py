"""Explanations: SHAP drivers per cell, drivers.tif, plots, completeness, agreement with shap."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from pipeline_fixtures import make_world, tiny_config

from riotvit.errors import BundleError, ConfigError, RegionError
from riotvit.explain.gradients import expected_gradients
from riotvit.explain.stage import ExplainConfig, Explainer, shap_gradient_explainer
from riotvit.join.stage import read_samples
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.predict.region import resolve_region
from riotvit.predict.runner import ModelRunner
from riotvit.publish.cog import validate_cog
from riotvit.tile.plan import SourceSpec
from riotvit.tile.tileset import TileSet
from riotvit.train.bundle import Bundle
from riotvit.train.trainer import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    world = make_world(root)
    model = train(world.tiles, world.samples, root / "model", tiny_config(epochs=2)).path
    return root, world, model


def _region(world):
    with rasterio.open(world.sample / "city.tif") as s:
        b = s.bounds
    return resolve_region(f"{b.left + 900},{b.bottom + 900},{b.right - 900},{b.top - 900}", "EPSG:32737")


@pytest.fixture(scope="module")
def explained(trained):
    root, world, model = trained
    ex = Explainer(model, ExplainConfig(nsamples=8, attention=True))
    res = predict(model, _region(world), root / "explained", PredictConfig(tta=2), imagery=[SourceSpec(world.sample / "city.tif")],
                  explain=ex)
    return res, ex


def test_cells_carry_shap_values_and_top_drivers(explained, trained):
    res, ex = explained
    cells = gpd.read_file(res.path / "cells.gpkg", layer="crops")  # per crop: what the explainer computed
    names = ex.names
    assert len(names) == 42 and "census_coverage" not in names
    for n in ["image", *names]:
        assert f"shap_{n}" in cells.columns
    shap_cols = ["shap_image", *[f"shap_{n}" for n in names]]
    s = cells[shap_cols].to_numpy()
    top = np.argsort(-np.abs(s), axis=1)[:, :3]
    labels = np.array(["image", *names], dtype=object)
    ok = cells["drivers_reliable"].to_numpy().astype(bool)
    assert ok.mean() > 0.5  # exact-efficiency Shapley values: most cells have a clear top driver
    for k in range(3):  # changed with the Shapley drivers: only reliable cells list a ranking
        assert (cells[f"driver_{k + 1}"].to_numpy()[ok] == labels[top[ok, k]]).all()
        v = cells[f"driver_{k + 1}_shap"].to_numpy()[ok]
        assert ((v >= 0) == (cells[f"driver_{k + 1}_effect"].to_numpy()[ok] == "raises risk")).all()
    assert (cells["driver_1"].to_numpy()[~ok] == "no clear driver").all()
    # the cells layer (stride cells, 4 crops each with half overlap): SHAP averaged, drivers ranked again from it
    stride = gpd.read_file(res.path / "cells.gpkg", layer="cells")
    s = stride[shap_cols].to_numpy()
    ok = stride["drivers_reliable"].to_numpy().astype(bool)
    assert ok.any() and (stride["driver_1"].to_numpy()[ok] == labels[np.argmax(np.abs(s), axis=1)[ok]]).all()
    assert stride["summary"].str.contains("; drivers: ").all()
    gj = json.loads((res.path / "cells.geojson").read_text())
    assert set(gj["features"][0]["properties"]) >= {"driver_1", "driver_1_effect", "driver_1_value", "shap_image"}


def test_driver_and_attention_maps_and_plots(explained):
    res, ex = explained
    p = res.path
    for f in ("drivers.tif", "attention.tif"):
        assert validate_cog(p / f) == []
        with rasterio.open(p / f) as r:
            assert r.res == (168.0, 168.0) and r.crs.to_epsg() == 32737  # 672 m / 4 patches
            assert r.transform.c % 336 == 0 and r.read(1, masked=True).count() > 0
    with rasterio.open(p / "attention.tif") as r:
        a = r.read(1, masked=True)
        assert a.min() >= 0 and a.mean() == pytest.approx(1 / 16, rel=0.2)  # shares of 4 x 4 patches
    qml = (p / "drivers.qml").read_text()
    assert "singlebandpseudocolor" in qml
    for png in ("shap_summary.png", "shap_bar.png"):
        img = np.asarray(Image.open(p / png).convert("L"))
        assert img.shape[0] > 300 and img.std() > 10
    run = json.loads((p / "run.json").read_text())
    c = run["explain"]["completeness"]
    assert run["explain"]["cells"] == res.n_predicted and {"mean_abs_gap", "relative_gap"} <= set(c)
    e = run["explain"]
    assert e["estimator"] == "permutation" and e["completeness_gap_median_rel"] < 1e-4 and c["relative_gap"] < 1e-4
    assert 0.5 <= e["top1_seed_agreement"] <= 1 and 0 < e["drivers_reliable_share"] <= e["top1_seed_agreement"]
    assert "drivers.tif" in (p / "riotvit.qgs").read_text()


def test_completeness_along_a_single_path(trained):
    """With one background crop and a fine path, the SHAP values sum to f(x) - f(x')."""
    root, world, model = trained
    runner = ModelRunner(Bundle.open(model), tta=1)
    ts = TileSet.open(world.tiles)
    df, _ = read_samples(world.samples)
    row = df.iloc[[5]]
    chips, masks = ts.read(row["chip_index"].to_numpy())
    x = runner.prepare(chips, masks)
    m = torch.from_numpy(runner.meta_array(row))
    bg = Bundle.open(model).background()
    s = 64
    idx = np.zeros((1, s), dtype=np.int64)
    alpha = ((np.arange(s) + 0.5) / s)[None]
    a = expected_gradients(runner.model, x, m, bg["image"][:1], bg["meta"][:1], draws=(idx, alpha))
    total = float(a.image.sum() + a.meta.sum())
    want = float(a.output[0] - a.expected)
    assert abs(want) > 1e-3 and total == pytest.approx(want, abs=2e-3 + 0.02 * abs(want))


def test_batched_explainer_equals_shap_gradient_explainer(trained):
    root, world, model = trained
    runner = ModelRunner(Bundle.open(model), tta=1)
    ts = TileSet.open(world.tiles)
    df, _ = read_samples(world.samples)
    rows = df.iloc[:6]
    chips, masks = ts.read(rows["chip_index"].to_numpy())
    x = runner.prepare(chips, masks)
    m = torch.from_numpy(runner.meta_array(rows))
    bg = Bundle.open(model).background()
    ours = expected_gradients(runner.model, x, m, bg["image"], bg["meta"], nsamples=20, seed=3)
    ref = shap_gradient_explainer(runner.model, x, m, bg["image"], bg["meta"], 20, 3)
    assert np.corrcoef(ours.meta.ravel(), ref.meta.ravel())[0, 1] > 0.999
    assert np.corrcoef(ours.image.ravel(), ref.image.ravel())[0, 1] > 0.999
    assert ours.expected == pytest.approx(ref.expected, abs=1e-5)


def test_bad_inputs(trained, tmp_path):
    root, world, model = trained
    nobg = tmp_path / "nobg"
    shutil.copytree(model, nobg)
    (nobg / "background.safetensors").unlink()
    with pytest.raises(BundleError, match="no background samples .* retrain with eval.background_samples"):
        Explainer(nobg)
    with pytest.raises(ConfigError, match="unknown feature 'census_unemployment'.*census_unemployment_rate"):
        Explainer(model, ExplainConfig(features=["census_unemployment"]))
    with pytest.raises(RegionError, match="outside the imagery"):
        predict(model, resolve_region("1.0,1.0,1.01,1.01"), tmp_path / "x", imagery=[SourceSpec(world.sample / "city.tif")],
                explain=Explainer(model))
