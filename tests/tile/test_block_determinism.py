"""What a tile set's bytes depend on: the block size matters only when pixels are warped."""

from __future__ import annotations

import numpy as np
import pandas as pd
from affine import Affine
from raster_fixtures import aligned_transform, random_image, write_raster

from riotvit.tile.plan import SourceSpec, TileConfig, plan_tiles
from riotvit.tile.tiler import all_on_lattice, signature, tile


def _sig(path, **cfg):
    c = TileConfig(crop_m=96, crop_px=32, **cfg)
    return signature(plan_tiles([SourceSpec(path)], c.model_copy(update={"checksum": False})), c)


def test_block_size_is_irrelevant_on_the_lattice_and_part_of_the_signature_when_warping(tmp_path):
    on_grid = write_raster(tmp_path / "grid.tif", random_image((4, 64, 96)), aligned_transform(10, 20, stride_m=96.0))
    lonlat = write_raster(tmp_path / "ll.tif", random_image((4, 64, 96)), Affine(2.7e-5, 0, 36.8, 0, -2.7e-5, -1.28),
                          crs="EPSG:4326")
    c = TileConfig(crop_m=96, crop_px=32)
    assert all_on_lattice(plan_tiles([SourceSpec(on_grid)], c))
    assert not all_on_lattice(plan_tiles([SourceSpec(lonlat)], c))
    assert _sig(on_grid, block_crops=2) == _sig(on_grid, block_crops=5)
    assert _sig(lonlat, block_crops=2) != _sig(lonlat, block_crops=5)


def test_on_the_lattice_chips_are_identical_whatever_the_block_size(tmp_path):
    src = write_raster(tmp_path / "grid.tif", random_image((4, 96, 192), seed=3), aligned_transform(10, 20, stride_m=96.0))
    a = tile([src], tmp_path / "a", TileConfig(crop_m=96, crop_px=32, overlap=0.5, block_crops=2)).path
    b = tile([src], tmp_path / "b", TileConfig(crop_m=96, crop_px=32, overlap=0.5, block_crops=7)).path
    ca, cb = (_by_crop(p) for p in (a, b))
    # 96 m crops every 48 m over a 576 m x 288 m raster, kept when >= half valid: 13 x 7 minus 4 corners
    assert set(ca) == set(cb) and len(ca) == 13 * 7 - 4
    assert all(np.array_equal(ca[k], cb[k]) for k in ca)  # same pixels per crop; only the order follows the blocks


def _by_crop(ts):
    chips = np.load(ts / "chips.npy")
    tiles = pd.read_parquet(ts / "tiles.parquet", columns=["crop_id", "chip_index"])
    return {c: chips[i] for c, i in zip(tiles["crop_id"], tiles["chip_index"])}
