"""``riotvit predict``: maps for a region, consistent with the tile set, deterministic, mergeable."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pipeline_fixtures import make_world, tiny_config
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import BundleError, OutputExistsError, RasterError, RegionError
from riotvit.join.stage import read_samples
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.predict.region import Region, resolve_region
from riotvit.predict.runner import ModelRunner
from riotvit.publish.cog import validate_cog
from riotvit.publish.styles import quantile_classes, risk_class
from riotvit.tile.plan import SourceSpec
from riotvit.tile.tileset import TileSet
from riotvit.train.bundle import Bundle
from riotvit.train.trainer import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    world = make_world(root)
    res = train(world.tiles, world.samples, root / "model", tiny_config(epochs=2))
    return root, world, res.path


def _region(world, frac=(0.1, 0.1, 0.9, 0.9)) -> Region:
    with rasterio.open(world.sample / "city.tif") as src:
        b = src.bounds
    x0 = b.left + frac[0] * (b.right - b.left)
    x1 = b.left + frac[2] * (b.right - b.left)
    y0 = b.bottom + frac[1] * (b.top - b.bottom)
    y1 = b.bottom + frac[3] * (b.top - b.bottom)
    return resolve_region(f"{x0},{y0},{x1},{y1}", "EPSG:32737")


def _imagery(world):
    return [SourceSpec(world.sample / "city.tif")]


@pytest.fixture(scope="module")
def whole(trained):
    root, world, model = trained
    res = predict(model, _region(world), root / "pred", PredictConfig(tta=2), imagery=_imagery(world))
    return res


def test_prediction_folder_holds_valid_styled_layers(whole, trained):
    root, world, model = trained
    p = whole.path
    assert sorted(f.name for f in p.iterdir()) == ["catalog.json", "cells.geojson", "cells.gpkg", "cells.qml", "map.pdf",
                                                  "map.png", "riot-risk-2022-06-15", "riotvit.qgs", "risk.qml",
                                                  "risk.tif", "run.json"]
    # what can be handed on: the page as a picture, the print layout, the STAC catalog of every output
    from PIL import Image

    from riotvit.stac.validate import validate_stac

    with Image.open(p / "map.png") as im:
        assert im.size == (1753, 1240) and len(set(im.convert("RGB").getdata())) > 50
    assert (p / "map.pdf").read_bytes().startswith(b"%PDF")
    assert "<Layout " in (p / "riotvit.qgs").read_text() and "ACLED" in (p / "riotvit.qgs").read_text()
    assert len(validate_stac(p / "catalog.json")) == 2
    item = json.loads((p / "riot-risk-2022-06-15" / "riot-risk-2022-06-15.json").read_text())
    assert item["properties"]["start_datetime"].startswith("2022-06-15")
    assert {"risk.tif", "cells.gpkg", "map.png"} <= {a["href"].split("/")[-1] for a in item["assets"].values()}
    assert {"map.png", "catalog.json"} <= set(json.loads((p / "run.json").read_text())["outputs"])
    assert validate_cog(p / "risk.tif") == []
    with rasterio.open(p / "risk.tif") as r:
        assert r.count == 3 and [d.split(":")[0] for d in r.descriptions] == ["riot_probability", "expected_events",
                                                                              "uncertainty"]
        assert r.units == ("probability", "events", "probability")
        assert r.crs.to_epsg() == 32737 and r.res == (336.0, 336.0) and r.nodata == -9999.0
        assert r.transform.c % 336 == 0 and r.transform.f % 336 == 0  # stride cells on the grid
        prob = r.read(1, masked=True)
        assert prob.min() >= 0 and prob.max() <= 1 and prob.count() > 0
        assert r.overviews(1) == [] or r.overviews(1)[0] == 2
    cells = gpd.read_file(p / "cells.gpkg", layer="cells")
    run = json.loads((p / "run.json").read_text())
    assert run["counts"]["predicted_crops"] == whole.n_predicted > 0 and len(cells) == run["counts"]["cells"] > 0
    assert cells.crs.to_epsg() == 32737
    prob = cells["riot_probability"].to_numpy()
    classes = quantile_classes(prob)
    assert (cells["risk_class"] == risk_class(prob, classes)).all()
    counts = cells["risk_class"].value_counts()
    assert len(classes) == 5 and counts.min() >= 0.1 * len(cells)  # quantile classes: every class holds cells
    assert cells["riot_probability"].between(0, 1).all() and (cells["uncertainty"] >= 0).all()
    # overlap 0.5: each 336 m cell holds a quarter of its 672 m crops' expected riots, so the map's total
    # counts each riot once (the crops, overlapping 4x, would count it four times)
    crops = gpd.read_file(p / "cells.gpkg", layer="crops")
    assert cells["expected_events"].sum() == pytest.approx(0.25 * crops["expected_events"].sum(), rel=0.15)
    gj = json.loads((p / "cells.geojson").read_text())
    assert len(gj["features"]) == len(cells)
    lon = np.array([c[0] for f in gj["features"] for c in f["geometry"]["coordinates"][0]])
    assert lon.min() > 38.3 and lon.max() < 38.6
    assert run["region"]["area_km2"] > 0 and run["date"] == "2022-06-15" and run["crs"] == "EPSG:32737"
    assert run["model"]["sha256"] and run["imagery"][0]["sha256"]
    qgs = (p / "riotvit.qgs").read_text()
    assert "./risk.tif" in qgs and "cells.gpkg" in qgs and "city.tif" in qgs


def test_predictions_equal_the_tile_sets_crops(whole, trained):
    """On-the-fly tiling gives exactly the tile set's chips, so the same crop gets the same score."""
    root, world, model = trained
    cells = gpd.read_file(whole.path / "cells.gpkg", layer="crops").set_index("crop_id")
    ts = TileSet.open(world.tiles)
    df, _ = read_samples(world.samples)
    df = df[df["crop_id"].isin(cells.index)].head(40)
    runner = ModelRunner(Bundle.open(model), tta=2)
    chips, masks = ts.read(df["chip_index"].to_numpy())
    p = runner.predict(chips, masks, runner.meta_array(df))["riot_probability"]
    np.testing.assert_allclose(p, cells.loc[df["crop_id"], "riot_probability"].to_numpy(), atol=2e-6)


