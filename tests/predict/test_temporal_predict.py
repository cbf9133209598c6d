"""A model that compares two image dates, end to end: trained on a 4-date tile set, mapped with the
previous date found among the imagery or given with --previous-imagery; clear errors otherwise.
Also the admin-unit summary from the CLI."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pipeline_fixtures import make_world, tiny_config
from qgis_support import QGIS_PYTHON, _qgis_env, requires_qgis
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import InputError
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.predict.region import resolve_region
from riotvit.tile.plan import SourceSpec
from riotvit.train.trainer import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    root = tmp_path_factory.mktemp("temporal")
    world = make_world(root, size_km=2.7, crop_px=32, overlap=0.0, all_dates=True)
    cfg = tiny_config(epochs=1, model={"temporal": "stack"}, eval={"protocol": "spatial", "background_samples": 8})
    res = train(world.tiles, world.samples, root / "model", cfg)
    return root, world, res.path


def _bbox(world) -> str:
    with rasterio.open(world.sample / "city.tif") as src:
        b = src.bounds
    return f"{b.left},{b.bottom},{b.right},{b.top}"


def test_previous_date_from_the_imagery_or_given_gives_the_same_map(temporal):
    root, world, model = temporal
    meta = json.loads((model / "bundle.json").read_text())
    assert meta["config"]["model"]["temporal"] == "stack" and meta["model"]["temporal"] == "stack"
    region = resolve_region(_bbox(world), "EPSG:32737")
    before = world.sample / "city_2021-06-15.tif"
    both = predict(model, region, root / "both", PredictConfig(tta=1),
                   imagery=[SourceSpec(world.sample / "city.tif"), SourceSpec(before)])
    given = predict(model, region, root / "given", PredictConfig(tta=1), imagery=[SourceSpec(world.sample / "city.tif")],
                    previous_imagery=[SourceSpec(before)])
    assert both.window["as_of"] == "2022-06-15" and both.n_predicted > 0
    a = gpd.read_file(both.path / "cells.gpkg", layer="cells")
    b = gpd.read_file(given.path / "cells.gpkg", layer="cells")
    np.testing.assert_allclose(a["riot_probability"], b["riot_probability"], atol=1e-6)
    # the previous image matters: compared with 2019 instead of 2021, the map differs
    older = predict(model, region, root / "older", PredictConfig(tta=1), imagery=[SourceSpec(world.sample / "city.tif")],
                    previous_imagery=[SourceSpec(world.sample / "city_2019-06-15.tif")])
    c = gpd.read_file(older.path / "cells.gpkg", layer="cells")
    assert np.abs(a["riot_probability"].to_numpy() - c["riot_probability"].to_numpy()).max() > 1e-4
    run = json.loads((given.path / "run.json").read_text())
    assert [(i["date"], i.get("role")) for i in run["imagery"]] == [("2022-06-15", None), ("2021-06-15", "previous")]
    # the mapped image itself, or a later one, is not a previous date: refused before any pixel is read
    with pytest.raises(InputError, match="imagery being mapped"):
        predict(model, region, root / "bad", PredictConfig(tta=1), imagery=[SourceSpec(before)],
                previous_imagery=[SourceSpec(world.sample / "city_2019-06-15.tif"), SourceSpec(before)])
    with pytest.raises(InputError, match="not before the mapped imagery"):
        predict(model, region, root / "bad", PredictConfig(tta=1), imagery=[SourceSpec(before)],
                previous_imagery=[SourceSpec(world.sample / "city.tif")])
    assert not (root / "bad").exists()


def test_temporal_model_without_a_previous_image_is_one_clear_error(temporal):
    root, world, model = temporal
    region = resolve_region(_bbox(world), "EPSG:32737")
    with pytest.raises(InputError, match="--previous-imagery"):
        predict(model, region, root / "none", PredictConfig(tta=1), imagery=[SourceSpec(world.sample / "city.tif")])
    assert not (root / "none").exists() and not (root / "none.partial").exists()
    r = CliRunner().invoke(app, ["predict", "--model", str(model), "--region", _bbox(world), "--region-crs", "EPSG:32737",
                                 "--imagery", str(world.sample / "city.tif"), "--out", str(root / "cli"), "--quiet"])
    assert r.exit_code != 0 and "previous" in r.output and "Traceback" not in r.output


def test_cli_admin_summary_by_ward(temporal):
    root, world, model = temporal
    out = root / "admin"
    r = CliRunner().invoke(app, [
        "predict", "--model", str(model), "--region", _bbox(world), "--region-crs", "EPSG:32737",
        "--imagery", str(world.sample / "city.tif"), "--previous-imagery", str(world.sample / "city_2021-06-15.tif"),
        "--admin", str(world.sample / "wards.gpkg"), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    admin = gpd.read_file(out / "admin.gpkg", layer="admin")
    cells = gpd.read_file(out / "cells.gpkg", layer="cells")
    assert len(admin) > 1 and admin["coverage"].between(0, 1.0001).all()
    # every cell lies in the wards: the units' expected riots add up to the cells'
    assert admin["expected_riots"].sum() == pytest.approx(cells["expected_events"].sum(), rel=1e-3)
    assert (out / "admin.csv").is_file() and "admin units" in (out / "riotvit.qgs").read_text()
    bad = CliRunner().invoke(app, [
        "predict", "--model", str(model), "--region", _bbox(world), "--region-crs", "EPSG:32737",
        "--imagery", str(world.sample / "city.tif"), "--previous-imagery", str(world.sample / "city_2021-06-15.tif"),
        "--admin", str(world.sample / "wards.gpkg"), "--admin-id", "no_such_column", "--out", str(root / "bad"),
        "--quiet"])
    assert bad.exit_code != 0 and "no_such_column" in bad.output and "Traceback" not in bad.output
    assert not (root / "bad").exists() and not (root / "bad.partial").exists()


@pytest.mark.qgis
@requires_qgis
def test_the_real_prediction_layout_exports_in_qgis_with_its_admin_layer(temporal, tmp_path):
    """The project predict writes (not a hand-made one): its layout exports to PNG in headless QGIS,
    the legend's title is the window and it lists the admin summary."""
    import subprocess
    import tempfile
    from pathlib import Path

    from PIL import Image

    from riotvit.publish.layout import LAYOUT_NAME

    root, world, model = temporal
    out = root / "admin"
    if not out.exists():
        pytest.skip("needs test_cli_admin_summary_by_ward's prediction")
    check = Path(__file__).parents[1] / "publish" / "_qgis_layout_check.py"
    png, report = tmp_path / "layout.png", tmp_path / "layout.json"
    with tempfile.TemporaryDirectory(prefix="riotvit-qgis-") as home:
        done = subprocess.run([QGIS_PYTHON, str(check), str(out / "riotvit.qgs"), LAYOUT_NAME, str(png), str(report)],
                              env=_qgis_env(Path(home)), capture_output=True, text=True, timeout=300)
    assert report.exists(), done.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep["read_ok"] and rep["found"] and rep["export_ok"], rep
    window = json.loads((out / "run.json").read_text())["window"]
    legend = {it["id"]: it for it in rep["items"] if it["id"]}["legend"]
    assert legend["title"] == window["label"] and all(legend["layer_valid"])
    assert any(name.startswith("admin units") for name in legend["layers"])
    with Image.open(png) as im:
        assert len(set(im.convert("RGB").getdata())) > 50
    import shutil

    shutil.copy(png, root / "layout_qgis.png")  # for a person to look at (the module's temporary folder)
