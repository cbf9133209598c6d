"""``riotvit run`` / ``riotvit demo``: the whole pipeline end to end (a reduced city), the manifest
that skips unchanged stages, ``--from``, pipeline file errors, and the Nairobi pipeline on real data."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import ConfigError
from riotvit.pipeline import run_pipeline

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "pipelines" / "demo.yaml"
SMALL = ["sample.size_km=6", "train.optim.epochs=12", "predict.tta=2", "explain.nsamples=8"]
SMALL_TTA1 = [s if not s.startswith("predict.tta") else "predict.tta=1" for s in SMALL]  # one predict option changed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("demo") / "run"
    res = run_pipeline(DEMO, run, sets=SMALL)
    return run, res


def test_demo_runs_every_stage_into_one_folder(demo_run):
    run, res = demo_run
    assert [s.name for s in res.stages] == ["sample", "tile", "join", "train", "evaluate", "predict"]
    assert all(s.status == "ran" for s in res.stages)
    for rel in ("sample/city.tif", "tiles/tileset.json", "samples.parquet", "model/model.safetensors", "model/metrics.json",
                "model/model_card.md", "evaluation/metrics.json", "predict/risk.tif", "predict/cells.gpkg",
                "predict/drivers.tif", "predict/attention.tif", "predict/shap_bar.png", "riotvit.qgs", "manifest.json"):
        assert (run / rel).is_file(), rel
    man = json.loads((run / "manifest.json").read_text())
    assert set(man["stages"]) == {"sample", "tile", "join", "train", "evaluate", "predict"}
    tile = man["stages"]["tile"]
    assert len(tile["key"]) == 64 and len(tile["inputs"]["raster0"]) == 64 and tile["config"]["crop_px"] == 64
    # the tile set covers the reduced city: 6 km -> 17 x 17 stride cells of 336 m, 16 x 16 crops + edges
    ts = json.loads((run / "tiles" / "tileset.json").read_text())
    assert ts["grid"]["crop_px"] == 64 and ts["n_crops"] >= 16 * 16
    # the top-level project points, relative to itself, at the files under predict/ and sample/
    import xml.etree.ElementTree as ET

    sources = [el.text.split("|")[0] for el in ET.parse(run / "riotvit.qgs").iter("datasource")]
    assert {"./predict/risk.tif", "./predict/cells.gpkg", "./predict/drivers.tif", "./sample/city.tif"} <= set(sources)
    assert all((run / src).is_file() for src in sources)


def test_demo_metrics_beat_the_prevalence_baseline(demo_run):
    """The demo tests forward in time: trained on 2019-2021, scored at 2022 next to every baseline."""
    run, _ = demo_run
    m = json.loads((run / "model" / "metrics.json").read_text())
    assert m["protocol"]["name"] == "rolling-origin x spatial blocks" and m["protocol"]["horizon_days"] == 365
    (origin,) = m["protocol"]["origins"]
    assert origin["origin"] == "2022-06-15" and origin["train_origins"] == ["2019-06-15", "2020-06-15", "2021-06-15"]
    held = m["scores"]["2022-06-15"]["held-out blocks"]
    assert {"riotvit", "history + census", "persistence", "prevalence"} <= set(held)
    assert 0 < held["prevalence"]["aupr"] < held["riotvit"]["aupr"] <= 1
    assert held["riotvit"]["n"] == held["persistence"]["n"] == origin["n_crops"]  # the same crops
    ev = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert ev["scores"]["2022-06-15"]["held-out blocks"]["riotvit"]["aupr"] == pytest.approx(held["riotvit"]["aupr"])
    card = (run / "model" / "model_card.md").read_text()
    for words in ("Intended use", "never", "ACLED", "2022-06-15", "rolling-origin x spatial blocks", "persistence"):
        assert words in card


def test_predicted_cells_cover_the_city_with_drivers(demo_run):
    run, _ = demo_run
    cells = gpd.read_file(run / "predict" / "cells.gpkg")
    with rasterio.open(run / "sample" / "city.tif") as src:
        b = src.bounds
    x0, y0, x1, y1 = cells.total_bounds
    assert x0 <= b.left + 672 and x1 >= b.right - 672 and y0 <= b.bottom + 672 and y1 >= b.top - 672
    assert cells["riot_probability"].between(0, 1).all() and cells["riot_probability"].std() > 0.01
    assert {"driver_1", "driver_1_effect", "shap_image"} <= set(cells.columns)
    with rasterio.open(run / "predict" / "risk.tif") as r:
        assert r.crs.to_epsg() == 32737 and r.count == 3


def test_rerun_skips_unchanged_stages_and_from_forces(demo_run):
    run, _ = demo_run
    again = run_pipeline(DEMO, run, sets=SMALL)
    assert [s.status for s in again.stages] == ["skipped"] * 6
    before = (run / "predict" / "risk.tif").stat().st_mtime_ns
    changed = run_pipeline(DEMO, run, sets=SMALL_TTA1)
    assert [s.status for s in changed.stages] == ["skipped"] * 5 + ["ran"]
    assert (run / "predict" / "risk.tif").stat().st_mtime_ns != before
    forced = run_pipeline(DEMO, run, sets=SMALL_TTA1, from_stage="evaluate")
    assert [s.status for s in forced.stages] == ["skipped"] * 4 + ["ran", "ran"]


@pytest.mark.qgis
def test_demo_project_opens_every_layer_in_qgis(demo_run, tmp_path):
    from qgis_support import qgis_available, run_qgis_check

    if not qgis_available():
        pytest.skip("QGIS (python3-qgis) is not installed")
    run, _ = demo_run
    png = tmp_path / "demo.png"
    p = run / "predict"
    rep = run_qgis_check([p / "risk.tif", p / "drivers.tif", p / "cells.gpkg", run / "riotvit.qgs"], render=png)
    assert all(f["valid"] and f["crs"] for f in rep["files"])
    (proj,) = rep["projects"]
    assert proj["read_ok"] and not proj["absolute_paths"] and len(proj["layers"]) >= 5
    assert all(ly["valid"] for ly in proj["layers"])
    # a square city on an 800 x 600 canvas: the map fills its 600 x 600 middle
    assert rep["render"]["errors"] == [] and rep["render"]["non_background_fraction"] > 0.65


def test_pipeline_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstagez: [tile]\n")
    with pytest.raises(ConfigError, match="stagez"):
        run_pipeline(bad, tmp_path / "r")
    bad.write_text("name: x\nstages: [join, tile]\n")
    with pytest.raises(ConfigError, match="pipeline order"):
        run_pipeline(bad, tmp_path / "r")
    with pytest.raises(ConfigError, match="unknown stage"):
        run_pipeline(DEMO, tmp_path / "r", from_stage="trian")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        run_pipeline(DEMO, tmp_path / "r", sets=["sample.size_km"])
    r = CliRunner().invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "no such file" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["run", str(bad)])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1


def test_nairobi_pipeline_builds_the_training_table(real, tmp_path):
    real("worldpop_nairobi")
    real("acled_sample_2022")
    real("kenya_counties_census2019")
    res = run_pipeline(REPO / "pipelines" / "nairobi.yaml", tmp_path / "nbo", until="join")
    assert [s.name for s in res.stages] == ["tile", "join"]
    import pandas as pd

    df = pd.read_parquet(tmp_path / "nbo" / "samples.parquet")
    assert len(df) > 500 and (df["date"].astype(str).str[:10] == "2022-01-01").all()
    assert df["riot"].sum() >= 1 and df["census_pop2019_total"].notna().mean() > 0.5
    ts = json.loads((tmp_path / "nbo" / "tiles" / "tileset.json").read_text())
    assert ts["grid"]["epsg"] == 32737 and ts["grid"]["crop_px"] == 8 and ts["grid"]["gsd_m"] == 84.0  # UTM 37S
