"""Admin-unit summaries: area-weighted sums on a hand-built grid, errors, the written files, real units."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _pred_fixture import CELL, COLS, ROWS, WINDOW, X0, Y1, cells_frame, write_prediction
from qgis_support import requires_qgis, run_qgis_check
from scipy import stats

from riotvit.publish.admin import (
    AdminError,
    admin_layer,
    read_admin,
    summarise_admin,
    write_admin_summary,
)

CRS = "EPSG:32737"
BX, BY, S = 500_000.0, 9_000_000.0, 100.0  # a 4 x 4 grid of 100 m cells


def _grid() -> gpd.GeoDataFrame:
    """Cell (i, j) = column i, row j from the south; mu = 1 + i + 4 j, p = mu / 20, one driver = i - j."""
    i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="xy")
    i, j = i.ravel(), j.ravel()
    mu = 1.0 + i + 4 * j
    geom = shapely.box(BX + i * S, BY + j * S, BX + (i + 1) * S, BY + (j + 1) * S)
    return gpd.GeoDataFrame({"riot_probability": mu / 20, "expected_events": mu, "shap_history": (i - j) / 10.0,
                             "shap_youth_share": np.full(16, 0.01), "people": np.full(16, 100.0)},
                            geometry=geom, crs=CRS)


def _mu(i: int, j: int) -> float:
    return 1.0 + i + 4 * j


def _units() -> gpd.GeoDataFrame:
    boxes = {
        "A": (0, 0, 200, 200),       # cells (0..1, 0..1), whole
        "B": (150, 200, 400, 400),   # half of column 1 and columns 2..3 of rows 2..3
        "C": (300, -100, 500, 100),  # a quarter of it on cell (3, 0)
        "D": (5000, 5000, 5100, 5100),  # far away: dropped
    }
    geoms = [shapely.box(BX + a, BY + b, BX + c, BY + d) for a, b, c, d in boxes.values()]
    return gpd.GeoDataFrame({"pcode": list(boxes), "name": [f"unit {k}" for k in boxes]}, geometry=geoms,
                            crs=CRS).to_crs(4326)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return summarise_admin(_grid(), _units(), "pcode", population="people").set_index("pcode")


def test_expected_riots_are_area_weighted_sums_of_the_cells(summary):
    assert set(summary.index) == {"A", "B", "C"}
    a = _mu(0, 0) + _mu(1, 0) + _mu(0, 1) + _mu(1, 1)
    b = sum(0.5 * _mu(1, j) + _mu(2, j) + _mu(3, j) for j in (2, 3))
    c = _mu(3, 0)
    assert summary.loc["A", "expected_riots"] == pytest.approx(a, abs=1e-4)
    assert summary.loc["B", "expected_riots"] == pytest.approx(b, abs=1e-4)
    assert summary.loc["C", "expected_riots"] == pytest.approx(c, abs=1e-4)
    assert summary.loc["A", "cells"] == 4 and summary.loc["B", "cells"] == 6 and summary.loc["C", "cells"] == 1


def test_overlapping_crops_count_each_riot_once():
    """At overlap 0.5 a 336 m cell carries its 672 m crop's count: a quarter of it is the cell's."""
    quarter = summarise_admin(_grid(), _units(), "pcode", cell_share=0.25).set_index("pcode")
    whole = summarise_admin(_grid(), _units(), "pcode").set_index("pcode")
    np.testing.assert_allclose(quarter["expected_riots"], 0.25 * whole["expected_riots"], atol=1e-4)
    assert (quarter["mean_probability"] == whole["mean_probability"]).all()


def test_coverage_mean_max_population_and_drivers(summary):
    assert summary["coverage"].to_dict() == pytest.approx({"A": 1.0, "B": 1.0, "C": 0.25}, abs=1e-4)
    # B: area-weighted mean of p over 5 cell areas; max over its 6 cells
    b = [(0.5, _mu(1, j)) for j in (2, 3)] + [(1.0, _mu(i, j)) for i in (2, 3) for j in (2, 3)]
    assert summary.loc["B", "mean_probability"] == pytest.approx(sum(w * m for w, m in b) / 5 / 20, abs=1e-4)
    assert summary.loc["B", "max_probability"] == pytest.approx(_mu(3, 3) / 20)
    assert summary.loc["B", "population_covered"] == 500  # 100 people per cell, 5 cells' worth of area
    assert summary.loc["A", "pop_weighted_probability"] == pytest.approx(summary.loc["A", "mean_probability"])
    # A: history driver mean (0 + 1 - 1 + 0) / 4 / 10 = 0 < youth 0.01; C: history (3 - 0) / 10 = +0.3 first
    assert summary.loc["A", "top_drivers"].startswith("youth_share (+0.010)")
    assert summary.loc["C", "top_drivers"] == "history (+0.300); youth_share (+0.010)"
    assert summary.loc["A", "name"] == "unit A"
    assert list(summary["expected_riots"]) == sorted(summary["expected_riots"], reverse=True)


def test_interval_is_poisson_without_dispersion_and_wider_with_it(summary):
    m = summary.loc["A", "expected_riots"]
    assert summary.loc["A", "expected_riots_p10"] == stats.poisson.ppf(0.1, m)
    assert summary.loc["A", "expected_riots_p90"] == stats.poisson.ppf(0.9, m)
    wide = summarise_admin(_grid(), _units(), "pcode", alpha=0.5).set_index("pcode")
    assert wide.loc["A", "expected_riots"] == pytest.approx(m)
    assert wide.loc["A", "expected_riots_p90"] > summary.loc["A", "expected_riots_p90"]
    assert wide.loc["A", "expected_riots_p10"] <= summary.loc["A", "expected_riots_p10"]


def test_units_sharing_an_id_are_merged():
    units = _units().to_crs(CRS)
    halves = gpd.GeoDataFrame({"pcode": ["A", "A"]}, geometry=[shapely.box(BX, BY, BX + 100, BY + 200),
                                                                shapely.box(BX + 100, BY, BX + 200, BY + 200)], crs=CRS)
    merged = summarise_admin(_grid(), pd.concat([halves, units[units.pcode != "A"][["pcode", "geometry"]]]), "pcode")
    row = merged.set_index("pcode").loc["A"]
    assert row["expected_riots"] == pytest.approx(_mu(0, 0) + _mu(1, 0) + _mu(0, 1) + _mu(1, 1))
    assert row["coverage"] == pytest.approx(1.0)


def test_bad_admin_inputs_are_one_line_errors(tmp_path):
    units = _units()
    with pytest.raises(AdminError, match=r"no column 'PCODE'.*did you mean: pcode.*one of \['pcode', 'name'\]"):
        summarise_admin(_grid(), units, "PCODE")
    with pytest.raises(AdminError, match="have no CRS; set it"):
        summarise_admin(_grid(), units.set_crs(None, allow_override=True), "pcode")
    far = units[units.pcode == "D"]
    with pytest.raises(AdminError, match=r"no admin unit overlaps the prediction; the units cover \(.*\) and the cells"):
        summarise_admin(_grid(), far, "pcode")
    shifted = _grid().assign(geometry=_grid().geometry.translate(50, 0))
    with pytest.raises(AdminError, match="the cells overlap .* would count riots more than once"):
        summarise_admin(pd.concat([_grid(), shifted]), units, "pcode")
    bad = tmp_path / "units.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(AdminError, match="units.gpkg: not a readable vector file"):
        read_admin(bad)
    with pytest.raises(AdminError, match="admin units file not found"):
        read_admin(tmp_path / "missing.gpkg")
    nums = gpd.GeoDataFrame({"value": [1.0, 1.0]}, geometry=[shapely.box(0, 0, 1, 1)] * 2, crs=4326)
    nums.to_file(tmp_path / "nums.gpkg")
    with pytest.raises(AdminError, match=r"no column identifies the units uniquely; pass --admin-id, one of \['value'\]"):
        read_admin(tmp_path / "nums.gpkg")


def _demo_wards(path):
    """The synthetic city's wards (riotvit.synth.wards) over the fixture's 10.75 km square."""
    from riotvit.synth.city import FORMAL, INFORMAL
    from riotvit.synth.wards import build_wards

    lc = np.full((224, 224), FORMAL, dtype=np.uint8)
    lc[60:120, 120:200] = INFORMAL
    wards = build_wards(np.random.default_rng(3), lc, 48.0, X0, Y1, 32737)
    wards.to_crs(4326).to_file(path, layer="wards")
    return wards


def test_write_admin_summary_for_the_demo_wards(tmp_path):
    pred = write_prediction(tmp_path / "pred")
    wards = _demo_wards(tmp_path / "wards.gpkg")
    gpkg, csv = write_admin_summary(pred, tmp_path / "wards.gpkg")
    out = gpd.read_file(gpkg, layer="admin")
    table = pd.read_csv(csv)
    cells = cells_frame()
    # the wards tile the whole prediction: their expected riots add up to the cells'
    assert out["expected_riots"].sum() == pytest.approx(cells["expected_events"].sum(), rel=1e-5)
    assert table["expected_riots"].sum() == pytest.approx(cells["expected_events"].sum(), rel=1e-5)
    assert len(out) == len(table) <= len(wards) and table["ward_id"].is_unique  # guessed id column
    assert (table["window"] == WINDOW["label"]).all()
    assert table["population"].sum() > 0  # the wards' own census column is kept beside the summary
    covered = wards.geometry.intersection(shapely.box(X0, Y1 - ROWS * CELL, X0 + COLS * CELL, Y1)).area
    share = (covered / wards.geometry.area).set_axis(wards["ward_id"])
    assert table.set_index("ward_id")["coverage"].to_dict() == pytest.approx(share[share > 1e-6].to_dict(), abs=1e-4)
    assert table["top_drivers"].str.contains("hist_riots_365d_2km").all()
    assert str(out.crs) == CRS
    assert (pred / "admin.qml").read_text().count("<range ") >= 3
    assert not list(pred.glob(".admin*tmp*"))
    spec = admin_layer(pred, WINDOW["label"])
    assert spec.name == f"admin units: expected riots, {WINDOW['label']}" and spec.layer_name == "admin"


@pytest.mark.qgis
@requires_qgis
def test_admin_layer_loads_styled_in_qgis(tmp_path):
    pred = write_prediction(tmp_path / "pred")
    _demo_wards(tmp_path / "wards.gpkg")
    gpkg, _ = write_admin_summary(pred, tmp_path / "wards.gpkg")
    info = run_qgis_check([gpkg])["files"][0]
    assert info["valid"] and info["style_applied"], info
    assert info["renderer"] == "graduatedSymbol" and info["class_attribute"] == "expected_riots"
    assert info["feature_count"] == len(gpd.read_file(gpkg))
    assert info["crs"] == CRS


def test_kenya_counties_against_a_grid_over_nairobi(real):
    counties = real("kenya_counties_census2019", "kenya_counties_census2019.gpkg")
    worldpop = real("worldpop_nairobi", "ken_pop_nairobi_100m.tif")
    admin, id_col = read_admin(counties, "COUNTY")
    nbo = admin[admin["COUNTY"] == "Nairobi"].to_crs(CRS).total_bounds
    x0, y0 = np.floor(nbo[:2] / 672) * 672
    x1, y1 = np.ceil(nbo[2:] / 672) * 672
    xs, ys = np.arange(x0, x1, 672.0), np.arange(y0, y1, 672.0)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    d = np.hypot(gx - gx.mean(), gy - gy.mean()) / 10_000
    mu = np.round(2.0 * np.exp(-d**2), 6)
    cells = gpd.GeoDataFrame({"riot_probability": 1 - np.exp(-mu), "expected_events": mu},
                             geometry=shapely.box(gx, gy, gx + 672, gy + 672), crs=CRS)
    s = summarise_admin(cells, admin, id_col, population=worldpop).set_index("COUNTY")
    assert {"Nairobi", "Kiambu", "Kajiado", "Machakos"} <= set(s.index)
    # the grid lies inside Kenya: every cell's expected riots land in some county
    assert s["expected_riots"].sum() == pytest.approx(mu.sum(), rel=1e-6)
    assert s.loc["Nairobi", "coverage"] == pytest.approx(1.0, abs=1e-6)
    assert s.loc["Kiambu", "coverage"] < 0.5
    # WorldPop people inside Nairobi against the 2019 census (4.40 M)
    census = s.loc["Nairobi", "pop2019_total"]
    assert 0.8 * census < s.loc["Nairobi", "population_covered"] < 1.6 * census
    assert 0 < s.loc["Nairobi", "pop_weighted_probability"] < 1
