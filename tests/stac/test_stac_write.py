"""STAC out: a prediction folder's catalog validates offline, states the forecast window, travels."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely
from affine import Affine

from riotvit.stac.errors import StacError
from riotvit.stac.validate import validate_stac
from riotvit.stac.write import write_prediction_stac

WINDOW = {"as_of": "2024-01-01", "start": "2024-01-01", "end": "2024-12-30", "lead_days": 0, "horizon_days": 365,
          "event_types": ["Riots", "Protests"], "label": "P(≥ 1 riot or protest), 2024-01-01 → 2024-12-30"}
T = Affine(672.0, 0.0, 229_152.0, 0.0, -672.0, 2_631_168.0)  # UTM 46N, Dhaka


def _prediction(folder, *, window=WINDOW, extra=True):
    """A prediction folder made by hand: a 3-band risk COG, cells, run.json and the published extras."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 1, (3, 6, 8)).astype("float32")
    data[:, 0, 0] = np.nan  # a cell outside the region
    with rasterio.open(folder / "risk.tif", "w", driver="COG", width=8, height=6, count=3, dtype="float32",
                       crs="EPSG:32646", transform=T, nodata=float("nan")) as dst:
        dst.write(data)
        for i, name in enumerate(("riot_probability", "expected_events", "uncertainty"), start=1):
            dst.set_band_description(i, name)
    cells = [shapely.box(T.c + 672 * c, T.f - 672 * (r + 1), T.c + 672 * (c + 1), T.f - 672 * r)
             for r in range(6) for c in range(8)]
    gpd.GeoDataFrame({"riot_probability": data[0].ravel()}, geometry=cells, crs="EPSG:32646").to_file(
        folder / "cells.gpkg", layer="cells")
    run = {"date": WINDOW["as_of"], "model": {"path": "../model"}, "grid": {"crop_m": 672.0, "stride_m": 672.0}}
    if window is not None:
        run["window"] = window
    (folder / "run.json").write_text(json.dumps(run))
    if extra:
        (folder / "map.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        (folder / "model_card.md").write_text("# card\n")
        (folder / "riotvit.qgs").write_text("<qgis/>\n")
        (folder / "risk.qml").write_text("<qgis/>\n")
        (folder / "admin_summary.csv").write_text("admin,mean\nA,0.5\n")
    return data


def test_catalog_validates_and_states_the_forecast_window(tmp_path):
    data = _prediction(tmp_path / "pred")
    cat_path = write_prediction_stac(tmp_path / "pred")
    assert cat_path == tmp_path / "pred" / "catalog.json"
    files = validate_stac(cat_path)  # offline: shipped schemas only
    assert len(files) == 2
    item = next(pystac.read_file(str(cat_path)).get_items(recursive=True))
    assert item.datetime is None
    assert item.properties["start_datetime"] == "2024-01-01T00:00:00Z"
    assert item.properties["end_datetime"] == "2024-12-30T23:59:59Z"
    assert item.properties["riotvit:as_of"] == "2024-01-01" and item.properties["riotvit:horizon_days"] == 365
    assert "P(≥ 1 riot or protest), 2024-01-01 → 2024-12-30" in item.properties["title"]
    assert "type Riots, Protests per 672 m cell from 2024-01-01 to 2024-12-30" in item.properties["description"]
    # footprint: the raster's bounds in lon/lat, around 90.4 E 23.8 N
    w, s, e, n = item.bbox
    assert 90.3 < w < e < 90.5 and 23.7 < s < n < 23.8 and shapely.geometry.shape(item.geometry).bounds == pytest.approx(item.bbox)
    assert item.properties["proj:code"] == "EPSG:32646" and item.properties["proj:shape"] == [6, 8]
    assert item.properties["proj:transform"] == [672.0, 0.0, 229_152.0, 0.0, -672.0, 2_631_168.0]
    expect = {
        "risk": (["data"], pystac.MediaType.COG), "cells": (["data"], pystac.MediaType.GEOPACKAGE),
        "map": (["overview", "visual"], pystac.MediaType.PNG), "model_card": (["metadata"], "text/markdown"),
        "qgis_project": (["metadata"], "application/x-qgis"), "run": (["metadata"], pystac.MediaType.JSON),
        "admin_summary_csv": (["data"], "text/csv"), "risk_qml": (["metadata", "style"], "application/xml"),
    }
    assert {k: (a.roles, a.media_type) for k, a in item.assets.items()} == expect
    raw = json.loads((tmp_path / "pred" / item.id / f"{item.id}.json").read_text())
    assert all(a["href"].startswith("../") and "/" not in a["href"][3:] for a in raw["assets"].values())
    bands = raw["assets"]["risk"]["raster:bands"]
    assert [b.get("unit") for b in bands] == ["1", "{events}", "1"] and all(b["data_type"] == "float32" for b in bands)
    valid = data[0][np.isfinite(data[0])]
    st = bands[0]["statistics"]
    assert st["minimum"] == pytest.approx(valid.min()) and st["mean"] == pytest.approx(valid.mean(), rel=1e-6)
    assert st["valid_percent"] == pytest.approx(100 * 47 / 48, abs=1e-3)
    assert bands[0]["nodata"] == "nan"


def test_catalog_still_resolves_after_the_folder_moves(tmp_path):
    _prediction(tmp_path / "pred")
    write_prediction_stac(tmp_path / "pred")
    moved = tmp_path / "elsewhere" / "p"
    shutil.move(tmp_path / "pred", moved)
    cat = pystac.read_file(str(moved / "catalog.json"))
    item = next(cat.get_items(recursive=True))
    for a in item.assets.values():
        assert a.get_absolute_href().startswith(str(moved)) and (moved / a.href[3:]).is_file()
    with rasterio.open(item.assets["risk"].get_absolute_href()) as src:
        assert src.count == 3
    assert len(validate_stac(moved / "catalog.json")) == 2


def test_window_derived_from_the_bundle_when_run_json_has_none(tmp_path):
    _prediction(tmp_path / "pred", window=None, extra=False)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bundle.json").write_text(json.dumps(
        {"targets": {"lead_days": 0, "horizon_days": 365, "riot_event_types": ["Riots"]},
         "forecast": {"lead_days": 30, "horizon_days": 90}}))
    write_prediction_stac(tmp_path / "pred")
    item = next(pystac.read_file(str(tmp_path / "pred" / "catalog.json")).get_items(recursive=True))
    assert item.properties["start_datetime"] == "2024-01-31T00:00:00Z"  # as of + 30 d lead
    assert item.properties["end_datetime"] == "2024-04-29T23:59:59Z"  # 90 days, the last inclusive
    assert set(item.assets) == {"risk", "cells", "run"}


