"""The crop grid: ids, footprints and index arithmetic (pure, no I/O)."""

import math

import numpy as np
import pytest
from affine import Affine

from riotvit.errors import GridError
from riotvit.grid import CropGrid, blocks, utm_epsg


def test_defaults_give_3m_gsd_and_no_overlap():
    g = CropGrid.create(32737)
    assert (g.crop_m, g.stride_m, g.crop_px, g.gsd, g.stride_px, g.overlap) == (672, 672, 224, 3.0, 224, 0.0)


def test_overlap_sets_a_whole_pixel_stride():
    g = CropGrid.create(32737, overlap=0.5)
    assert g.stride_m == 336 and g.stride_px == 112 and g.overlap == pytest.approx(0.5)
    g3 = CropGrid.create(32737, overlap=0.3)  # 224 * 0.7 = 156.8 -> 157 px
    assert g3.stride_px == 157 and g3.stride_m == pytest.approx(471.0)


def test_stride_that_is_not_whole_pixels_is_an_error_with_a_suggestion():
    with pytest.raises(GridError, match="whole number of 3 m pixels.*such as 501 m"):
        CropGrid.create(32737, stride_m=500.0)


def test_crop_id_encodes_epsg_stride_col_row_and_round_trips():
    g = CropGrid.create(32737, overlap=0.5)
    cid = g.crop_id(644, -3)
    assert cid == "e32737_s336_c644_r-3"
    assert CropGrid.parse_crop_id(cid) == (32737, 336.0, 644, -3)
    with pytest.raises(GridError):
        CropGrid.parse_crop_id("tile_12")


def test_footprint_is_anchored_at_multiples_of_the_stride():
    g = CropGrid.create(32737)
    assert g.footprint(10, 20) == (6720.0, 13440.0, 7392.0, 14112.0)
    fp = g.footprints(np.array([10, -1]), np.array([20, 0]))
    assert fp.tolist() == [[6720, 13440, 7392, 14112], [-672, 0, 0, 672]]
    t = g.crop_transform(10, 20)
    assert (t.a, t.e, t.c, t.f) == (3.0, -3.0, 6720.0, 14112.0)


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.25])
def test_index_range_matches_brute_force(overlap):
    g = CropGrid.create(32737, overlap=overlap)
    rng = np.random.default_rng(1)
    for _ in range(300):
        lo = rng.uniform(-5000, 5000)
        hi = lo + rng.uniform(1, 4000)
        first, last = g.index_range(lo, hi)
        brute = [i for i in range(-100, 100) if i * g.stride_m < hi and i * g.stride_m + g.crop_m > lo]
        assert (first, last) == (brute[0], brute[-1])


def test_bounds_exactly_on_crop_edges_do_not_add_empty_crops():
    g = CropGrid.create(32737)
    cols, rows = g.cells_in_bounds((672.0 * 3, 672.0 * 5, 672.0 * 7, 672.0 * 6))
    assert (list(cols), list(rows)) == ([3, 4, 5, 6], [5])
    assert g.count_in_bounds((0, 0, 6720, 6720)) == 100


def test_same_place_same_id_from_any_extent():
    g = CropGrid.create(32737)
    a_cols, a_rows = g.cells_in_bounds((100.0, 100.0, 5000.0, 5000.0))
    b_cols, b_rows = g.cells_in_bounds((2000.0, 2000.0, 9000.0, 9000.0))
    a = {g.crop_id(c, r): g.footprint(c, r) for c in a_cols for r in a_rows}
    b = {g.crop_id(c, r): g.footprint(c, r) for c in b_cols for r in b_rows}
    common = set(a) & set(b)
    assert len(common) == 6 * 6 and all(a[k] == b[k] for k in common)


def test_cell_of_points():
    g = CropGrid.create(32737)
    cols, rows = g.cell_of(np.array([0.0, 671.9, 672.0, -0.1]), np.array([0.0, 0.0, 1344.0, -672.1]))
    assert cols.tolist() == [0, 0, 1, -1] and rows.tolist() == [0, 0, 2, -2]


def test_is_aligned():
    g = CropGrid.create(32737)
    assert g.is_aligned(Affine(3, 0, 672 * 10, 0, -3, 672 * 20))
    assert g.is_aligned(Affine(3, 0, 3 * 12345, 0, -3, 3 * 999))
    assert not g.is_aligned(Affine(3, 0, 1.5, 0, -3, 0))
    assert not g.is_aligned(Affine(2, 0, 0, 0, -2, 0))


@pytest.mark.parametrize(
    "lon,lat,epsg", [(36.82, -1.29, 32737), (-34.87, -8.0, 32725), (-99.15, 47.02, 32614), (2.35, 48.85, 32631)]
)
def test_utm_zone(lon, lat, epsg):
    assert utm_epsg(lon, lat) == epsg


def test_blocks_cover_every_crop_once():
    bl = blocks(range(-3, 70), range(5, 9), 32)
    cols = [c for b in bl for c in b[0]]
    assert cols == list(range(-3, 70)) and len(bl) == math.ceil(73 / 32)
