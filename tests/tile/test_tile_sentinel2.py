"""Real Sentinel-2 over Dhaka as a first-class input: band ids, scale, dates, mosaics, compact chips.

Uses the nine composites in ../shared/data/real/sentinel2_dhaka (three areas x 2021/2022/2023,
float64 reflectance x 10000 in EPSG:4326, bands B4,B3,B2,B8); skipped when they are absent.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from shapely.ops import unary_union

from riotvit.errors import ConfigError, RasterError
from riotvit.tile.plan import SourceSpec, TileConfig
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

pytestmark = pytest.mark.real

DATES = {"2021": dt.date(2021, 3, 16), "2022": dt.date(2022, 3, 16), "2023": dt.date(2023, 3, 16)}
AREAS = ("korail", "mirpur", "old_dhaka")
DATES_CSV = "file,date\n*_2021.tif,2021-03-16\n*_2022.tif,2022-03-16\n*_2023.tif,2023-03-16\n"
CROP_PX = 64  # 10.5 m GSD: about the files' own 10 m pixels, and a fast test


@pytest.fixture
def dhaka(real):
    return real("sentinel2_dhaka", "SOURCE.txt").parent


def _footprint_utm(path, to_utm) -> shapely.Polygon:
    with rasterio.open(path) as src:
        b = src.bounds
    poly = shapely.box(*b).segmentize(0.0005)  # densified, then projected
    return shapely.transform(poly, lambda xy: np.column_stack(to_utm(xy[:, 0], xy[:, 1])))


def _expected_cells(paths, crop_m=672.0, min_valid=0.5) -> tuple[set, set]:
    """Grid cells kept (valid share >= min_valid) computed from the files' footprints; and the
    cells within 2 % of the threshold, which pixel counting may decide either way."""
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32646", always_xy=True).transform
    union = unary_union([_footprint_utm(p, to_utm) for p in paths])
    x0, y0, x1, y1 = union.bounds
    sure, border = set(), set()
    for col in range(math.floor(x0 / crop_m), math.ceil(x1 / crop_m)):
        for row in range(math.floor(y0 / crop_m), math.ceil(y1 / crop_m)):
            cell = shapely.box(col * crop_m, row * crop_m, (col + 1) * crop_m, (row + 1) * crop_m)
            f = cell.intersection(union).area / cell.area
            if abs(f - min_valid) < 0.02:
                border.add((col, row))
            elif f >= min_valid:
                sure.add((col, row))
    return sure, border


def _source_values(ts: TileSet, row, srcs) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel centre of a crop: the value of the source pixel it falls in (first source that
    covers it wins, as in the mosaic) and which source that is; computed with pyproj, not GDAL's warper."""
    g = ts.grid
    cp = g.crop_px
    to_ll = Transformer.from_crs(f"EPSG:{g.epsg}", "EPSG:4326", always_xy=True)
    x0, top = row["col"] * g.stride_m, row["row"] * g.stride_m + g.crop_m
    jj, ii = np.meshgrid(np.arange(cp), np.arange(cp))
    lon, lat = to_ll.transform(x0 + (jj + 0.5) * g.gsd, top - (ii + 0.5) * g.gsd)
    out = np.full((len(ts.bands), cp, cp), np.nan)
    who = np.full((cp, cp), -1)
    for k, p in enumerate(srcs):
        with rasterio.open(p) as src:
            data = src.read()
            c = np.floor((lon - src.transform.c) / src.transform.a).astype(int)
            r = np.floor((lat - src.transform.f) / src.transform.e).astype(int)
        inside = (c >= 0) & (c < data.shape[2]) & (r >= 0) & (r < data.shape[1]) & (who < 0)
        out[:, inside] = data[:, r[inside], c[inside]]
        who[inside] = k
    return out, who


