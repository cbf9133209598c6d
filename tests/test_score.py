"""``riotvit score``: a prediction folder built by code, scored against an export built by code, and
checked against an independent geopandas + scikit-learn computation."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from acled_fixtures import make_events  # noqa: E402

from riotvit.cli import app  # noqa: E402
from riotvit.errors import EventsError, InputError  # noqa: E402
from riotvit.grid import CropGrid  # noqa: E402
from riotvit.score import score_prediction  # noqa: E402

GRID = CropGrid.create(32646, crop_m=672.0, crop_px=64)
AS_OF, HORIZON = dt.date(2024, 1, 1), 365
COL0, ROW0, N = 340, 3900, 8  # 8 x 8 cells of central Dhaka's UTM zone


def _cells() -> gpd.GeoDataFrame:
    cols, rows = np.meshgrid(np.arange(COL0, COL0 + N), np.arange(ROW0, ROW0 + N))
    cols, rows = cols.ravel(), rows.ravel()
    geom = [shapely.box(*GRID.footprint(c, r)) for c, r in zip(cols, rows)]
    rng = np.random.default_rng(3)
    return gpd.GeoDataFrame({"crop_id": GRID.crop_ids(cols, rows), "col": cols, "row": rows,
                             "riot_probability": np.round(rng.uniform(0, 1, cols.size), 6)},
                            geometry=geom, crs=GRID.crs)


def _events(cells: gpd.GeoDataFrame, n: int, seed: int) -> pd.DataFrame:
    """Riots and protests at points inside random cells (some cells share points, as ACLED's do),
    dated before, inside and after the window, plus two far-away events that fix the export's range."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(cells), n)
    pts = [cells.geometry.iloc[i].centroid for i in pick]
    jitter = rng.choice([0.0, 150.0], n)  # half sit exactly at a cell's centre: shared locations
    x = np.array([p.x for p in pts]) + jitter * rng.uniform(-1, 1, n)
    y = np.array([p.y for p in pts]) + jitter * rng.uniform(-1, 1, n)
    lonlat = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=GRID.crs).to_crs(4326)
    dates = pd.Timestamp(AS_OF) + pd.to_timedelta(rng.integers(-HORIZON, HORIZON + 60, n), unit="D")
    df = make_events(n + 2, seed=seed)
    df.loc[: n - 1, "latitude"] = np.round(lonlat.y, 6).astype(str)
    df.loc[: n - 1, "longitude"] = np.round(lonlat.x, 6).astype(str)
    df.loc[n:, "latitude"], df.loc[n:, "longitude"] = "4.5", "31.0"
    df["event_date"] = list(dates.strftime("%Y-%m-%d")) + [f"{AS_OF.year - 1}-01-01", f"{AS_OF.year + 1}-02-15"]
    df["event_type"] = rng.choice(["Riots", "Protests"], n + 2, p=[0.4, 0.6])
    df["sub_event_type"] = np.where(df["event_type"] == "Riots", "Mob violence", "Peaceful protest")
    df["geo_precision"], df["time_precision"] = "1", "1"
    return df


def _prediction(tmp: Path, cells: gpd.GeoDataFrame, window: bool = True, exclude: tuple = (3,)) -> Path:
    pred = tmp / "predict"
    pred.mkdir()
    cells.drop(columns=["col", "row"]).to_file(pred / "cells.gpkg", layer="cells", driver="GPKG")  # as predict writes it
    run = {"format": "riotvit-prediction", "format_version": 1, "date": AS_OF.isoformat(), "grid": GRID.to_dict(),
           "crs": GRID.crs, "model": {"path": "../model"}}
    if window:
        run["window"] = {"as_of": AS_OF.isoformat(), "start": AS_OF.isoformat(),
                         "end": (AS_OF + dt.timedelta(days=HORIZON - 1)).isoformat(), "lead_days": 0,
                         "horizon_days": HORIZON, "event_types": ["Riots"], "label": "P(≥ 1 riot)"}
    (pred / "run.json").write_text(json.dumps(run))
    (tmp / "model").mkdir()
    (tmp / "model" / "bundle.json").write_text(json.dumps({
        "targets": {"lead_days": 0, "horizon_days": HORIZON, "riot_event_types": ["Riots"]},
        "provenance": {"join": {"config": {"acled": {"exclude_geo_precision": list(exclude)}}}}}))
    return pred


def _by_hand(cells: gpd.GeoDataFrame, events: pd.DataFrame) -> dict:
    """The same scores, computed independently: point-in-polygon joins and scikit-learn."""
    ev = events.assign(d=pd.to_datetime(events["event_date"]))
    ev = ev[(ev["event_type"] == "Riots") & (ev["geo_precision"] == "1")]
    pts = gpd.GeoDataFrame(ev, geometry=gpd.points_from_xy(ev["longitude"].astype(float), ev["latitude"].astype(float)),
                           crs=4326).to_crs(GRID.crs)
    t = pd.Timestamp(AS_OF)

    def hit(lo, hi):
        sel = pts[(pts["d"] >= lo) & (pts["d"] < hi)]
        j = gpd.sjoin(sel, cells[["crop_id", "geometry"]], predicate="within")
        return cells["crop_id"].isin(j["crop_id"]).to_numpy().astype(float), sel, j

    y, _, j = hit(t, t + pd.Timedelta(days=HORIZON))
    persist, _, _ = hit(t - pd.Timedelta(days=HORIZON), t)
    p = cells["riot_probability"].to_numpy()
    clim = persist.mean()
    ref_p, ref_c = brier_score_loss(y, persist), brier_score_loss(y, np.full_like(y, clim))
    locs = {(round(a, 4), round(b, 4)) for a, b in zip(j["longitude"].astype(float), j["latitude"].astype(float))}
    return {"y": y, "aupr": average_precision_score(y, p), "auroc": roc_auc_score(y, p), "brier": brier_score_loss(y, p),
            "bss_persistence": 1 - brier_score_loss(y, p) / ref_p, "bss_climatology": 1 - brier_score_loss(y, p) / ref_c,
            "persist_aupr": average_precision_score(y, persist), "persist_brier": ref_p, "clim": clim,
            "locations": len(locs), "events": len(j)}