def test_same_region_twice_gives_identical_files(trained, tmp_path):
    root, world, model = trained
    first = predict(model, _region(world), tmp_path / "p", PredictConfig(tta=2), imagery=_imagery(world))
    before = {f.relative_to(first.path).as_posix(): f.read_bytes() for f in first.path.rglob("*") if f.is_file()}
    again = predict(model, _region(world), tmp_path / "p", PredictConfig(tta=2), imagery=_imagery(world), overwrite=True)
    after = {f.relative_to(again.path).as_posix(): f.read_bytes() for f in again.path.rglob("*") if f.is_file()}
    assert {"map.png", "map.pdf", "catalog.json"} <= before.keys()
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] == after[name], name


def test_a_failed_write_in_the_background_writer_stops_predict_and_leaves_no_folder(trained, tmp_path, monkeypatch):
    from riotvit.errors import OutputPathError
    from riotvit.publish.layers import CropsWriter

    root, world, model = trained
    calls = []

    def full_disk(self, df):
        calls.append(len(df))
        if len(calls) == 2:
            raise OutputPathError(f"{self.path}: no space left on device; free space and rerun")
        return original(self, df)

    original = CropsWriter.add
    monkeypatch.setattr(CropsWriter, "add", full_disk)
    with pytest.raises(OutputPathError, match="no space left"):
        predict(model, _region(world), tmp_path / "p", PredictConfig(tta=1, batch_size=8), imagery=_imagery(world))
    assert len(calls) == 2  # nothing more was written after the failure
    assert not (tmp_path / "p").exists() and not any((tmp_path).glob("p*/run.json"))


def test_bf16_on_the_cpu_runs_the_gpu_precision_path_and_agrees_with_fp32(whole, trained, tmp_path):
    """--precision bf16 is what a GPU runs (autocast to bfloat16); the CPU runs the same code path."""
    root, world, model = trained
    half = predict(model, _region(world), tmp_path / "bf16", PredictConfig(tta=2, precision="bf16"), imagery=_imagery(world))
    a = gpd.read_file(whole.path / "cells.gpkg", layer="crops").set_index("crop_id")
    b = gpd.read_file(half.path / "cells.gpkg", layer="crops").set_index("crop_id").loc[a.index]
    assert half.n_predicted == whole.n_predicted
    p, q = a["riot_probability"].to_numpy(), b["riot_probability"].to_numpy()
    assert not np.array_equal(p, q)  # bfloat16 did run
    assert np.abs(p - q).max() < 0.05 and np.corrcoef(p, q)[0, 1] > 0.98


