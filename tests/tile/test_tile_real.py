"""Tiling the real rasters in ../shared/data/real (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from riotvit.grid import CropGrid
from riotvit.tile.blockwork import in_stats_sample
from riotvit.tile.plan import SourceSpec, TileConfig, plan_tiles
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

pytestmark = pytest.mark.real


def _check_stats_against_numpy(ts: TileSet) -> None:
    """Statistics equal numpy over the same pixels: the valid pixels of the sampled crops."""
    every = ts.info["stats_sample"]["every"]
    t = ts.tiles
    sample = np.flatnonzero(in_stats_sample(t["col"].to_numpy(), t["row"].to_numpy(), every))
    chips, masks = ts.read(t["chip_index"].to_numpy()[sample])
    for b, name in enumerate(ts.bands):
        v = chips[:, b][masks].astype(np.float64)
        s = ts.stats[name]
        assert s["count"] == v.size
        assert s["mean"] == pytest.approx(v.mean(), rel=1e-6)
        assert s["std"] == pytest.approx(v.std(), rel=1e-4)
        if np.issubdtype(chips.dtype, np.integer):
            assert (s["p2"], s["p98"]) == (pytest.approx(np.percentile(v, 2)), pytest.approx(np.percentile(v, 98)))


def _check_footprints(ts: TileSet, raster_bounds_grid) -> None:
    g = ts.grid
    box = shapely.box(*raster_bounds_grid)
    t = ts.tiles
    assert t.geometry.intersects(box).all()
    fp = g.footprints(t["col"].to_numpy(), t["row"].to_numpy())
    np.testing.assert_array_equal(np.array([geom.bounds for geom in t.geometry]), fp)
    inside = t.geometry.within(box)
    assert (t.loc[inside, "valid_fraction"] > 0.99).all()


def test_landsat7_olinda_projected_28m(tmp_path, real):
    p = real("landsat7_olinda", "L7_ETMs.tif")
    cfg = TileConfig(crop_px=56, date="2000-07-31")  # 12 m GSD keeps the test fast
    res = tile([SourceSpec(p)], tmp_path / "ts", cfg)
    ts = TileSet.open(res.path)
    with rasterio.open(p) as src:
        bounds = tuple(src.bounds)
    g = ts.grid
    assert g.epsg == 31985 and ts.bands[:4] == ["band_1", "band_2", "band_3", "band_4"] and len(ts.bands) == 6
    assert res.n_candidates == g.count_in_bounds(bounds) == 16 * 16
    cols, rows = g.cells_in_bounds(bounds)
    expected_full = sum(
        1 for c in cols for r in rows
        if g.footprint(c, r)[0] >= bounds[0] and g.footprint(c, r)[2] <= bounds[2]
        and g.footprint(c, r)[1] >= bounds[1] and g.footprint(c, r)[3] <= bounds[3]
    )
    assert (ts.tiles["valid_fraction"] > 0.99).sum() == expected_full
    _check_footprints(ts, bounds)
    _check_stats_against_numpy(ts)


def test_naip_nodata_zero_is_masked(tmp_path, real):
    p = real("naip_north_dakota", "m_4709963_se_14_1_20200831.tif")
    res = tile([SourceSpec(p, bands=["red", "green", "blue", "nir"], date="2020-08-31")], tmp_path / "ts",
               TileConfig(crop_px=112))
    ts = TileSet.open(res.path)
    with rasterio.open(p) as src:
        bounds = tuple(src.bounds)
        assert src.nodata == 0
    assert ts.grid.epsg == 26914 and ts.bands == ["red", "green", "blue", "nir"]
    assert res.n_candidates == ts.grid.count_in_bounds(bounds)
    # partly masked crops are exactly those reaching past the scene's edge
    edge = ~ts.tiles.geometry.within(shapely.box(*bounds))
    assert res.n_masked == int(edge.sum()) > 0
    chips, masks = ts.read(np.arange(len(ts)))
    # nodata never leaks into the statistics as zero reflectance
    assert all(ts.stats[b]["min"] > 0 or ts.stats[b]["count"] < masks.sum() for b in ts.bands)
    assert (chips[~np.broadcast_to(masks[:, None], chips.shape)] == 0).all()
    _check_footprints(ts, bounds)
    _check_stats_against_numpy(ts)


def test_rasterio_landsat_300m_warns_and_tiles(tmp_path, real):
    p = real("rasterio_rgb_byte", "RGB.byte.tif")
    cfg = TileConfig(crop_px=8, date="1999-11-01")  # 84 m GSD: a smoke test of a very coarse raster
    plan = plan_tiles([SourceSpec(p)], cfg)
    assert any("300 m pixels give only 2.2 source pixels" in w for w in plan.warnings)
    res = tile([SourceSpec(p)], tmp_path / "ts", cfg)
    ts = TileSet.open(res.path)
    with rasterio.open(p) as src:
        bounds = tuple(src.bounds)
    assert ts.grid.epsg == 32618 and ts.bands == ["red", "green", "blue"]
    assert res.n_candidates == ts.grid.count_in_bounds(bounds)
    assert 0 < res.n_crops < res.n_candidates  # the rotated scene's black corners are nodata
    _check_stats_against_numpy(ts)


def test_worldpop_geographic_float_is_reprojected_to_utm(tmp_path, real):
    p = real("worldpop_nairobi", "ken_pop_nairobi_100m.tif")
    res = tile([SourceSpec(p, bands=["population"], date="2025-01-01")], tmp_path / "ts",
               TileConfig(crop_px=32, resampling="bilinear"))
    ts = TileSet.open(res.path)
    assert ts.grid.epsg == 32737 and ts.info["dtype"] == "float32"
    with rasterio.open(p) as src:
        b_utm = transform_bounds(src.crs, "EPSG:32737", *src.bounds, densify_pts=21)
        data = src.read(1, masked=True)
    assert res.n_candidates == ts.grid.count_in_bounds(b_utm)
    t = ts.tiles
    assert t.geometry.intersects(shapely.box(*b_utm)).all()
    chips, masks = ts.read(np.arange(len(ts)))
    assert np.isfinite(chips[:, 0][masks]).all() and (chips[:, 0][masks] >= 0).all()
    # people per pixel: 100 m source pixels resampled to 21 m keep the density scale of the source
    assert ts.stats["population"]["max"] <= float(data.max()) + 1e-3
    _check_stats_against_numpy(ts)


def test_crop_ids_agree_where_two_tile_sets_overlap(tmp_path, real):
    """Two overlapping windows of the NAIP scene, tiled separately, give the same crops in common."""
    p = real("naip_north_dakota", "m_4709963_se_14_1_20200831.tif")
    paths = []
    with rasterio.open(p) as src:
        prof = src.profile
        for name, win in (("a", Window(0, 0, 700, 600)), ("b", Window(150, 100, 700, 600))):
            q = tmp_path / f"{name}.tif"
            prof.update(width=win.width, height=win.height, transform=src.window_transform(win))
            with rasterio.open(q, "w", **prof) as dst:
                dst.write(src.read(window=win))
            paths.append(q)
    cfg = TileConfig(crop_px=112, date="2020-08-31", min_valid=0.0)
    a = TileSet.open(tile([paths[0]], tmp_path / "ta", cfg).path)
    b = TileSet.open(tile([paths[1]], tmp_path / "tb", cfg).path)
    ta, tb = a.tiles.set_index("crop_id"), b.tiles.set_index("crop_id")
    with rasterio.open(paths[0]) as s0, rasterio.open(paths[1]) as s1:
        inter = shapely.box(*s0.bounds).intersection(shapely.box(*s1.bounds))
    # crops whose resampling kernel (2 source pixels of 5 m) stays inside both files
    core = inter.buffer(-10.0, join_style="mitre")
    common = [c for c in ta.index.intersection(tb.index) if ta.loc[c, "geometry"].within(core)]
    assert len(common) >= 4
    g = CropGrid.from_dict(a.info["grid"])
    for cid in common:
        assert ta.loc[cid, "geometry"].equals(tb.loc[cid, "geometry"])
        assert ta.loc[cid, "geometry"].bounds == g.footprint(*CropGrid.parse_crop_id(cid)[2:])
        np.testing.assert_array_equal(a.chips[ta.loc[cid, "chip_index"]], b.chips[tb.loc[cid, "chip_index"]])