def test_nine_dhaka_files_make_one_tile_set_with_three_dates(dhaka, tmp_path):
    paths = sorted(dhaka.glob("*_s2_20*.tif"))
    assert len(paths) == 9
    (tmp_path / "dates.csv").write_text(DATES_CSV)
    cfg = TileConfig(crop_px=CROP_PX, bands=["B4", "B3", "B2", "B8"], sensor="sentinel2", scale=1e-4,
                     dates=str(tmp_path / "dates.csv"))
    res = tile([SourceSpec(p) for p in paths], tmp_path / "ts", cfg)
    ts = TileSet.open(res.path)
    assert ts.grid.epsg == 32646 and ts.bands == ["red", "green", "blue", "nir"]
    assert [b["id"] for b in ts.info["band_info"]] == ["B04", "B03", "B02", "B08"]
    assert ts.info["dtype"] == "float32" and ts.read([0])[0].dtype == np.float32
    assert {s["scale_from"] for s in ts.info["sources"]} == {"option"}
    assert all(s["scale"] == [1e-4] * 4 and s["offset"] == [0.0] * 4 for s in ts.info["sources"])
    t = ts.tiles
    # each crop carries its date: three dates, the same cells at each date
    assert ts.info["dates"] == ["2021-03-16", "2022-03-16", "2023-03-16"]
    assert sorted(set(t["date"])) == sorted(DATES.values())
    for year, d in DATES.items():
        sel = t[t["date"] == d]
        assert set(sel["source"].str.slice(-4)) == {year}  # each crop's source is a file of its own date
        sure, border = _expected_cells([p for p in paths if p.stem.endswith(year)])
        got = set(zip(sel["col"], sel["row"], strict=True))
        assert sure <= got and got <= sure | border, (len(sure), len(border), len(got))
    assert len(t) == res.n_crops == 519  # measured: 173 crops per date, one cell within 2 % of min_valid
    # reflectance-like values after scale 1e-4: red about 0.1, NIR brighter than red over the city
    red, nir = ts.stats["red"], ts.stats["nir"]
    assert 0.02 <= red["mean"] <= 0.3 and 0.05 <= nir["mean"] <= 0.5 and nir["mean"] > red["mean"]
    assert 0 < red["p2"] < red["p98"] < 1 and 0 < nir["p2"] < nir["p98"] < 1


