"""``riotvit tile`` on rasters made by code: counts, footprints, pixels, masks, stats, resumption."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from raster_fixtures import aligned_transform, random_image, write_raster

from riotvit.errors import OutputExistsError, RasterError
from riotvit.grid import CropGrid
from riotvit.tile.plan import SourceSpec, TileConfig, plan_tiles
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

SMALL = dict(crop_m=96.0, crop_px=32)  # 3 m GSD, small crops keep tests fast


@pytest.fixture
def aligned(tmp_path):
    """A 4-band uint16 raster of 10 x 7 crops of 96 m, on the grid lattice."""
    data = random_image((4, 7 * 32, 10 * 32), seed=3)
    p = write_raster(tmp_path / "aligned.tif", data, aligned_transform(100, 50, stride_m=96.0),
                     descriptions=["blue", "green", "red", "nir"])
    return p, data


def test_aligned_raster_gives_every_crop_with_exact_pixels(tmp_path, aligned):
    path, data = aligned
    res = tile([path], tmp_path / "ts", TileConfig(**SMALL))
    assert (res.n_crops, res.n_candidates, res.n_masked) == (70, 70, 0)
    ts = TileSet.open(tmp_path / "ts")
    t = ts.tiles
    assert t.crs.to_epsg() == 32637 and ts.bands == ["blue", "green", "red", "nir"]
    assert sorted(t["col"].unique()) == list(range(100, 110)) and sorted(t["row"].unique()) == list(range(43, 50))
    g = ts.grid
    for _, r in t.sample(10, random_state=0).iterrows():
        assert r.geometry.bounds == g.footprint(r.col, r.row)
        assert r.crop_id == g.crop_id(r.col, r.row)
        i, j = (49 - r.row) * 32, (r.col - 100) * 32  # image row/col of the crop's top-left
        np.testing.assert_array_equal(ts.chips[r.chip_index], data[:, i : i + 32, j : j + 32])
    assert str(t["date"].iloc[0]) == "2023-02-16" and (t["valid_fraction"] == 1.0).all()


def test_stats_equal_numpy_over_the_same_pixels(tmp_path, aligned):
    path, _ = aligned
    tile([path], tmp_path / "ts", TileConfig(**SMALL, overlap=0.5))
    ts = TileSet.open(tmp_path / "ts")
    chips, masks = ts.read(np.arange(len(ts)))
    for b, name in enumerate(ts.bands):
        v = chips[:, b][masks].astype(np.float64)
        s = ts.stats[name]
        assert s["count"] == v.size
        assert s["mean"] == pytest.approx(v.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(v.std(), rel=1e-9)
        assert (s["min"], s["max"]) == (v.min(), v.max())
        assert s["p2"] == pytest.approx(np.percentile(v, 2)) and s["p98"] == pytest.approx(np.percentile(v, 98))


def test_overlap_half_counts_and_partial_crops_stay_masked(tmp_path, aligned):
    path, data = aligned
    res = tile([path], tmp_path / "ts", TileConfig(**SMALL, overlap=0.5))
    g = CropGrid.create(32637, 96.0, 32, overlap=0.5)
    with rasterio.open(path) as src:
        assert res.n_candidates == g.count_in_bounds(tuple(src.bounds))  # 21 x 15 by arithmetic
    assert res.n_candidates == 21 * 15
    # edge crops half outside the raster have exactly 50% valid pixels and are kept (min_valid 0.5);
    # the four corner crops have 25% and are dropped
    assert res.n_crops == 21 * 15 - 4
    ts = TileSet.open(tmp_path / "ts")
    part = ts.tiles[ts.tiles["mask_index"] >= 0]
    assert len(part) == 2 * 19 + 2 * 13 and set(part["valid_fraction"].round(3)) == {0.5}
    chips, masks = ts.read(part["chip_index"].to_numpy())
    assert (masks.mean(axis=(1, 2)) == 0.5).all()
    assert (chips[~np.broadcast_to(masks[:, None], chips.shape)] == 0).all()  # filled, and masked
    # an interior crop straddling four stride cells equals the source window
    r = ts.tiles[(ts.tiles["col"] == 203) & (ts.tiles["row"] == 95)].iloc[0]
    assert r.valid_fraction == 1.0
    with rasterio.open(path) as src:
        win = rasterio.windows.from_bounds(*r.geometry.bounds, transform=src.transform)
        np.testing.assert_array_equal(ts.chips[r.chip_index], src.read(window=win))


def test_min_valid_drops_mostly_empty_crops(tmp_path):
    data = random_image((3, 64, 96), seed=1)
    data[:, :, :40] = 0  # left 40 px nodata: crop column 0 empty, column 1 has 24/32 valid
    p = write_raster(tmp_path / "nd.tif", data, aligned_transform(0, 10, stride_m=96.0), nodata=0)
    res = tile([p], tmp_path / "ts", TileConfig(**SMALL, min_valid=0.8))
    ts = TileSet.open(tmp_path / "ts")
    assert res.n_crops == 2 and sorted(ts.tiles["col"]) == [2, 2]  # only the fully valid right column
    res2 = tile([p], tmp_path / "ts2", TileConfig(**SMALL, min_valid=0.5))
    assert (res2.n_crops, res2.n_masked, res2.n_candidates) == (4, 2, 6)
    t2 = TileSet.open(tmp_path / "ts2").tiles
    assert sorted(t2["valid_fraction"]) == [0.75, 0.75, 1.0, 1.0]


def test_nodata_is_masked_never_zero_reflectance(tmp_path):
    data = random_image((4, 32, 32), seed=2)
    data[:, 5:9, 5:9] = 65535
    p = write_raster(tmp_path / "nd.tif", data, aligned_transform(0, 1, stride_m=96.0), nodata=65535)
    tile([p], tmp_path / "ts", TileConfig(**SMALL))
    ts = TileSet.open(tmp_path / "ts")
    chips, masks = ts.read([0])
    assert masks[0].sum() == 32 * 32 - 16 and not masks[0, 5:9, 5:9].any()
    v = chips[0][:, masks[0]]
    assert ts.bands == ["band_1", "band_2", "band_3", "band_4"]
    assert ts.stats["band_1"]["max"] < 65535 and ts.stats["band_1"]["count"] == v.shape[1]


def test_alpha_band_is_a_mask_not_a_band(tmp_path):
    data = random_image((3, 32, 64), seed=4, dtype=np.uint8)
    alpha = np.full((32, 64), 255, np.uint8)
    alpha[:, :20] = 0
    p = write_raster(tmp_path / "rgba.tif", data, aligned_transform(0, 1, stride_m=96.0), alpha=alpha)
    tile([p], tmp_path / "ts", TileConfig(**SMALL, min_valid=0.3))
    ts = TileSet.open(tmp_path / "ts")
    assert ts.bands == ["red", "green", "blue"] and ts.info["chip_shape"] == [3, 32, 32]
    left = ts.tiles[ts.tiles["col"] == 0].iloc[0]
    assert left["valid_fraction"] == pytest.approx(12 / 32)
    _, m = ts.read([left["chip_index"]])
    assert not m[0][:, :20].any() and m[0][:, 20:].all()


def test_resampling_reproduces_a_linear_ramp(tmp_path):
    """Bilinear resampling of a linear ramp is exact away from the edges (when upsampling)."""
    h = w = 100
    t = Affine(3.7, 0, 1001.3, 0, -3.7, 5000.7)  # 3.7 m pixels, off the 3 m lattice
    yy, xx = np.mgrid[0:h, 0:w]
    x = t.c + (xx + 0.5) * t.a
    y = t.f + (yy + 0.5) * t.e
    ramp = (0.5 * x - 0.25 * y).astype(np.float32)
    p = write_raster(tmp_path / "ramp.tif", ramp[None], t, descriptions=["ramp"])
    res = tile([p], tmp_path / "ts", TileConfig(**SMALL, min_valid=0.99))
    ts = TileSet.open(tmp_path / "ts")
    assert res.n_crops >= 4 and ts.info["dtype"] == "float32"
    for _, r in ts.tiles.iterrows():
        ct = ts.grid.crop_transform(r.col, r.row)
        cy, cx = np.mgrid[0:32, 0:32]
        gx, gy = ct.c + (cx + 0.5) * 3, ct.f - (cy + 0.5) * 3
        np.testing.assert_allclose(ts.chips[r.chip_index][0][2:-2, 2:-2], (0.5 * gx - 0.25 * gy)[2:-2, 2:-2], atol=1e-2)


def test_geographic_raster_is_reprojected_to_its_utm_zone(tmp_path):
    data = random_image((1, 200, 200), seed=5).astype(np.float32)
    t = Affine(0.0003, 0, 36.80, 0, -0.0003, -1.25)  # ~33 m pixels near Nairobi
    p = write_raster(tmp_path / "geo.tif", data, t, crs="EPSG:4326", nodata=-9999.0)
    plan = plan_tiles([SourceSpec(p)], TileConfig(crop_m=672, crop_px=32))
    assert plan.grid.epsg == 32737
    res = tile([p], tmp_path / "ts", TileConfig(crop_m=672, crop_px=32))
    ts = TileSet.open(tmp_path / "ts")
    assert ts.tiles.crs.to_epsg() == 32737
    b = gpd.GeoSeries.from_xy([36.80, 36.86], [-1.31, -1.25], crs=4326).to_crs(32737).total_bounds
    tb = ts.tiles.total_bounds
    assert tb[0] > b[0] - 672 and tb[2] < b[2] + 672 and tb[1] > b[1] - 672 and tb[3] < b[3] + 672
    assert res.n_crops > 0 and (ts.tiles["valid_fraction"] >= 0.5).all()


def test_explicit_grid_crs(tmp_path, aligned):
    path, _ = aligned
    plan = plan_tiles([SourceSpec(path)], TileConfig(**SMALL, crs="EPSG:32737"))
    assert plan.grid.epsg == 32737


def test_two_dates_go_into_one_tile_set(tmp_path, aligned):
    path, data = aligned
    p2 = write_raster(tmp_path / "later.tif", data[:, :64, :64], aligned_transform(100, 50, stride_m=96.0),
                      descriptions=["blue", "green", "red", "nir"], tags={"ACQUISITION_DATE": "2024-01-05"})
    res = tile([path, p2], tmp_path / "ts", TileConfig(**SMALL))
    ts = TileSet.open(tmp_path / "ts")
    assert res.n_crops == 70 + 4
    by = ts.tiles.groupby("source")["date"].agg(lambda s: sorted({str(d) for d in s}))
    assert by.to_dict() == {"aligned": ["2023-02-16"], "later": ["2024-01-05"]}
    assert ts.info["dates"] == ["2023-02-16", "2024-01-05"]
    assert ts.tiles["crop_id"].duplicated().sum() == 4  # the same places, on two dates


def test_mosaic_of_two_halves_equals_the_whole(tmp_path, aligned):
    path, data = aligned
    left = write_raster(tmp_path / "left.tif", data[:, :, :150], aligned_transform(100, 50, stride_m=96.0),
                        descriptions=["blue", "green", "red", "nir"])
    right = write_raster(tmp_path / "right.tif", data[:, :, 150:],
                         Affine(3, 0, 100 * 96.0 + 450, 0, -3, 50 * 96.0),
                         descriptions=["blue", "green", "red", "nir"])
    tile([path], tmp_path / "whole", TileConfig(**SMALL))
    tile([left, right], tmp_path / "mosaic", TileConfig(**SMALL))
    a, b = TileSet.open(tmp_path / "whole"), TileSet.open(tmp_path / "mosaic")
    ta, tb = a.tiles.set_index("crop_id"), b.tiles.set_index("crop_id")
    assert sorted(ta.index) == sorted(tb.index)
    for cid in ta.index:
        np.testing.assert_array_equal(a.chips[ta.loc[cid, "chip_index"]], b.chips[tb.loc[cid, "chip_index"]])
    straddle = tb[(tb["col"] == 104)]  # x 9984..10080 spans the seam at 9900+... crops from both files
    assert set(tb["source"]) == {"left", "right"} and len(straddle) == 7


def test_interrupted_run_resumes_to_an_identical_tile_set(tmp_path, aligned):
    path, _ = aligned
    cfg = TileConfig(**SMALL, overlap=0.5, block_crops=4)
    tile([path], tmp_path / "full", cfg)
    part = tile([path], tmp_path / "resumed", cfg, stop_after_blocks=3)
    assert not (tmp_path / "resumed").exists() and (tmp_path / "resumed.partial").is_dir()
    assert not (tmp_path / "resumed.partial" / "tileset.json").exists()  # never looks complete
    assert part.n_crops > 0
    res = tile([path], tmp_path / "resumed", cfg)
    assert res.resumed_blocks == 3 and not (tmp_path / "resumed.partial").exists()
    for f in ("chips.npy", "masks.npy", "tileset.json"):
        assert (tmp_path / "full" / f).read_bytes() == (tmp_path / "resumed" / f).read_bytes(), f
    fa = gpd.read_parquet(tmp_path / "full" / "tiles.parquet")
    fb = gpd.read_parquet(tmp_path / "resumed" / "tiles.parquet")
    assert fa.equals(fb)


def test_rerun_is_up_to_date_and_a_different_tile_set_is_refused(tmp_path, aligned):
    path, _ = aligned
    tile([path], tmp_path / "ts", TileConfig(**SMALL))
    again = tile([path], tmp_path / "ts", TileConfig(**SMALL))
    assert again.up_to_date
    with pytest.raises(OutputExistsError, match="already holds a different tile set.*--overwrite"):
        tile([path], tmp_path / "ts", TileConfig(**SMALL, overlap=0.5))
    res = tile([path], tmp_path / "ts", TileConfig(**SMALL, overlap=0.5), overwrite=True)
    assert res.n_crops == 21 * 15 - 4
    assert json.loads((tmp_path / "ts" / "tileset.json").read_text())["grid"]["overlap"] == 0.5


def test_write_geotiffs_are_georeferenced(tmp_path, aligned):
    path, data = aligned
    tile([path], tmp_path / "ts", TileConfig(**SMALL, write_geotiffs=True))
    ts = TileSet.open(tmp_path / "ts")
    r = ts.tiles.iloc[5]
    with rasterio.open(tmp_path / "ts" / "geotiffs" / f"{r.crop_id}_2023-02-16.tif") as src:
        assert src.crs.to_epsg() == 32637 and tuple(src.bounds) == r.geometry.bounds
        np.testing.assert_array_equal(src.read(), ts.chips[r.chip_index])
        assert src.descriptions == ("blue", "green", "red", "nir")


# --- bad input: one clear error, nothing written -------------------------------------------------


def _nothing_written(tmp_path):
    return not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_raster_without_crs(tmp_path):
    p = write_raster(tmp_path / "nocrs.tif", random_image((1, 32, 32)), aligned_transform(0, 1), crs=None)
    with pytest.raises(RasterError, match=r"nocrs.tif: raster has no CRS; assign one first, e.g. gdal_edit.py -a_srs"):
        tile([p], tmp_path / "out")
    assert _nothing_written(tmp_path)


def test_not_a_raster_and_truncated_file(tmp_path, aligned):
    txt = tmp_path / "notes.tif"
    txt.write_text("this is not a raster")
    with pytest.raises(RasterError, match="notes.tif: not a readable raster"):
        tile([txt], tmp_path / "out")
    path, _ = aligned
    trunc = tmp_path / "trunc.tif"
    trunc.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RasterError, match="trunc.tif: .*(corrupt or truncated|not a readable raster)"):
        tile([trunc], tmp_path / "out")
    assert _nothing_written(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(RasterError, match="gone.tif: file not found"):
        tile([tmp_path / "gone.tif"], tmp_path / "out")


def test_rasters_with_different_bands(tmp_path, aligned):
    path, _ = aligned
    p3 = write_raster(tmp_path / "rgb.tif", random_image((3, 32, 32)), aligned_transform(0, 1, stride_m=96.0))
    with pytest.raises(RasterError, match="rgb.tif: bands .* differ from aligned.tif .* must share bands"):
        tile([path, p3], tmp_path / "out")
    assert _nothing_written(tmp_path)


def test_band_names_must_fit_the_band_count(tmp_path, aligned):
    path, _ = aligned
    with pytest.raises(RasterError, match="3 band names given .* but the raster has 4 data bands"):
        tile([path], tmp_path / "out", TileConfig(**SMALL, bands=["r", "g", "b"]))


def test_no_crop_with_enough_valid_pixels(tmp_path):
    data = np.zeros((1, 64, 64), np.uint16)
    p = write_raster(tmp_path / "empty.tif", data, aligned_transform(0, 1, stride_m=96.0), nodata=0)
    with pytest.raises(RasterError, match="no crop has at least 50% valid pixels"):
        tile([p], tmp_path / "out", TileConfig(**SMALL))
    assert _nothing_written(tmp_path)


def test_no_date_anywhere(tmp_path):
    p = write_raster(tmp_path / "nodate.tif", random_image((1, 32, 32)), aligned_transform(0, 1), tags={"X": "1"})
    with pytest.raises(RasterError, match="no acquisition date .* --date YYYY-MM-DD"):
        tile([p], tmp_path / "out")
    res = tile([p], tmp_path / "out", TileConfig(**SMALL, date="2020-01-31"))
    assert str(TileSet.open(res.path).tiles["date"].iloc[0]) == "2020-01-31"


def test_coarse_raster_warns(tmp_path):
    p = write_raster(tmp_path / "coarse.tif", random_image((1, 20, 20)), Affine(300, 0, 0, 0, -300, 6000))
    plan = plan_tiles([SourceSpec(p)], TileConfig(crop_m=672, crop_px=8))
    assert any("300 m pixels give only 2.2 source pixels across a 672 m crop" in w for w in plan.warnings)


def test_non_metric_projected_and_bad_crs_option(tmp_path, aligned):
    from riotvit.errors import ConfigError

    path, _ = aligned
    with pytest.raises(ConfigError, match="needs a projected CRS in metres"):
        plan_tiles([SourceSpec(path)], TileConfig(**SMALL, crs="EPSG:4326"))


def test_resume_after_a_journalled_block_without_crops_is_identical(tmp_path):
    """A kill right after a block with no crops was journalled: the rerun (with or without --overwrite) resumes."""
    data = random_image((4, 8 * 32, 8 * 32), seed=5)
    data[:, : 4 * 32 + 8, :] = 0  # the northern half is nodata (its blocks keep no crop), the next row is masked
    path = write_raster(tmp_path / "half.tif", data, aligned_transform(100, 50, stride_m=96.0), nodata=0,
                        descriptions=["blue", "green", "red", "nir"])
    cfg = TileConfig(**SMALL, block_crops=4)
    full = tile([path], tmp_path / "full", cfg)
    assert (full.n_crops, full.n_masked) == (32, 8)
    tile([path], tmp_path / "resumed", cfg, stop_after_blocks=1)
    parts = sorted((tmp_path / "resumed.partial" / "parts").glob("block_*.parquet"))
    assert len(parts) == 1 and len(gpd.pd.read_parquet(parts[0])) == 0  # an empty block was journalled
    tile([path], tmp_path / "resumed", cfg, stop_after_blocks=2)  # two more blocks: one with crops
    res = tile([path], tmp_path / "resumed", cfg, overwrite=True)
    assert res.resumed_blocks == 3 and not (tmp_path / "resumed.partial").exists()
    for f in ("chips.npy", "masks.npy", "tileset.json", "tiles.parquet"):
        assert (tmp_path / "full" / f).read_bytes() == (tmp_path / "resumed" / f).read_bytes(), f