@pytest.mark.parametrize("window_in_run", [True, False], ids=["run.json window", "window from the bundle"])
def test_score_matches_an_independent_computation(tmp_path, window_in_run):
    cells = _cells()
    events = _events(cells, 160, seed=1)
    events.to_csv(tmp_path / "later.csv", index=False)
    pred = _prediction(tmp_path, cells, window=window_in_run)
    rep = score_prediction(pred, tmp_path / "later.csv")
    ref = _by_hand(cells, events)

    assert rep.window.start == AS_OF and rep.window.end == dt.date(2024, 12, 30)
    assert rep.cells == 64 and rep.positive_cells == int(ref["y"].sum()) > 5
    for k in ("aupr", "auroc", "brier", "bss_persistence", "bss_climatology"):
        assert rep.model[k] == pytest.approx(ref[k], abs=1e-9), k
    assert rep.persistence["aupr"] == pytest.approx(ref["persist_aupr"], abs=1e-9)
    assert rep.persistence["brier"] == pytest.approx(ref["persist_brier"], abs=1e-9)
    assert rep.climatology == pytest.approx(ref["clim"])
    assert rep.event_locations == ref["locations"] and rep.events_in_window == ref["events"]
    saved = json.loads((pred / "score.json").read_text())
    assert saved["metrics"]["riotvit"]["aupr"] == pytest.approx(ref["aupr"])
    assert saved["window"]["end"] == "2024-12-30" and saved["positive_cells"] == rep.positive_cells


def test_the_bundles_acled_options_apply_with_a_window_in_run_json(tmp_path):
    """Events the labels left out (here precision 2, within ~2 km) are left out of the score too."""
    cells = _cells()
    events = _events(cells, 160, seed=1)
    events.loc[:29, "geo_precision"] = "2"
    events.to_csv(tmp_path / "later.csv", index=False)
    rep = score_prediction(_prediction(tmp_path, cells, window=True, exclude=(2, 3)), tmp_path / "later.csv")
    ref = _by_hand(cells, events)
    assert rep.positive_cells == int(ref["y"].sum()) and rep.model["aupr"] == pytest.approx(ref["aupr"], abs=1e-9)
    assert rep.event_locations == ref["locations"]


def test_thin_data_is_said_plainly(tmp_path):
    cells = _cells()
    events = _events(cells, 12, seed=5)
    events.to_csv(tmp_path / "later.csv", index=False)
    rep = score_prediction(_prediction(tmp_path, cells), tmp_path / "later.csv")
    assert 0 < rep.positive_cells < 20
    assert rep.thin.thin and rep.thin.sentence.startswith("Data too thin for a meaningful AUPR")
    assert f"{rep.positive_cells} positive crop" in rep.thin.sentence
    assert json.loads((tmp_path / "predict" / "score.json").read_text())["thin_data"]["thin"] is True


def test_an_export_that_misses_the_window_is_refused(tmp_path):
    cells = _cells()
    events = _events(cells, 40, seed=2)
    events = events[pd.to_datetime(events["event_date"]) < pd.Timestamp("2024-06-01")]
    events.to_csv(tmp_path / "early.csv", index=False)
    with pytest.raises(EventsError, match=r"events run 2023-01-01\.\.2024-0.* forecast window is 2024-01-01\.\.2024-12-30"):
        score_prediction(_prediction(tmp_path, cells), tmp_path / "early.csv")


def test_not_a_prediction_folder(tmp_path):
    _events(_cells(), 10, seed=0).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(InputError, match="not a prediction folder"):
        score_prediction(tmp_path, tmp_path / "e.csv")


def test_cli_prints_the_table_and_the_error_in_one_line(tmp_path):
    cells = _cells()
    _events(cells, 160, seed=1).to_csv(tmp_path / "later.csv", index=False)
    pred = _prediction(tmp_path, cells)
    res = CliRunner().invoke(app, ["score", str(pred), "--acled", str(tmp_path / "later.csv")])
    assert res.exit_code == 0, res.output
    assert "persistence" in res.output and "AUPR" in res.output and "2024-12-30" in res.output
    bad = CliRunner().invoke(app, ["score", str(tmp_path), "--acled", str(tmp_path / "later.csv")])
    assert bad.exit_code == 2 and "not a prediction folder" in bad.output and "Traceback" not in bad.output


def test_export_of_another_area_is_refused_and_event_types_are_recorded(tmp_path):
    cells = _cells()
    events = _events(cells, 160, seed=1)
    acled = tmp_path / "later.csv"
    events.to_csv(acled, index=False)
    pred = _prediction(tmp_path, cells)
    far = tmp_path / "far.csv"
    events.assign(latitude=events["latitude"].astype(float) + 5.0).to_csv(far, index=False)
    with pytest.raises(EventsError, match="no event within 10 km"):
        score_prediction(pred, far)
    rep = score_prediction(pred, acled, event_types=["Protests"], write=True)
    saved = json.loads((pred / "score.json").read_text())
    assert saved["window"]["event_types"] == ["Protests"] and "protest" in saved["window"]["label"]
    assert rep.window.event_types == ("Protests",)