def test_window_given_by_the_caller_wins(tmp_path):
    _prediction(tmp_path / "pred", extra=False)
    w = dict(WINDOW, start="2024-02-01", end="2024-02-29")
    write_prediction_stac(tmp_path / "pred", window=w, item_id="x")
    item = json.loads((tmp_path / "pred" / "x" / "x.json").read_text())
    assert item["properties"]["start_datetime"] == "2024-02-01T00:00:00Z"


def test_not_a_prediction_folder_and_invalid_stac_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "run.json").write_text(json.dumps({"window": WINDOW}))
    with pytest.raises(StacError, match=r"empty: no risk\.tif; give a prediction folder"):
        write_prediction_stac(tmp_path / "empty")
    with pytest.raises(StacError, match=r"nothing/run\.json: missing or unreadable; is .*nothing a prediction folder"):
        write_prediction_stac(tmp_path / "nothing")
    _prediction(tmp_path / "pred", extra=False)
    cat = write_prediction_stac(tmp_path / "pred", item_id="x")
    item_path = tmp_path / "pred" / "x" / "x.json"
    d = json.loads(item_path.read_text())
    d["properties"]["proj:shape"] = [6]  # the projection schema wants [rows, cols]
    item_path.write_text(json.dumps(d))
    with pytest.raises(StacError, match=r"x\.json: does not validate as STAC"):
        validate_stac(cat)
    d["stac_extensions"].append("https://stac-extensions.github.io/sat/v1.0.0/schema.json")
    d["properties"]["proj:shape"] = [6, 8]
    item_path.write_text(json.dumps(d))
    with pytest.raises(StacError, match=r"sat/v1\.0\.0/schema\.json is not shipped with riotvit"):
        validate_stac(cat)


def test_a_forecast_window_object_is_taken_as_it_is(tmp_path):
    """The shared contract's ForecastWindow (riotvit/window.py): anything with to_dict() and label."""

    class Window:
        label = "P(≥ 1 riot), 2024-03-01 → 2024-05-29"

        def to_dict(self):
            return {"as_of": "2024-01-01", "start": "2024-03-01", "end": "2024-05-29", "lead_days": 60,
                    "horizon_days": 90, "event_types": ("Riots",)}

    _prediction(tmp_path / "pred", extra=False)
    write_prediction_stac(tmp_path / "pred", window=Window(), item_id="w")
    props = json.loads((tmp_path / "pred" / "w" / "w.json").read_text())["properties"]
    assert (props["start_datetime"], props["end_datetime"]) == ("2024-03-01T00:00:00Z", "2024-05-29T23:59:59Z")
    assert props["title"] == "riotvit riot risk: P(≥ 1 riot), 2024-03-01 → 2024-05-29"
    assert props["riotvit:lead_days"] == 60 and props["riotvit:event_types"] == ["Riots"]


def test_rewriting_replaces_the_previous_item_and_keeps_what_riotvit_did_not_write(tmp_path):
    _prediction(tmp_path / "pred", extra=False)
    write_prediction_stac(tmp_path / "pred", item_id="first")
    (tmp_path / "pred" / "first" / "notes.txt").write_text("mine")  # a user's file in the item folder
    (tmp_path / "pred" / "drivers.tif").write_bytes((tmp_path / "pred" / "risk.tif").read_bytes())  # explain ran
    write_prediction_stac(tmp_path / "pred", item_id="second")
    assert not (tmp_path / "pred" / "first" / "first.json").exists()
    assert (tmp_path / "pred" / "first" / "notes.txt").read_text() == "mine"
    item = next(pystac.read_file(str(tmp_path / "pred" / "catalog.json")).get_items(recursive=True))
    assert item.id == "second" and item.assets["drivers"].media_type == pystac.MediaType.COG
    assert item.assets["drivers"].ext.raster.bands[0].statistics is not None


def test_a_folder_named_like_a_file_keeps_the_catalog_inside(tmp_path):
    """predict writes into NAME.partial: the catalog must land in it, never next to it."""
    _prediction(tmp_path / "pred.partial")
    cat = write_prediction_stac(tmp_path / "pred.partial")
    assert cat == tmp_path / "pred.partial" / "catalog.json" and cat.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.partial"]
    (tmp_path / "pred.partial").rename(tmp_path / "pred")
    assert len(validate_stac(tmp_path / "pred" / "catalog.json")) == 2
