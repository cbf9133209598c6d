"""``pipelines/dhaka.yaml`` end to end on the real Sentinel-2 composites and the Bangladesh ACLED
export in ../shared/data/real (skipped when absent), with a 2-epoch model to stay fast, then
``riotvit score`` on its maps."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

from riotvit.catalog import Catalog
from riotvit.errors import EventsError
from riotvit.pipeline import run_pipeline
from riotvit.score import score_prediction
from riotvit.thin import assess_thin_data
from riotvit.tile.tileset import TileSet

REPO = Path(__file__).resolve().parents[2]
DHAKA = REPO / "pipelines" / "dhaka.yaml"
AREAS = ("korail", "mirpur", "old_dhaka")
FAST = ["train.optim.epochs=2", "train.eval.cv_folds=null", "train.eval.background_samples=8"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dhaka_run(tmp_path_factory):
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import real_path

    real_path("sentinel2_dhaka", "korail_s2_2023.tif")
    acled = real_path("acled_bangladesh_2022_2023", "acled_bangladesh_2022_2023.csv")
    root = tmp_path_factory.mktemp("dhaka")
    # the repository's Dhaka catalog entries, pointed at wherever the shared files are
    cat = root / "catalog"
    cat.mkdir()
    for f in sorted((REPO / "data_catalog").glob("real_*dhaka*.yaml")) + [REPO / "data_catalog" / "real_acled_bangladesh.yaml"]:
        (cat / f.name).write_text(f.read_text().replace("../../shared/data/real", str(acled.parents[1])))
    sets = [f"catalog={cat}", *FAST]
    return root / "run", run_pipeline(DHAKA, root / "run", sets=sets), sets, cat, acled


def test_catalog_holds_three_dates_of_three_areas(dhaka_run):
    *_, cat, _ = dhaka_run
    entries = Catalog.load(cat).entries
    rasters = [r for r in entries.values() if r.entry.kind == "raster"]
    assert len(rasters) == 9
    assert {r.entry.acquisition_date for r in rasters} == {dt.date(y, 3, 16) for y in (2021, 2022, 2023)}
    assert {r.id.rsplit("_", 1)[0] for r in rasters} == {f"s2_dhaka_{a}" for a in AREAS}
    assert all(r.path.is_file() and r.entry.bands == ["red", "green", "blue", "nir"] for r in rasters)


def test_dhaka_trains_as_of_2023_and_predicts_as_of_2024(dhaka_run):
    run, res, *_ = dhaka_run
    assert [s.name for s in res.stages] == ["tile", "join", "train", "evaluate", "predict"]
    ts = TileSet.open(run / "tiles")
    assert ts.grid.epsg == 32646 and ts.grid.crop_m == 672
    # three 5 x 5 km areas: 7-8 cells a side each, minus the UTM-skewed edges that are masked
    assert 150 <= len(ts) <= 200
    assert [str(d) for d in ts.tiles["date"].unique()] == ["2023-01-01"]
    stats = ts.info.stats
    assert 500 < stats["red"]["mean"] < 2000 and 1500 < stats["nir"]["mean"] < 4000  # reflectance x 10000
    join = res.record("join").summary
    # riots + protests in 2023 at precision-1 points inside the three areas: a handful of cells
    assert join["rows"] == len(ts) and 4 <= join["riot_crops"] <= 15
    metrics = json.loads((run / "model" / "metrics.json").read_text())
    fold = next(iter(metrics["splits"].values()))
    assert {"riotvit", "prevalence", "persistence", "history_census"} <= set(fold["models"])
    held = fold["models"]["riotvit"]["riot"]
    assert 30 <= held["n"] <= 45 and held["n_pos"] < 5  # one held-out fold of 5: AUPR is undefined or noise
    assert held["aupr"] is None or 0 <= held["aupr"] <= 1
    thin = assess_thin_data(held["n_pos"], held["n"])
    assert thin.thin and thin.sentence.startswith(f"Data too thin for a meaningful AUPR: {held['n_pos']} positive crop")
    meta = json.loads((run / "predict" / "run.json").read_text())
    assert meta["date"] == "2024-01-01" and meta["crs"] == "EPSG:32646"
    assert {Path(i["path"]).name for i in meta["imagery"]} == {f"{a}_s2_2023.tif" for a in AREAS}
    with rasterio.open(run / "predict" / "risk.tif") as src:
        assert src.crs.to_epsg() == 32646
    cells = gpd.read_file(run / "predict" / "cells.gpkg", layer="cells")
    assert len(cells) == meta["counts"]["predicted_crops"] and cells["riot_probability"].between(0, 1).all()


@pytest.mark.qgis
def test_dhaka_maps_open_in_qgis(dhaka_run, tmp_path):
    from qgis_support import qgis_available, run_qgis_check

    if not qgis_available():
        pytest.skip("QGIS (python3-qgis) is not installed")
    run, *_ = dhaka_run
    p = run / "predict"
    rep = run_qgis_check([p / "risk.tif", p / "cells.gpkg", run / "riotvit.qgs"], render=tmp_path / "dhaka.png")
    assert [f["crs"] for f in rep["files"]] == ["EPSG:32646"] * 2 and all(f["valid"] for f in rep["files"])
    (proj,) = rep["projects"]
    assert proj["read_ok"] and not proj["absolute_paths"] and all(ly["valid"] for ly in proj["layers"])
    assert sum("imagery s2_dhaka_" in ly["name"] for ly in proj["layers"]) == 3  # the three 2023 composites
    assert rep["render"]["errors"] == [] and rep["render"]["non_background_fraction"] > 0.1


def test_score_refuses_the_2024_forecast_and_scores_the_2023_one(dhaka_run):
    run, _, sets, _, acled = dhaka_run
    with pytest.raises(EventsError, match=r"2022-12-10\.\.2023-12-31 but the forecast window is 2024-01-01\.\.2024-12-30"):
        score_prediction(run / "predict", acled, write=False)
    # the same model mapping the training origin (in-sample: a check of score on real events, not of skill)
    redo = run_pipeline(DHAKA, run, sets=[*sets, "predict.date=2023-01-01", "sources.predict_raster="
                                          "[s2_dhaka_korail_2022, s2_dhaka_mirpur_2022, s2_dhaka_old_dhaka_2022]"])
    assert [s.status for s in redo.stages] == ["skipped"] * 4 + ["ran"]
    rep = score_prediction(run / "predict", acled)
    samples = pd.read_parquet(run / "samples.parquet")
    assert rep.cells == len(samples) and rep.positive_cells == int(samples["riot"].sum())
    assert rep.window.event_types == ("Riots", "Protests") and rep.window.end == dt.date(2023, 12, 31)
    # ACLED's few neighbourhood points: a handful of locations behind all of 2023's events here
    assert 3 <= rep.event_locations < 10 and rep.events_in_window > 20
    assert rep.thin.thin and "fewer than 10 distinct event locations" in rep.thin.sentence
    assert 0 <= rep.model["aupr"] <= 1 and rep.persistence["n"] == rep.cells