def test_two_halves_merge_into_the_whole(whole, trained, tmp_path):
    root, world, model = trained
    left = predict(model, _region(world, (0.1, 0.1, 0.5, 0.9)), tmp_path / "left", PredictConfig(tta=2), imagery=_imagery(world))
    right = predict(model, _region(world, (0.5, 0.1, 0.9, 0.9)), tmp_path / "right", PredictConfig(tta=2), imagery=_imagery(world))
    w = gpd.read_file(whole.path / "cells.gpkg", layer="crops").set_index("crop_id")
    halves = gpd.pd.concat([gpd.read_file(left.path / "cells.gpkg", layer="crops"), gpd.read_file(right.path / "cells.gpkg", layer="crops")])
    halves = halves.drop_duplicates("crop_id").set_index("crop_id")  # crops on the seam are in both halves
    assert set(halves.index) == set(w.index)
    for c in ("riot_probability", "expected_events", "uncertainty"):
        np.testing.assert_allclose(halves.loc[w.index, c].to_numpy(), w[c].to_numpy(), atol=1e-6)


def test_bad_inputs(trained, tmp_path):
    root, world, model = trained
    far = resolve_region("10.0,10.0,10.1,10.1")
    with pytest.raises(RegionError, match=r"lies outside the imagery \(coverage: lon .*lat"):
        predict(model, far, tmp_path / "x", imagery=_imagery(world))
    nocrs = tmp_path / "nocrs.geojson"
    nocrs.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":'
                     '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}')
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpd.GeoDataFrame(geometry=gpd.GeoSeries.from_wkt(["POLYGON((0 0,1 0,1 1,0 0))"])).to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(RegionError, match="has no CRS"):
        resolve_region(str(tmp_path / "nocrs.gpkg"))
    with pytest.raises(RasterError, match=r"imagery bands \(red, green, blue\) differ from the model's"):
        import raster_fixtures

        rgb = raster_fixtures.write_raster(tmp_path / "rgb.tif", raster_fixtures.random_image((3, 64, 64)),
                                           raster_fixtures.aligned_transform(650, 14460), crs="EPSG:32737",
                                           descriptions=["red", "green", "blue"])
        predict(model, _region(world), tmp_path / "x", imagery=[SourceSpec(rgb)])
    old = tmp_path / "old_model"
    shutil.copytree(model, old)
    meta = json.loads((old / "bundle.json").read_text())
    meta["format_version"] = 99
    (old / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bundle format v99 .* incompatible .* retrain"):
        predict(old, _region(world), tmp_path / "x", imagery=_imagery(world))
    with pytest.raises(RegionError, match="exceed --max-cells 10; pass --yes"):
        predict(model, _region(world), tmp_path / "x", PredictConfig(max_cells=10), imagery=_imagery(world))
    (tmp_path / "exists").mkdir()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        predict(model, _region(world), tmp_path / "exists", imagery=_imagery(world))
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_cli_predict_and_one_line_errors(trained, tmp_path):
    root, world, model = trained
    r = CliRunner().invoke(app, ["predict", "--model", str(model), "--region", "38.40,-2.63,38.42,-2.61", "--imagery",
                                 str(world.sample / "city.tif"), "--out", str(tmp_path / "p"), "--tta", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n_predicted"] > 0 and out["km2_per_s"] > 0
    r = CliRunner().invoke(app, ["predict", "--model", str(model), "--region", "Atlantis", "--out", str(tmp_path / "q")])
    assert r.exit_code == 2 and r.output.startswith("error:") and "Traceback" not in r.output


@pytest.mark.qgis
def test_outputs_open_styled_in_qgis_and_the_project_renders(whole, tmp_path):
    from qgis_support import qgis_available, run_qgis_check

    if not qgis_available():
        pytest.skip("QGIS (python3-qgis) is not installed")
    p = whole.path
    png = tmp_path / "map.png"
    rep = run_qgis_check([p / "risk.tif", p / "cells.gpkg", p / "cells.geojson", p / "riotvit.qgs"], render=png)
    files = {f["path"]: f for f in rep["files"]}
    risk, gj = files[str(p / "risk.tif")], files[str(p / "cells.geojson")]
    gpkg = {f["name"]: f for f in rep["files"] if f["path"] == str(p / "cells.gpkg")}
    assert {"cells", "crops"} <= set(gpkg) and gpkg["crops"]["feature_count"] == whole.n_predicted
    gpkg = gpkg["cells"]
    with rasterio.open(p / "risk.tif") as r:
        b = r.bounds
    assert risk["valid"] and risk["crs"] == "EPSG:32737" and risk["renderer"] == "singlebandpseudocolor"
    assert risk["extent"] == pytest.approx([b.left, b.bottom, b.right, b.top], abs=1.0)
    assert risk["style_applied"] and len(risk["legend"]) == 5 and risk["nodata"][0] == -9999.0
    n = json.loads((p / "run.json").read_text())["counts"]["cells"]
    for f, crs in ((gpkg, "EPSG:32737"), (gj, "EPSG:4326")):
        assert f["valid"] and f["crs"] == crs and f["feature_count"] == n
        assert f["renderer"] == "graduatedSymbol" and f["class_attribute"] == "riot_probability" and f["style_applied"]
    (proj,) = rep["projects"]
    assert proj["read_ok"] and proj["crs"] == "EPSG:32737" and not proj["absolute_paths"]
    assert [ly["valid"] for ly in proj["layers"]] == [True] * len(proj["layers"])
    assert proj["layer_order"][0].endswith("cells (hatched: partial)") and proj["layer_order"][-1].startswith("imagery")
    assert rep["render"]["errors"] == [] and rep["render"]["non_background_fraction"] > 0.9
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.std() > 10  # a map, not a flat fill


def test_imagery_unlike_the_training_imagery_is_flagged(trained, whole, tmp_path):
    """Reflectance on another scale (float 0..1 instead of uint16 x 10000) still maps, but says so."""
    root, world, model = trained
    assert not [w for w in whole.warnings if w.startswith("imagery")]  # the training imagery itself is fine
    with rasterio.open(world.sample / "city.tif") as src:
        profile = src.profile | {"dtype": "float32"}
        data = src.read().astype("float32") / 10000
        tags, desc = src.tags(), src.descriptions
    scaled = tmp_path / "scaled.tif"
    with rasterio.open(scaled, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
        for i, d in enumerate(desc, 1):
            dst.set_band_description(i, d)
    res = predict(model, _region(world, (0.3, 0.3, 0.6, 0.6)), tmp_path / "p", PredictConfig(tta=1),
                  imagery=[SourceSpec(scaled)])
    flagged = [w for w in res.warnings if w.startswith("imagery")]
    assert any("pixel type float32 differs from the training imagery's uint16" in w for w in flagged)
    assert {w.split(":")[0] for w in flagged if "standard deviations" in w} == {f"imagery band {b}" for b in
                                                                                ("blue", "green", "red", "nir")}
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert any("standard deviations" in w for w in run["warnings"])


def test_value_range_check_reports_the_band_and_the_distance():
    from riotvit.predict.checks import ValueRangeCheck, dtype_warnings

    chk = ValueRangeCheck(["red", "nir"], mean=[1000.0, 3000.0], std=[100.0, 500.0], min_crops=2)
    chips = np.stack([np.full((2, 4, 4), 1050.0), np.full((2, 4, 4), 1050.0)])
    chips[:, 1] = 0.3  # nir on a 0..1 scale
    masks = np.ones((2, 4, 4), bool)
    masks[1, :2] = False  # masked pixels don't count
    chk.add(chips, masks)
    assert chk.done
    (w,) = chk.warnings()
    assert w.startswith("imagery band nir: mean 0.3 over the first 2 crops is 6 standard deviations (x1e+04)")
    assert dtype_warnings(["uint16"], "uint16") == [] and "float64" in dtype_warnings(["float64"], "uint16")[0]


@pytest.fixture(scope="module")
def no_overlap(trained):
    """A small region predicted with crops side by side (the model's grid has half overlap: ``whole``)."""
    root, world, model = trained
    return predict(model, _region(world, (0.2, 0.2, 0.7, 0.7)), root / "pred_no_overlap",
                   PredictConfig(tta=1, overlap=0.0), imagery=_imagery(world))


@pytest.mark.parametrize("which", ["whole", "no_overlap"])
def test_every_point_lies_in_one_cell_whose_value_is_the_rasters(which, request):
    """cells.gpkg's main layer is the raster's pixels: one polygon per stride cell, with risk.tif's values."""
    import shapely

    res = request.getfixturevalue(which)
    p = res.path
    cells = gpd.read_file(p / "cells.gpkg", layer="cells")
    tree = shapely.STRtree(cells.geometry.to_numpy())
    rng = np.random.default_rng(0)
    with rasterio.open(p / "risk.tif") as r:
        b = r.bounds
        xs = rng.uniform(b.left, b.right, 400)
        ys = rng.uniform(b.bottom, b.top, 400)
        vals = np.array([v for v in r.sample(zip(xs, ys))])
        nodata = r.nodata
    hits = tree.query(shapely.points(xs, ys), predicate="intersects")
    n_in = np.bincount(hits[0], minlength=xs.size)
    valid = vals[:, 0] != nodata
    assert valid.sum() > 200 and (n_in[valid] == 1).all() and (n_in[~valid] == 0).all()
    one = dict(zip(hits[0], hits[1]))
    idx = np.array([one[i] for i in np.flatnonzero(valid)])
    for b_, col in enumerate(("riot_probability", "expected_events", "uncertainty")):
        np.testing.assert_allclose(cells[col].to_numpy()[idx], vals[valid, b_], atol=1e-6)
    run = json.loads((p / "run.json").read_text())
    with rasterio.open(p / "risk.tif") as r:
        n_pix = int((r.read(1) != r.nodata).sum())
    assert len(cells) == run["counts"]["cells"] == n_pix
    layers = set(pyogrio_layers(p / "cells.gpkg"))
    if which == "whole":  # overlap 0.5
        assert layers == {"cells", "crops", "layer_styles"}
        crops = gpd.read_file(p / "cells.gpkg", layer="crops")
        assert len(crops) == res.n_predicted and cells["crops"].max() == 4
        assert np.isclose(cells.area, 336.0**2).all() and np.isclose(crops.area, 672.0**2).all()
        qgs = (p / "riotvit.qgs").read_text()
        assert "layername=crops" in qgs
    else:
        # a crop is a cell; crops whose centre lies outside the region are nodata in risk.tif, so not cells
        assert layers == {"cells", "layer_styles"} and 0 < len(cells) <= res.n_predicted and (cells["crops"] == 1).all()
        assert np.isclose(cells.area, 672.0**2).all()


def pyogrio_layers(path) -> list[str]:
    import pyogrio

    return [str(n) for n in pyogrio.list_layers(path)[:, 0]]


def test_the_forecast_window_is_on_every_output(whole, trained):
    """The window's start and end: raster tags and bands, run.json, the cell layer, layer names, the title, the card."""
    import xml.etree.ElementTree as ET

    import pyogrio

    p = whole.path
    run = json.loads((p / "run.json").read_text())
    w = run["window"]
    assert w == {"as_of": "2022-06-15", "start": "2022-06-15", "end": "2023-06-14", "lead_days": 0,
                 "horizon_days": 365, "event_types": ["Riots"], "label": "P(≥ 1 riot), 2022-06-15 → 2023-06-14"}
    with rasterio.open(p / "risk.tif") as r:
        tags = r.tags()
        assert (tags["window_start"], tags["window_end"], tags["as_of"]) == ("2022-06-15", "2023-06-14", "2022-06-15")
        assert tags["region"].startswith("bbox") and tags["model"].startswith("model (sha256 ")
        assert tags["model_sha256"] == run["model"]["sha256"]
        assert "2022-06-15 → 2023-06-14" in r.descriptions[0]
        assert r.tags(1)["window_end"] == "2023-06-14" and r.tags(2)["units"] == "events"
    info = pyogrio.read_info(p / "cells.gpkg", layer="cells")
    types = dict(zip(info["fields"], info["dtypes"]))
    assert {types[k] for k in ("acquisition_date", "window_start", "window_end")} == {"datetime64[D]"}  # OGR Date fields
    cells = gpd.read_file(p / "cells.gpkg", layer="cells")
    assert (cells["window_start"].dt.strftime("%Y-%m-%d") == "2022-06-15").all()
    assert (cells["window_end"].dt.strftime("%Y-%m-%d") == "2023-06-14").all()
    assert cells["summary"].str.startswith("P(≥ 1 riot, Jun 2022–Jun 2023) = ").all()
    root = ET.parse(p / "riotvit.qgs").getroot()
    assert root.find("title").text.startswith("riotvit: P(≥ 1 riot), 2022-06-15 → 2023-06-14")
    names = [n.get("name") for n in root.iter("layer-tree-layer")]
    assert all("2023-06-14" in n for n in names if not n.startswith("imagery"))
    gj = json.loads((p / "cells.geojson").read_text())
    assert gj["features"][0]["properties"]["window_end"] == "2023-06-14"
    card = (trained[2] / "model_card.md").read_text()
    assert "**P(≥ 1 riot), 2022-06-15 → 2023-06-14**" in card  # the test origin's window, as an example
    assert "| `hist_riots_365d_2km` | riots within 2 km in the year before | events |" in card
    def paths(d):
        if isinstance(d, dict):
            for k, v in d.items():
                yield from ([v] if k in ("path", "population_raster") and isinstance(v, str) else paths(v))
        elif isinstance(d, list):
            for v in d:
                yield from paths(v)

    found = list(paths(run))
    assert len(found) >= 4  # model, imagery, ACLED export, census layer: each relative to the prediction folder
    assert all(not f.startswith("/") and (p / f).exists() for f in found)


def test_cells_carry_aliases_a_map_tip_and_hatched_edges(whole):
    """The Identify panel reads like a sentence: aliases and map tip in the GeoPackage and the project."""
    import sqlite3
    import xml.etree.ElementTree as ET

    p = whole.path
    con = sqlite3.connect(p / "cells.gpkg")
    (qml,) = con.execute("SELECT styleQML FROM layer_styles WHERE f_table_name = 'cells' AND useAsDefault").fetchone()
    con.close()
    for root in (ET.fromstring(qml), next(m for m in ET.parse(p / "riotvit.qgs").getroot().iter("maplayer")
                                          if "layername=cells" in m.find("datasource").text)):
        aliases = {a.get("field"): a.get("name") for a in root.iter("alias")}
        assert aliases["riot_probability"] == "riot probability (probability)"
        assert aliases["valid_fraction"] == "share of the cell with imagery"
        assert root.find("mapTip").text == '[% "summary" %]' and root.find("previewExpression").text == '"summary"'
        dd = [o.get("value") for o in root.iter("Option") if o.get("name") == "expression"]
        assert dd and all("edge" in e for e in dd)


_QGIS_IDENTIFY = """
import json, sys
from qgis.core import QgsApplication, QgsProject, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
out = {}
gpkg = QgsVectorLayer(sys.argv[1] + "/cells.gpkg|layername=cells", "cells", "ogr")
out["gpkg"] = {"aliases": {f.name(): f.alias() for f in gpkg.fields()}, "map_tip": gpkg.mapTipTemplate(),
               "display": gpkg.displayExpression(), "renderer": gpkg.renderer().type()}
proj = QgsProject.instance()
out["read"] = proj.read(sys.argv[1] + "/riotvit.qgs")
out["title"] = proj.title()
out["layers"] = []
for node in proj.layerTreeRoot().findLayers():
    ly = node.layer()
    d = {"name": ly.name(), "visible": node.isVisible(), "valid": ly.isValid()}
    if isinstance(ly, QgsVectorLayer):
        d.update(aliases={f.name(): f.alias() for f in ly.fields()}, map_tip=ly.mapTipTemplate(),
                 legend=[i.label() for i in ly.renderer().legendSymbolItems()])
    out["layers"].append(d)
print(json.dumps(out))
app.exitQgis()
"""


@pytest.mark.qgis
def test_qgis_shows_aliases_the_map_tip_and_the_window(whole, tmp_path):
    """Headless QGIS: the GeoPackage alone and the project give aliases, the sentence map tip, the window."""
    import subprocess

    from qgis_support import QGIS_PYTHON, _qgis_env, qgis_available

    if not qgis_available():
        pytest.skip("QGIS (python3-qgis) is not installed")
    done = subprocess.run([QGIS_PYTHON, "-c", _QGIS_IDENTIFY, str(whole.path)], env=_qgis_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    rep = json.loads(done.stdout.strip().splitlines()[-1])
    g = rep["gpkg"]
    assert g["map_tip"] == '[% "summary" %]' and g["display"] == '"summary"' and g["renderer"] == "graduatedSymbol"
    assert g["aliases"]["riot_probability"] == "riot probability (probability)"
    assert g["aliases"]["window_end"] == "forecast window end"
    assert rep["read"] and "2022-06-15 → 2023-06-14" in rep["title"]
    cells, crops = rep["layers"][0], rep["layers"][1]
    assert cells["visible"] and cells["valid"] and cells["map_tip"] == '[% "summary" %]'
    assert cells["aliases"]["valid_fraction"] == "share of the cell with imagery"
    assert len(cells["legend"]) == 5 and cells["legend"][-1].endswith("highest fifth")
    assert not crops["visible"] and "per crop" in crops["name"]
    assert all("2023-06-14" in ly["name"] for ly in rep["layers"] if not ly["name"].startswith("imagery"))
    assert [ly["visible"] for ly in rep["layers"]][2:-1] == [False] * (len(rep["layers"]) - 3)  # raster bands: off