def test_one_file_keeps_its_values_in_a_float32_chip_store(dhaka, tmp_path):
    p = dhaka / "korail_s2_2023.tif"
    cfg = TileConfig(crop_px=CROP_PX, bands=["red", "green", "blue", "nir"], resampling="nearest", min_valid=1.0)
    ts = TileSet.open(tile([SourceSpec(p, date=dt.date(2023, 3, 16))], tmp_path / "ts", cfg).path)
    assert ts.info["dtype"] == "float32" and ts.bands == ["red", "green", "blue", "nir"]
    assert "scale" not in ts.info["sources"][0] or ts.info["sources"][0]["scale"] is None
    t = ts.tiles
    assert len(t) > 30
    with rasterio.open(p) as src:
        raw = src.read()
    assert raw.dtype == np.float64
    for k in (0, len(t) // 2, len(t) - 1):
        chips, _ = ts.read([int(t["chip_index"].iloc[k])])
        want, who = _source_values(ts, t.iloc[k], [p])
        assert (who == 0).all()
        for b in range(4):  # every chip value is a source value, unchanged by the float32 store
            assert np.isin(chips[0][b], raw[b].astype(np.float32)).all()
        # nearest: the pixel under each centre (GDAL picks a neighbour for a few centres near pixel edges)
        assert np.isclose(chips[0], want, rtol=1e-7, atol=0).mean() > 0.95
    # bytes: half of what float64 chips would take
    assert (res_bytes := (ts.path / "chips.npy").stat().st_size) < len(t) * 4 * CROP_PX**2 * 8 * 0.51, res_bytes


def test_a_crop_across_korail_and_mirpur_is_filled_from_both(dhaka, tmp_path):
    srcs = [dhaka / "korail_s2_2022.tif", dhaka / "mirpur_s2_2022.tif"]  # korail first: it wins where both cover
    (tmp_path / "dates.csv").write_text(DATES_CSV)
    cfg = TileConfig(crop_px=CROP_PX, bands=["red", "green", "blue", "nir"], resampling="nearest", overlap=0.5,
                     dates=str(tmp_path / "dates.csv"))
    ts = TileSet.open(tile([SourceSpec(p) for p in srcs], tmp_path / "ts", cfg).path)
    assert set(ts.tiles["date"]) == {dt.date(2022, 3, 16)}
    with rasterio.open(srcs[0]) as k:
        west = k.bounds.left
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32646", always_xy=True).transform(west, 23.800)
    # the crop (stride 336 m) that korail's west edge cuts nearest its middle; inside mirpur's extent
    col = min((math.floor(x / 336) - 1, math.floor(x / 336)), key=lambda c: abs((x - c * 336) / 672 - 0.5))
    row = math.floor(y / 336)
    t = ts.tiles
    sel = t[(t["col"] == col) & (t["row"] == row)]
    assert len(sel) == 1 and sel["valid_fraction"].iloc[0] == 1.0
    chips, _ = ts.read([int(sel["chip_index"].iloc[0])])
    want, who = _source_values(ts, sel.iloc[0], srcs)
    assert (who == 0).sum() > 1000 and (who == 1).sum() > 1000  # pixels from both files
    for k, p in enumerate(srcs):
        with rasterio.open(p) as src:
            raw = src.read().astype(np.float32)
        for b in range(4):  # the pixels from each file are that file's values
            assert np.isin(chips[0][b][who == k], raw[b]).mean() > 0.97
        assert np.isclose(chips[0][:, who == k], want[:, who == k], rtol=1e-7, atol=0).mean() > 0.95


def test_scale_from_the_file_and_bad_band_input(dhaka, tmp_path):
    src = dhaka / "korail_s2_2023.tif"
    scaled = tmp_path / "scaled.tif"
    with rasterio.open(src) as s:
        profile = s.profile | {"dtype": "uint16"}
        with rasterio.open(scaled, "w", **profile) as d:
            d.write(np.rint(s.read()).astype("uint16"))
            d.scales = (1e-4,) * 4
            d.offsets = (-0.1,) * 4
    cfg = TileConfig(crop_px=16, bands=["B04", "B03", "B02", "B08"], date="2023-03-16")
    ts = TileSet.open(tile([SourceSpec(scaled)], tmp_path / "ts", cfg).path)
    s0 = ts.info["sources"][0]
    assert s0["scale_from"] == "file" and s0["scale"] == [1e-4] * 4 and s0["offset"] == [-0.1] * 4
    assert ts.info["dtype"] == "float32" and -0.1 < ts.stats["red"]["mean"] < 0.2
    with pytest.raises(RasterError, match=r"scaled.tif: the file declares scale 0.0001 and offset -0.1, which"):
        tile([SourceSpec(scaled)], tmp_path / "ts2", cfg.model_copy(update={"scale": 0.001}))
    with pytest.raises(ConfigError, match=r"--bands: B4 is ambiguous .*; pass --sensor sentinel2\|landsat8\|landsat7"):
        tile([SourceSpec(src)], tmp_path / "ts3", cfg.model_copy(update={"bands": ["B4", "B3", "B2", "B8"]}))
    (tmp_path / "bad.csv").write_text("name,when\nx,2020-01-01\n")
    with pytest.raises(RasterError, match=r"bad.csv: a dates file needs columns file,date"):
        tile([SourceSpec(src)], tmp_path / "ts4", TileConfig(crop_px=16, dates=str(tmp_path / "bad.csv")))
    (tmp_path / "two.csv").write_text("file,date\nkorail*,2023-03-16\n*_2023.tif,2023-01-01\n")
    with pytest.raises(RasterError, match=r"korail_s2_2023.tif matches rows with different dates"):
        tile([SourceSpec(src)], tmp_path / "ts5", TileConfig(crop_px=16, dates=str(tmp_path / "two.csv")))


def test_cli_takes_a_folder_band_ids_sensor_scale_and_dates(dhaka, tmp_path):
    import json

    from typer.testing import CliRunner

    from riotvit.cli import app

    (tmp_path / "dates.csv").write_text(DATES_CSV)
    args = ["tile", str(dhaka), "--out", str(tmp_path / "ts"), "--crop-px", "16", "--dates", str(tmp_path / "dates.csv"),
            "--scale", "0.0001", "--dry-run", "--json"]
    r = CliRunner().invoke(app, [*args, "--bands", "B4,B3,B2,B8", "--sensor", "sentinel2"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["sources"] == 9 and s["dates"] == ["2021-03-16", "2022-03-16", "2023-03-16"]
    assert s["bands"] == ["red", "green", "blue", "nir"] and s["dtype"] == "float32" and s["grid_crs"] == "EPSG:32646"
    r = CliRunner().invoke(app, [*args, "--bands", "B4,B3,B2,B8"])
    assert r.exit_code != 0 and "B4 is ambiguous" in r.output and "Traceback" not in r.output


def test_stated_scale_is_found_again_for_prediction(dhaka, tmp_path):
    from riotvit.tile.meta import stated_scaling

    cfg = TileConfig(crop_px=16, bands=["red", "green", "blue", "nir"], scale=1e-4, offset=-0.1, date="2023-03-16")
    ts = TileSet.open(tile([SourceSpec(dhaka / "korail_s2_2023.tif")], tmp_path / "ts", cfg).path)
    assert stated_scaling(ts.info.sources) == (1e-4, -0.1)
    assert -0.1 < ts.stats["red"]["mean"] < 0.2  # raw ~1000-2000 x 1e-4 - 0.1
    # the same from a source spec (as a STAC item's raster:bands would give it), with band ids and a sensor
    spec = SourceSpec(dhaka / "korail_s2_2023.tif", bands=["B4", "B3", "B2", "B8"], sensor="sentinel2", scale=1e-4,
                      offset=-0.1, date=dt.date(2023, 3, 16))
    ts3 = TileSet.open(tile([spec], tmp_path / "ts3", TileConfig(crop_px=16)).path)
    assert ts3.bands == ts.bands and ts3.stats == ts.stats and stated_scaling(ts3.info.sources) == (1e-4, -0.1)
    plain = TileSet.open(tile([SourceSpec(dhaka / "korail_s2_2023.tif")], tmp_path / "ts2",
                              cfg.model_copy(update={"scale": None, "offset": None})).path)
    assert stated_scaling(plain.info.sources) == (None, None) and plain.stats["red"]["mean"] > 500


def test_catalog_entries_give_date_band_ids_sensor_and_scale(dhaka, tmp_path):
    from riotvit.catalog import Catalog, raster_specs

    cat = tmp_path / "cat"
    cat.mkdir()
    for year in DATES:
        (cat / f"korail_{year}.yaml").write_text(
            f"id: korail_{year}\nkind: raster\npath: {dhaka / f'korail_s2_{year}.tif'}\nbands: [B4, B3, B2, B8]\n"
            f"sensor: sentinel2\nscale: 0.0001\nacquisition_date: {year}-03-16\nlicence: Copernicus\ncitation: ESA\n")
    (cat / "bad.yaml").write_text(f"id: bad\nkind: raster\npath: {dhaka / 'korail_s2_2021.tif'}\nbands: [B4, B3, B2, B8]\n"
                                  "licence: x\ncitation: x\n")
    assert "B4 is ambiguous" in Catalog.load(cat).load_errors["bad.yaml"]
    specs = raster_specs([f"korail_{y}" for y in DATES], cat)
    assert [s.date for s in specs] == list(DATES.values()) and {s.sensor for s in specs} == {"sentinel2"}
    ts = TileSet.open(tile(specs, tmp_path / "ts", TileConfig(crop_px=16)).path)
    assert ts.info["dates"] == ["2021-03-16", "2022-03-16", "2023-03-16"] and ts.bands == ["red", "green", "blue", "nir"]
    assert 0.02 <= ts.stats["red"]["mean"] <= 0.3 and ts.info["dtype"] == "float32"
    per_date = ts.tiles.groupby("date").size()
    assert len(per_date) == 3 and per_date.nunique() == 1  # the same crops each year
