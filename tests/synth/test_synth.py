"""The embedded synthetic city: deterministic, realistic enough, with documented planted drivers."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from riotvit.join.events import ACLED_COLUMNS, EVENT_TYPES, read_acled
from riotvit.synth import SampleConfig, generate_sample
from riotvit.synth.city import INFORMAL, MARKET, VEGETATION, WATER


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "city"
    res = generate_sample(out, SampleConfig(size_km=4.0, seed=11))
    return out, res


def test_image_is_a_4band_utm_3m_geotiff_with_a_date(city):
    out, res = city
    with rasterio.open(out / "city.tif") as src:
        assert (src.count, src.dtypes[0], src.crs.to_epsg(), src.res) == (4, "uint16", 32737, (3.0, 3.0))
        assert src.descriptions == ("blue", "green", "red", "nir")
        assert src.tags()["ACQUISITION_DATE"] == "2022-06-15"
        assert src.width == src.height == 6 * 224  # 4 km rounds to 6 whole 672 m cells
        assert src.transform.c % 672 == 0 and src.transform.f % 672 == 0  # aligned with the crop grid


def test_spectra_follow_land_cover(city):
    out, _ = city
    with rasterio.open(out / "city.tif") as src:
        img = src.read().astype(np.float64)
    with rasterio.open(out / "truth" / "landcover.tif") as src:
        lc = src.read(1)
    blue, green, red, nir = img
    ndvi = (nir - red) / (nir + red)
    assert ndvi[lc == VEGETATION].mean() > 0.5
    assert nir[lc == WATER].mean() < 400 if (lc == WATER).any() else True
    assert ndvi[lc == INFORMAL].mean() < 0.25
    # markets are colourful: more spread between bands than the surrounding city
    spread = img.std(axis=0)
    assert spread[lc == MARKET].mean() > spread[lc == INFORMAL].mean()


def test_acled_file_is_a_current_31_column_export(city):
    out, res = city
    raw = pd.read_csv(out / "acled.csv")
    assert tuple(raw.columns) == ACLED_COLUMNS
    df, report = read_acled(out / "acled.csv")
    assert report.n_rows == report.n_valid == res.n_events and not report.skipped
    assert set(df["event_type"]) <= set(EVENT_TYPES) and "Riots" in set(df["event_type"])
    assert df["event_date"].min() < pd.Timestamp("2022-06-15") < df["event_date"].max()
    assert (df["country"] == "Synthland").all()


def test_wards_have_census_attributes(city):
    out, res = city
    w = gpd.read_file(out / "wards.gpkg")
    assert w.crs.to_epsg() == 4326 and len(w) == res.n_wards
    assert {"population", "households", "youth_share", "unemployment_rate"} <= set(w.columns)
    assert (w["population"] > 0).all() and (w["households"] < w["population"]).all()
    assert w["unemployment_rate"].between(0, 1).all() and w["youth_share"].between(0, 1).all()
    # wards tile the image without gaps
    with rasterio.open(out / "city.tif") as src:
        img_area = (src.bounds.right - src.bounds.left) * (src.bounds.top - src.bounds.bottom)
    assert w.to_crs(32737).area.sum() == pytest.approx(img_area, rel=1e-3)


def test_riots_follow_the_planted_rates(city):
    """Riots recorded after the last date follow the last date's planted rate."""
    out, _ = city
    truth = pd.read_parquet(out / "truth" / "cells.parquet")
    truth = truth[truth["date"] == truth["date"].max()].copy()
    ev, _ = read_acled(out / "acled.csv")
    riots = ev[(ev["event_type"] == "Riots") & (ev["geo_precision"] == 1) & (ev["event_date"] >= pd.Timestamp("2022-06-15"))]
    pts = gpd.GeoSeries.from_xy(riots["longitude"], riots["latitude"], crs=4326).to_crs(32737)
    col = np.floor(pts.x / 672).astype(int)
    row = np.floor(pts.y / 672).astype(int)
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([col, row])).groupby(level=[0, 1]).sum()
    truth["riots"] = [counts.get((c, r), 0) for c, r in zip(truth["col"], truth["row"])]
    hot = truth["rate_post"] > truth["rate_post"].median()
    assert truth.loc[hot, "riots"].mean() > 2 * truth.loc[~hot, "riots"].mean()
    assert np.corrcoef(truth["riots"], truth["rate_post"])[0, 1] > 0.5


def test_documented_relationships(city):
    out, _ = city
    meta = json.loads((out / "sample.json").read_text())
    assert meta["planted"]["coefficients"]["market_score"] > 0
    assert [d["date"] for d in meta["dates"]] == ["2019-06-15", "2020-06-15", "2021-06-15", "2022-06-15"]
    assert all(d["onsets"] > 0 and d["markets"] > 0 for d in meta["dates"][1:])
    text = (out / "SAMPLE.md").read_text()
    assert "log rate_post" in text and "onset" in text and "city_2019-06-15.tif" in text
