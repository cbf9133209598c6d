"""``riotvit join`` on the real Nairobi data: WorldPop tiles, the ACLED sample, Kenya's counties."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from riotvit.join.census import CensusConfig
from riotvit.join.events.acled import read_acled
from riotvit.join.stage import JoinConfig, join, project_events, read_samples
from riotvit.tile.plan import SourceSpec, TileConfig
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def nairobi(tmp_path_factory, request):
    from conftest import real_path

    tmp = tmp_path_factory.mktemp("nairobi")
    wp = real_path("worldpop_nairobi", "ken_pop_nairobi_100m.tif")
    acled = real_path("acled_sample_2022", "acled_global_sample_2022H1.csv")
    counties = real_path("kenya_counties_census2019", "kenya_counties_census2019.gpkg")
    ts = tile([SourceSpec(wp, bands=["population"], date="2021-12-01")], tmp / "tiles", TileConfig(crop_px=16)).path
    cfg = JoinConfig(census=CensusConfig(extensive=["pop2019_total", "households2019"], intensive=["avg_hh_size2019"],
                                         population="pop2019_total", id_column="COUNTY"))
    res = join(ts, acled, counties, tmp / "samples.parquet", cfg, population_raster=wp)
    df, meta = read_samples(res.path)
    return ts, acled, counties, res, df, meta


def test_nairobi_events_and_labels_match_geopandas(nairobi):
    ts, acled, counties, res, df, meta = nairobi
    raw = pd.read_csv(acled)
    assert res.events["read"] == len(raw) == 9000
    ev, _ = read_acled(acled)
    ev = project_events(ev, 32737)
    t0, t1 = pd.Timestamp("2021-12-01"), pd.Timestamp("2022-12-01")
    use = ev[~ev["label_excluded"] & (ev["event_date"] >= t0) & (ev["event_date"] < t1)]
    crops = TileSet.open(ts).tiles.set_index("crop_id")
    # independent: buffer each riot point by its radius and intersect with crop squares
    riots = use[use["event_type"] == "Riots"]
    pts = gpd.GeoDataFrame(geometry=shapely.points(riots["x"], riots["y"]).tolist(), crs=32737)
    pts["geometry"] = [p.buffer(r) if r > 0 else p for p, r in zip(pts.geometry, riots["radius_m"])]
    hit = gpd.sjoin(crops.reset_index()[["crop_id", "geometry"]], pts, predicate="intersects")
    expected = hit.groupby("crop_id").size()
    got = df.set_index("crop_id")["event_count"]
    assert int(got.sum()) == int(expected.sum()) > 0
    assert set(got[got > 0].index) == set(expected.index)
    assert "runs past the export's last event" in " ".join(res.warnings)
    kenya_riots = raw[(raw["country"] == "Kenya") & (raw["event_type"] == "Riots")]
    assert len(kenya_riots) >= df["event_count"].max()


def test_nairobi_population_is_conserved(nairobi, tmp_path):
    ts, acled, counties, res, df, meta = nairobi
    c = gpd.read_file(counties).to_crs(32737)
    t = TileSet.open(ts)
    union = shapely.union_all(t.tiles.geometry.values)
    share = c.geometry.intersection(union).area / c.geometry.area
    nbo = c["COUNTY"] == "Nairobi"
    assert 0.7 < float(share[nbo].iloc[0]) < 1.0  # WorldPop's nodata (e.g. the national park) drops some crops
    # areal interpolation: crops carry each county's population times its covered share
    areal = join(ts, acled, counties, tmp_path / "areal.parquet",
                 JoinConfig(census=CensusConfig(extensive=["pop2019_total"], population="pop2019_total")))
    da, ma = read_samples(areal.path)
    assert ma["census"]["method"] == "areal"
    assert da["census_pop2019_total"].sum() == pytest.approx(float((c["pop2019_total"] * share).sum()), rel=1e-4)
    # dasymetric: the same counties' people, placed where WorldPop puts them
    assert meta["census"]["method"] == "dasymetric"
    touched = c[share > 0]
    assert 0.8 * float(c.loc[nbo, "pop2019_total"].iloc[0]) < df["census_pop2019_total"].sum() < float(touched["pop2019_total"].sum())
    chips, masks = t.read(df["chip_index"].to_numpy())
    wp_mean = np.where(masks, chips[:, 0], 0).mean(axis=(1, 2))
    r_dasy = np.corrcoef(wp_mean, df["census_pop2019_total"])[0, 1]
    r_areal = np.corrcoef(wp_mean, da["census_pop2019_total"])[0, 1]
    assert r_dasy > 0.9 and r_dasy > r_areal + 0.2
    assert np.isfinite(df.filter(like="hist_").to_numpy()).all()
