"""Band ids, reflectance scale and per-file dates on small synthetic rasters (no real data needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from raster_fixtures import aligned_transform, random_image, write_raster

from riotvit.errors import RasterError
from riotvit.tile.plan import SourceSpec, TileConfig
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

SMALL = dict(crop_m=96.0, crop_px=32)  # 3 m GSD on the lattice: pixels are copied, not resampled


def test_scale_factor_tags_are_applied_and_uint16_stays_uint16_without_a_scale(tmp_path):
    data = random_image((4, 64, 64))
    tagged = write_raster(tmp_path / "tagged.tif", data, aligned_transform(0, 1, stride_m=96.0),
                          descriptions=["B02", "B03", "B04", "B08"],
                          tags={"ACQUISITION_DATE": "2023-02-16", "scale_factor": "0.0001", "add_offset": "-0.1"})
    ts = TileSet.open(tile([SourceSpec(tagged)], tmp_path / "a", TileConfig(**SMALL)).path)
    assert ts.bands == ["blue", "green", "red", "nir"]  # zero-padded ids in the descriptions: Sentinel-2
    assert ts.info["dtype"] == "float32" and ts.info["sources"][0]["scale_from"] == "file"
    t = ts.tiles
    # crop (col 0, row 0) spans x 0..96 m, y 0..96 m: the raster's top-left 32 x 32 pixels (its top is at y = 96 m)
    (k,) = t.loc[(t["col"] == 0) & (t["row"] == 0), "chip_index"]
    chips, _ = ts.read([int(k)])
    expect = (data[:, :32, :32].astype(np.float64) * 1e-4 - 0.1).astype(np.float32)
    np.testing.assert_allclose(chips[0], expect, rtol=0, atol=1e-7)
    plain = write_raster(tmp_path / "plain.tif", data, aligned_transform(0, 1, stride_m=96.0))
    ts2 = TileSet.open(tile([SourceSpec(plain)], tmp_path / "b", TileConfig(**SMALL)).path)
    assert ts2.info["dtype"] == "uint16" and "scale" not in ts2.info["sources"][0]


def test_bad_scale_tag_and_dates_csv_next_to_the_rasters(tmp_path):
    data = random_image((3, 64, 64))
    bad = write_raster(tmp_path / "bad.tif", data, aligned_transform(0, 1, stride_m=96.0),
                       tags={"ACQUISITION_DATE": "2023-02-16", "scale_factor": "ten"})
    with pytest.raises(RasterError, match=r"bad.tif: band 1 has a scale_factor/add_offset tag that is not a number"):
        tile([SourceSpec(bad)], tmp_path / "x", TileConfig(**SMALL))
    d = tmp_path / "imgs"
    d.mkdir()
    for year, col in ((2021, 0), (2022, 0), (2023, 2)):
        write_raster(d / f"area_{year}.tif", data, aligned_transform(col, 1, stride_m=96.0), tags={"X": "no date"})
    (d / "dates.csv").write_text("file,date\narea_2021.tif,2021-03-16\narea_202[23].tif,2022-03-16\n")
    ts = TileSet.open(tile([SourceSpec(p) for p in sorted(d.glob("*.tif"))], tmp_path / "ts", TileConfig(**SMALL)).path)
    t = ts.tiles
    assert ts.info["dates"] == ["2021-03-16", "2022-03-16"]
    # 2022 and 2023 share a date: one mosaic of two side-by-side rasters, 2 x 4 crops; 2021 alone: 2 x 2
    assert t.groupby("date").size().to_dict() == {dt.date(2021, 3, 16): 4, dt.date(2022, 3, 16): 8}
    assert set(t.loc[t["date"] == dt.date(2022, 3, 16), "source"]) == {"area_2022", "area_2023"}
