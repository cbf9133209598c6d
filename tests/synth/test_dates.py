"""The synthetic city at several acquisition dates: one image per date, change only where the
layout changed, per-date planted rates, onset cells, and byte-identical files per seed."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from pydantic import ValidationError
from pyproj import Transformer

from riotvit.synth import SampleConfig, generate_sample
from riotvit.synth.city import MARKET

DATES = ["2019-06-15", "2020-06-15", "2021-06-15", "2022-06-15"]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("dated") / "city"
    res = generate_sample(out, SampleConfig(size_km=4.0, seed=11))
    return out, res


def _image(out, date):
    return out / ("city.tif" if date == DATES[-1] else f"city_{date}.tif")


def _landcover(out, date):
    return out / "truth" / ("landcover.tif" if date == DATES[-1] else f"landcover_{date}.tif")


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.tags(), src.transform


def test_one_image_per_date_with_its_own_acquisition_date(city):
    out, res = city
    meta = json.loads((out / "sample.json").read_text())
    assert meta["images"] == [{"date": d, "file": _image(out, d).name} for d in DATES]
    assert res.images == [_image(out, d).name for d in DATES]
    tags, transforms = [], set()
    for d in DATES:
        _, t, tr = _read(_image(out, d))
        tags.append(t["ACQUISITION_DATE"])
        transforms.add(tuple(tr))
    assert tags == DATES and len(transforms) == 1  # distinct dates, one grid
    for d in DATES:
        digest = hashlib.sha256(_image(out, d).read_bytes()).hexdigest()
        assert meta["files"][_image(out, d).name] == digest


def test_pixels_change_only_where_the_layout_changed(city):
    out, _ = city
    for a, b in zip(DATES, DATES[1:]):
        img_a, img_b = _read(_image(out, a))[0], _read(_image(out, b))[0]
        lc_a, lc_b = _read(_landcover(out, a))[0][0], _read(_landcover(out, b))[0][0]
        changed = lc_a != lc_b
        differs = (img_a != img_b).any(axis=0)
        assert 0 < changed.mean() < 0.2, (a, b, changed.mean())
        assert (~differs[~changed]).mean() >= 0.99  # outside the changes the images are the same
        assert not differs[~changed].any()  # ... exactly: texture and noise are drawn once
        assert differs[changed].mean() > 0.95  # and what changed is visible
        opened = (lc_b == MARKET) & (lc_a != MARKET)
        if opened.any():
            assert differs[opened].mean() > 0.9  # not all: market aisles are concrete, like formal yards


def test_truth_has_a_row_per_cell_and_date_with_onsets(city):
    out, res = city
    truth = pd.read_parquet(out / "truth" / "cells.parquet")
    assert len(truth) == res.n_cells * len(DATES) and sorted(truth["date"].unique()) == DATES
    assert not truth.duplicated(["col", "row", "date"]).any()
    assert {"market_score", "informal_score", "junction_score", "log_rate", "rate", "rate_pre", "rate_post", "onset"} <= set(truth.columns)
    assert np.allclose(truth["rate"], np.exp(truth["log_rate"]))
    onsets = truth.groupby("date")["onset"].sum()
    assert onsets[DATES[0]] == 0  # the first date looks like the early history: nothing rose
    assert (onsets[DATES[1:]] > 0).all(), onsets
    assert (truth.loc[truth["onset"], "log_rate"] > truth.loc[truth["onset"], "log_rate_pre"]).all()
    assert json.loads((out / "sample.json").read_text())["dates"][2]["onsets"] == onsets[DATES[2]]


def test_onset_cells_had_no_recorded_riot_in_the_year_before(city):
    """Recount riots per 672 m crop footprint from acled.csv's lon/lat, independent of the generator."""
    out, _ = city
    truth = pd.read_parquet(out / "truth" / "cells.parquet")
    acled = pd.read_csv(out / "acled.csv")
    riots = acled[acled["event_type"] == "Riots"]
    x, y = Transformer.from_crs(4326, 32737, always_xy=True).transform(riots["longitude"].to_numpy(), riots["latitude"].to_numpy())
    cell = pd.Series(list(zip(np.floor(x / 672).astype(int), np.floor(y / 672).astype(int))), index=riots.index)
    when = pd.to_datetime(riots["event_date"])
    checked = 0
    for d in DATES[1:]:
        t = pd.Timestamp(d)
        recent = set(cell[(when >= t - pd.Timedelta(days=365)) & (when < t)])
        onset = truth[(truth["date"] == d) & truth["onset"]]
        assert not {(c, r) for c, r in zip(onset["col"], onset["row"])} & recent, d
        checked += len(onset)
        # and riot-free cells with a rising rate are onsets: the flag is not just a subset
        quiet = truth[(truth["date"] == d) & (truth["log_rate"] - truth["log_rate_pre"] > 0.1)]
        assert quiet["onset"].sum() == sum((c, r) not in recent for c, r in zip(quiet["col"], quiet["row"]))
    assert checked > 0


