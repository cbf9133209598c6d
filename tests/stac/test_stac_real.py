"""STAC in on the real Dhaka Sentinel-2 composites: a catalog of per-band COGs tiles like the files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from stac_fixtures import make_item, save_catalog, split_to_cogs

from riotvit.stac.read import resolve_stac_inputs
from riotvit.tile.plan import SourceSpec, TileConfig
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

pytestmark = pytest.mark.real

# SOURCE.txt: 4 bands red, green, blue, NIR (B4, B3, B2, B8), median composites of 1 Jan - 31 May
IDS = ["B4", "B3", "B2", "B8"]
WINDOWS = {"2022": ("2022-01-01T00:00:00Z", "2022-05-31T23:59:59Z"), "2023": ("2023-01-01T00:00:00Z", "2023-05-31T23:59:59Z")}


def test_dhaka_catalog_of_cogs_tiles_like_the_files(tmp_path, real):
    files = [real("sentinel2_dhaka", f"korail_s2_{y}.tif") for y in WINDOWS]
    items = []
    for f, (start, end) in zip(files, WINDOWS.values(), strict=True):
        cogs = split_to_cogs(f, tmp_path / "cogs", IDS)
        items.append(make_item(f.stem, cogs, datetime=None, props={"start_datetime": start, "end_datetime": end}))
    cat = save_catalog(items, tmp_path / "stac")
    specs = resolve_stac_inputs([str(cat)], bands=["red", "green", "blue", "nir"], workdir=tmp_path / "vrt")
    assert [(s.id, s.date) for s in specs] == [("korail_s2_2022", dt.date(2022, 1, 1)), ("korail_s2_2023", dt.date(2023, 1, 1))]
    cfg = TileConfig(crop_px=32, checksum=False)
    by_path = tile([SourceSpec(f, bands=["red", "green", "blue", "nir"], date=s.date) for f, s in zip(files, specs, strict=True)],
                   tmp_path / "by_path", cfg)
    by_stac = tile(specs, tmp_path / "by_stac", cfg)
    a, b = pd.read_parquet(by_path.path / "tiles.parquet"), pd.read_parquet(by_stac.path / "tiles.parquet")
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(np.load(by_path.path / "chips.npy"), np.load(by_stac.path / "chips.npy"))
    ts = TileSet.open(by_stac.path)
    # 5.1 km x 5.1 km in UTM 46N on a 672 m grid: 8-9 crops a side, two dates
    assert ts.grid.crs == "EPSG:32646" and ts.bands == ["red", "green", "blue", "nir"]
    assert by_stac.n_crops == len(a) and 2 * 49 <= len(a) <= 2 * 81
    assert sorted(b["date"].astype(str).unique()) == ["2022-01-01", "2023-01-01"]
    assert 300 < ts.stats["red"]["mean"] < 3000 and ts.stats["nir"]["mean"] > ts.stats["red"]["mean"]
