"""``riotvit join``: targets and history against brute force, no leakage, folds, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from join_fixtures import (
    COL0,
    N_COLS,
    N_ROWS,
    ROW_TOP,
    crop_centre,
    make_tileset,
    random_events,
    write_census,
    write_events,
)
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import CensusError, EventsError, OutputExistsError
from riotvit.join.census import CensusConfig
from riotvit.join.events.acled import read_acled
from riotvit.join.stage import JoinConfig, join, project_events, read_samples

T = pd.Timestamp("2022-03-01")
SLUGS = {"Riots": "riots", "Protests": "protests", "Battles": "battles", "Violence against civilians": "vac",
         "Strategic developments": "strategic", "Explosions/Remote violence": "explosions"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("join")
    ts = make_tileset(tmp)
    acled = write_events(tmp / "acled.csv", random_events(600, seed=4))
    census = write_census(tmp / "wards.gpkg")
    cfg = JoinConfig(census=CensusConfig(extensive=["population", "households"], intensive=["unemployment"]))
    res = join(ts, acled, census, tmp / "samples.parquet", cfg)
    df, meta = read_samples(res.path)
    ev, _ = read_acled(acled)
    ev = project_events(ev, 32637)
    return tmp, ts, acled, census, res, df, meta, ev


def _dist_to_box(x, y, col, row):
    x0, y0 = col * 672.0, row * 672.0
    dx = np.maximum(np.maximum(x0 - x, x - (x0 + 672.0)), 0)
    dy = np.maximum(np.maximum(y0 - y, y - (y0 + 672.0)), 0)
    return np.hypot(dx, dy)


def test_targets_equal_a_brute_force_loop(world):
    *_, df, meta, ev = world
    use = ev[~ev["label_excluded"] & (ev["event_date"] >= T) & (ev["event_date"] < T + pd.Timedelta(days=365))]
    for _, r in df.iterrows():
        inside = use[_dist_to_box(use["x"].to_numpy(), use["y"].to_numpy(), r.col, r.row) <= use["radius_m"].to_numpy()]
        riots = inside[inside["event_type"] == "Riots"]
        assert r.event_count == len(riots) and r.riot == int(len(riots) > 0)
        assert r.fatalities == riots["fatalities"].sum()
        assert r.crowd_size == (riots["crowd_class"].max() if len(riots) else 0)
        for et, slug in SLUGS.items():
            assert r[f"count_{slug}"] == (inside["event_type"] == et).sum()
    assert df["riot"].sum() > 5 and meta["targets"][0] == "riot"


def test_history_equals_brute_force_and_uses_only_the_past(world):
    *_, df, meta, ev = world
    ok = ~ev["label_excluded"]
    known = ev["event_date"] + pd.to_timedelta(ev["date_uncertainty_days"], unit="D")
    for w in (90, 365):
        past = ev[ok & (known < T) & (ev["event_date"] >= T - pd.Timedelta(days=w))]
        px, py = past["x"].to_numpy(), past["y"].to_numpy()
        for _, r in df.sample(40, random_state=1).iterrows():
            inside = past[_dist_to_box(px, py, r.col, r.row) == 0]
            cx, cy = crop_centre(r.col, r.row)
            d = np.hypot(px - cx, py - cy)
            for et, slug in SLUGS.items():
                assert r[f"hist_{slug}_{w}d_crop"] == (inside["event_type"] == et).sum()
                sel = (past["event_type"] == et).to_numpy()
                for rad, name in ((2000, "2km"), (10000, "10km")):
                    exact = int((d[sel] <= rad).sum())
                    fuzzy = int((np.abs(d[sel] - rad) < 250).sum())  # fine lattice: exact to ~170 m
                    assert abs(r[f"hist_{slug}_{w}d_{name}"] - exact) <= fuzzy
    riots = ev[ok & (known < T) & (ev["event_type"] == "Riots")]
    for _, r in df.sample(30, random_state=2).iterrows():
        cx, cy = crop_centre(r.col, r.row)
        d = np.hypot(riots["x"] - cx, riots["y"] - cy)
        near = riots[d <= 9000]  # certainly within 10 km
        far_ok = riots[d <= 11000]
        lo = (T - far_ok["event_date"].max()).days if len(far_ok) else 1825
        hi = (T - near["event_date"].max()).days if len(near) else 1825
        assert lo <= r["hist_days_since_riot_10km"] <= hi


def test_persistence_and_onset_equal_a_brute_force_loop(world):
    """persist_*: riots matched like the label, in the horizon before t; onset: none in the year before t."""
    *_, df, meta, ev = world
    known = ev["event_date"] + pd.to_timedelta(ev["date_uncertainty_days"], unit="D")
    riots = ev[~ev["label_excluded"] & (ev["event_type"] == "Riots") & (known < T)]
    past = riots[riots["event_date"] >= T - pd.Timedelta(days=365)]  # horizon = 365 days here
    d = _dist_to_box(past["x"].to_numpy(), past["y"].to_numpy(), df["col"].to_numpy()[:, None],
                     df["row"].to_numpy()[:, None])
    n = (d <= past["radius_m"].to_numpy()[None, :]).sum(1)
    assert df["persist_count"].tolist() == n.tolist()
    assert df["persist_riot"].tolist() == (n > 0).astype(int).tolist()
    assert df["riots_prev_365d"].tolist() == n.tolist() and df["onset"].tolist() == (n == 0).astype(int).tolist()
    assert 0 < df["persist_riot"].sum() < len(df)
    assert not {"persist_riot", "onset"} & set(meta["features"])  # reference columns, never model inputs


def test_no_feature_uses_information_from_t_onward(tmp_path):
    """Adding events dated t or later, or imprecise ones that may be after t, changes no feature."""
    ts = make_tileset(tmp_path)
    base = random_events(300, seed=7)
    a = join(ts, write_events(tmp_path / "a.csv", base), None, tmp_path / "a.parquet")
    x, y = crop_centre(COL0 + 3, ROW_TOP - 4)
    future = [{"x": x, "y": y, "date": T + pd.Timedelta(days=k), "event_type": et}
              for k in range(0, 400, 3) for et in ("Riots", "Protests", "Battles")]
    unsure = [{"x": x, "y": y, "date": T - pd.Timedelta(days=3), "time_precision": 2, "event_type": "Riots"}]
    b = join(ts, write_events(tmp_path / "b.csv", base + future + unsure), None, tmp_path / "b.parquet")
    da, ma = read_samples(a.path)
    db, _ = read_samples(b.path)
    feats = ma["features"]
    assert feats and all(f.startswith("hist_") for f in feats)
    pd.testing.assert_frame_equal(da[feats], db[feats])
    ref = ["persist_riot", "persist_count", "riots_prev_365d", "onset"]  # persistence and onsets: past only too
    pd.testing.assert_frame_equal(da[ref], db[ref])
    assert db["event_count"].sum() > da["event_count"].sum()  # the future events are labels, not features
    # an event 8 days before t with a week's uncertainty is certainly in the past: it does count
    sure = [{"x": x, "y": y, "date": T - pd.Timedelta(days=8), "time_precision": 2, "event_type": "Riots"}]
    c = join(ts, write_events(tmp_path / "c.csv", base + sure), None, tmp_path / "c.parquet")
    dc, _ = read_samples(c.path)
    k = (da["col"] == COL0 + 3) & (da["row"] == ROW_TOP - 4)
    assert (dc.loc[k, "hist_riots_90d_crop"].to_numpy() - da.loc[k, "hist_riots_90d_crop"].to_numpy()).tolist() == [1.0]


def test_label_window_honours_lead_and_horizon(tmp_path):
    ts = make_tileset(tmp_path)
    x, y = crop_centre(COL0 + 1, ROW_TOP - 1)
    evs = [{"x": x, "y": y, "date": T + pd.Timedelta(days=d)} for d in (29, 30, 119)]
    evs += [{"x": x + 672 * 3, "y": y, "date": T + pd.Timedelta(days=120)}]
    res = join(ts, write_events(tmp_path / "e.csv", evs), None, tmp_path / "s.parquet",
               JoinConfig(lead_days=30, horizon_days=90))
    df, meta = read_samples(res.path)
    got = df.loc[df["event_count"] > 0, ["col", "row", "event_count"]].values.tolist()
    assert got == [[COL0 + 1, ROW_TOP - 1, 2]]  # days 30 and 119 in [30, 120); 29 and 120 out
    assert meta["label_windows"] == [["2022-03-31", "2022-06-29"]]


def test_precision_radius_and_exclusion(tmp_path):
    ts = make_tileset(tmp_path)
    x, y = crop_centre(COL0 + 5, ROW_TOP - 5)
    evs = [{"x": x, "y": y, "date": T + pd.Timedelta(days=10), "geo_precision": 2},
           {"x": x, "y": y, "date": T + pd.Timedelta(days=10), "geo_precision": 3}]
    res = join(ts, write_events(tmp_path / "e.csv", evs), None, tmp_path / "s.parquet")
    df, _ = read_samples(res.path)
    d = _dist_to_box(x, y, df["col"].to_numpy(), df["row"].to_numpy())
    # crops whose footprint is within 2 km of the point: 3 crops each way (7 x 7), minus the 4 corners
    assert (df["riot"] == (d <= 2000)).all() and df["riot"].sum() == 49 - 4
    assert res.events["excluded (precision)"] == 1


def test_census_and_folds(world):
    tmp, ts, acled, census, res, df, meta, ev = world
    assert df["census_population"].sum() == pytest.approx(240000, rel=1e-6)  # crops tile the wards exactly
    assert set(np.round(df["census_unemployment"].astype(float), 6)) == {0.1, 0.2, 0.3, 0.4}
    assert df["census_pop_density_km2"].max() == pytest.approx(120000 / (6 * 5 * 0.672**2), rel=1e-6)
    # whole 5 km blocks go to one fold
    bx = np.floor(df["x"] / 5000).astype(int)
    by = np.floor(df["y"] / 5000).astype(int)
    assert df.groupby([bx, by])["fold"].nunique().max() == 1
    # near_folds: brute force over crops within one ring
    for _, r in df.sample(40, random_state=3).iterrows():
        nb = df[(abs(df["col"] - r.col) <= 1) & (abs(df["row"] - r.row) <= 1) & (df["fold"] != r.fold)]
        assert r.near_folds == sum(1 << f for f in set(nb["fold"]))
    assert set(df["split"]) <= {"train", "val", "test", "buffer"}
    tr = df[df["split"] == "train"]
    nf = tr["near_folds"].to_numpy()
    assert not (((nf >> 0) & 1) | ((nf >> 1) & 1)).any()
    assert meta["folds"]["n"] == 5 and len(res.folds) >= 2


def test_temporal_split_and_two_dates(tmp_path):
    a = make_tileset(tmp_path, date="2021-03-01")
    from riotvit.tile.tileset import TileSet

    t1 = TileSet.open(a)
    acled = write_events(tmp_path / "e.csv", random_events(200, seed=3))
    res = join(a, acled, None, tmp_path / "s.parquet", JoinConfig(temporal_split="2021-06-01"))
    df, _ = read_samples(res.path)
    assert (df["time_split"] == "past").all() and len(df) == len(t1)


def test_bad_inputs(world, tmp_path):
    tmp, ts, acled, census, *_ = world
    far = write_events(tmp_path / "far.csv", [{"x": 900000.0, "y": 2000000.0, "date": "2022-05-01"}])
    with pytest.raises(EventsError, match=r"all 1 events lie outside the tile set .*tile set: lon .*; events: lon"):
        join(ts, far, None, tmp_path / "x.parquet")
    late = write_events(tmp_path / "late.csv", [{"x": 403500.0, "y": 671000.0, "date": "2030-01-01"}])
    with pytest.raises(EventsError, match="label windows .* lie outside the export's dates"):
        join(ts, late, None, tmp_path / "x.parquet")
    with pytest.raises(CensusError, match="populaton.*population"):
        join(ts, acled, census, tmp_path / "x.parquet", JoinConfig(census=CensusConfig(extensive=["populaton"])))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        join(ts, acled, None, tmp / "samples.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_cli_join_prints_a_summary_and_errors_in_one_line(world, tmp_path):
    tmp, ts, acled, census, *_ = world
    r = CliRunner().invoke(app, ["join", str(ts), "--acled", str(acled), "--census", str(census),
                                 "--extensive", "population", "--out", str(tmp_path / "s.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["rows"] == N_COLS * N_ROWS and "census_population" in s["features"] and s["positives"]["riot"] > 0
    r = CliRunner().invoke(app, ["join", str(ts), "--acled", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "t.parquet")])
    assert r.exit_code == 2 and r.output.startswith("error:") and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["join", str(ts), "--acled", str(acled), "--census", str(census), "--out",
                                 str(tmp_path / "u.parquet")])
    assert r.exit_code == 2 and "--extensive" in r.output


def test_rerun_removes_temporaries_of_killed_runs_only(world, tmp_path):
    """A join killed while writing leaves ``.NAME.tmpPID``; the next run removes it if that pid is gone."""
    import os
    import subprocess
    import sys

    _, ts, acled, *_ = world
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".s.parquet.tmp{dead.pid}"
    stale.write_bytes(b"half a parquet file")
    live = tmp_path / f".s.parquet.tmp{os.getppid()}"  # a concurrent run's file: left alone
    live.write_bytes(b"in progress")
    user = tmp_path / ".s.parquet.tmpnotes"  # not riotvit's pattern
    user.write_text("mine")
    join(ts, acled, None, tmp_path / "s.parquet")
    assert (tmp_path / "s.parquet").is_file() and not stale.exists()
    assert live.read_bytes() == b"in progress" and user.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.parquet", live.name, user.name])