def test_rates_rise_where_a_market_opened(city):
    out, _ = city
    truth = pd.read_parquet(out / "truth" / "cells.parquet").sort_values(["col", "row", "date"])
    prev = truth.groupby(["col", "row"]).shift(1)
    opened = (truth["market_frac"] > 0.02) & (prev["market_frac"] == 0)
    assert opened.sum() >= 3
    assert (truth.loc[opened, "log_rate"] > prev.loc[opened, "log_rate"] + 1.0).all()
    unchanged = (truth["market_frac"] == prev["market_frac"]) & (truth["informal_frac"] == prev["informal_frac"]) & (
        truth["junctions"] == prev["junctions"])
    assert (truth.loc[unchanged, "log_rate"] == prev.loc[unchanged, "log_rate"]).all()


def test_riots_follow_the_rate_of_each_period(city):
    """Cells where a market opened see more riots per year after it opened than before."""
    out, _ = city
    truth = pd.read_parquet(out / "truth" / "cells.parquet").sort_values(["col", "row", "date"])
    prev = truth.groupby(["col", "row"]).shift(1)
    opened = truth[(truth["market_frac"] > 0.02) & (prev["market_frac"] == 0)]
    acled = pd.read_csv(out / "acled.csv")
    riots = acled[(acled["event_type"] == "Riots") & (acled["geo_precision"] == 1)]
    x, y = Transformer.from_crs(4326, 32737, always_xy=True).transform(riots["longitude"].to_numpy(), riots["latitude"].to_numpy())
    col, row, when = np.floor(x / 672).astype(int), np.floor(y / 672).astype(int), pd.to_datetime(riots["event_date"]).to_numpy()
    before = after = 0
    for c, r, d in zip(opened["col"], opened["row"], opened["date"]):
        t = pd.Timestamp(d)
        here = (col == c) & (row == r)
        before += int((here & (when >= pd.Timestamp(DATES[0])) & (when < t)).sum())
        after += int((here & (when >= t) & (when < t + pd.Timedelta(days=730))).sum())
    years_before = sum((pd.Timestamp(d) - pd.Timestamp(DATES[0])).days / 365.25 for d in opened["date"])
    assert after / (2 * len(opened)) > 2 * before / years_before, (after, before, years_before)


def test_same_seed_same_bytes_for_every_file(city, tmp_path):
    out, _ = city
    again = generate_sample(tmp_path / "again", SampleConfig(size_km=4.0, seed=11)).path
    names = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for n in names:
        assert hashlib.sha256((out / n).read_bytes()).hexdigest() == hashlib.sha256((again / n).read_bytes()).hexdigest(), n
    other = generate_sample(tmp_path / "other", SampleConfig(size_km=4.0, seed=12)).path
    assert (out / "acled.csv").read_bytes() != (other / "acled.csv").read_bytes()


def test_dates_are_validated_and_one_date_still_works(tmp_path):
    assert SampleConfig().image_date.isoformat() == DATES[-1]
    assert SampleConfig(dates="2020-01-01, 2021-01-01").dates[-1].isoformat() == "2021-01-01"
    for bad in ([], ["2021-01-01", "2020-01-01"], ["2021-01-01", "2021-01-01"]):
        with pytest.raises(ValidationError):
            SampleConfig(dates=bad)
    out = generate_sample(tmp_path / "one", SampleConfig(size_km=2.0, seed=3, dates=["2023-01-10"])).path
    assert sorted(p.name for p in out.glob("*.tif")) == ["city.tif"]
    with rasterio.open(out / "city.tif") as src:
        assert src.tags()["ACQUISITION_DATE"] == "2023-01-10"
    truth = pd.read_parquet(out / "truth" / "cells.parquet")
    assert set(truth["date"]) == {"2023-01-10"} and not truth["onset"].any()
