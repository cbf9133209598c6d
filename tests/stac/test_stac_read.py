"""STAC in: Items, ItemCollections and Catalogs over local COGs tile like the same files given as paths."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from affine import Affine
from raster_fixtures import write_raster
from stac_fixtures import (
    TRANSFORM,
    UTM,
    make_item,
    save_catalog,
    split_to_cogs,
    synthetic_scene,
    write_cog,
)

from riotvit.stac.errors import StacError
from riotvit.stac.read import is_stac_input, resolve_stac_inputs
from riotvit.tile.plan import SourceSpec, TileConfig
from riotvit.tile.tiler import tile
from riotvit.tile.tileset import TileSet

CFG = TileConfig(crop_px=32, min_valid=0.3, checksum=False)
D1, D2 = dt.date(2022, 3, 16), dt.date(2023, 3, 16)


def _scene_files(tmp_path):
    """Two dates of one synthetic 3-band scene as multi-band GeoTIFFs and as per-band COGs."""
    out = {}
    (tmp_path / "paths").mkdir(exist_ok=True)
    for name, seed in (("scene_2022", 1), ("scene_2023", 2)):
        tif = write_raster(tmp_path / "paths" / f"{name}.tif", synthetic_scene(seed), TRANSFORM, crs=UTM)
        out[name] = (tif, split_to_cogs(tif, tmp_path / "cogs", ["B4", "B3", "B8"]))
    return out


def _same_tilesets(a, b) -> int:
    ta, tb = TileSet.open(a), TileSet.open(b)
    pa, pb = pd.read_parquet(a / "tiles.parquet"), pd.read_parquet(b / "tiles.parquet")
    pd.testing.assert_frame_equal(pa, pb)
    np.testing.assert_array_equal(np.load(a / "chips.npy", mmap_mode="r"), np.load(b / "chips.npy", mmap_mode="r"))
    np.testing.assert_array_equal(np.load(a / "masks.npy", mmap_mode="r"), np.load(b / "masks.npy", mmap_mode="r"))
    assert ta.bands == tb.bands
    return len(ta)


def test_catalog_tiles_to_the_same_tile_set_as_the_paths(tmp_path):
    files = _scene_files(tmp_path)
    items = [make_item(n, cogs, datetime=dt.datetime(d.year, d.month, d.day, 4, 30, tzinfo=dt.timezone.utc))
             for (n, (_, cogs)), d in zip(files.items(), (D1, D2), strict=True)]
    cat = save_catalog(items, tmp_path / "stac")
    assert is_stac_input(str(cat)) and not is_stac_input(str(files["scene_2022"][0]))
    specs = resolve_stac_inputs([str(cat)], bands=["red", "green", "nir"], workdir=tmp_path / "vrt")
    assert [(s.id, s.date, s.bands) for s in specs] == [
        ("scene_2022", D1, ["red", "green", "nir"]), ("scene_2023", D2, ["red", "green", "nir"])]
    with rasterio.open(specs[0].path) as v, rasterio.open(files["scene_2022"][0]) as f:
        assert v.count == 3 and v.crs == f.crs and v.transform == f.transform and v.dtypes[0] == "uint16"
        np.testing.assert_array_equal(v.read(), f.read())
        assert v.tags()["ACQUISITION_DATE"] == "2022-03-16" and v.descriptions == ("red", "green", "nir")
    cfg = CFG.model_copy(update={"bands": ["red", "green", "nir"]})
    paths = [SourceSpec(files["scene_2022"][0], date=D1), SourceSpec(files["scene_2023"][0], date=D2)]
    tile(paths, tmp_path / "by_path", cfg)
    tile(specs, tmp_path / "by_stac", cfg)
    n = _same_tilesets(tmp_path / "by_path", tmp_path / "by_stac")
    tiles = pd.read_parquet(tmp_path / "by_stac" / "tiles.parquet")
    assert n == len(tiles) > 0 and sorted(tiles["date"].astype(str).unique()) == ["2022-03-16", "2023-03-16"]


def test_band_ids_and_common_names_pick_the_same_assets_in_the_order_asked(tmp_path):
    files = _scene_files(tmp_path)
    item = make_item("s", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16))
    p = tmp_path / "item.json"
    item.save_object(dest_href=str(p), include_self_link=False)
    by_id = resolve_stac_inputs([str(p)], bands=["B08", "B4"], workdir=tmp_path / "a")[0]
    by_name = resolve_stac_inputs([str(p)], bands=["nir", "red"], workdir=tmp_path / "b")[0]
    with rasterio.open(by_id.path) as a, rasterio.open(by_name.path) as b, rasterio.open(files["scene_2022"][0]) as f:
        np.testing.assert_array_equal(a.read(), b.read())
        np.testing.assert_array_equal(a.read(), f.read([3, 1]))  # nir is the file's 3rd band, red its 1st
    everything = resolve_stac_inputs([str(p)], workdir=tmp_path / "c")[0]
    assert everything.bands == ["red", "green", "nir"]


def test_item_collection_of_one_date_is_mosaicked(tmp_path):
    """Two items of the same date, the west and east halves of a scene, tile like the whole scene."""
    data = synthetic_scene(5)
    whole = write_raster(tmp_path / "whole.tif", data, TRANSFORM, crs=UTM)
    items = []
    for half, sl, x0 in (("west", slice(0, 100), 229_000.0), ("east", slice(100, 200), 230_000.0)):
        t = Affine(10.0, 0.0, x0, 0.0, -10.0, 2_631_000.0)
        cogs = {b: write_cog(tmp_path / f"{half}_{b}.tif", data[i, :, sl].copy(), t, UTM)
                for i, b in enumerate(["B4", "B3", "B8"])}
        items.append(make_item(half, cogs, datetime=dt.datetime(2022, 3, 16, 10)))
    coll = tmp_path / "items.json"
    coll.write_text(json.dumps(pystac.ItemCollection(items).to_dict()))
    specs = resolve_stac_inputs([str(coll)], bands=["B4", "B3", "B8"], workdir=tmp_path / "vrt")
    assert [s.id for s in specs] == ["west", "east"] and {s.date for s in specs} == {D1}
    cfg = CFG.model_copy(update={"bands": ["red", "green", "nir"]})
    tile([SourceSpec(whole, date=D1)], tmp_path / "whole", cfg)
    tile(specs, tmp_path / "mosaic", cfg)
    a, b = pd.read_parquet(tmp_path / "whole" / "tiles.parquet"), pd.read_parquet(tmp_path / "mosaic" / "tiles.parquet")
    assert list(a["crop_id"]) == list(b["crop_id"]) and len(a) == 6
    assert set(b["source"]) == {"west", "east"}  # crops are filled from both items
    pd.testing.assert_frame_equal(a.drop(columns="source"), b.drop(columns="source"))
    diff = np.load(tmp_path / "whole" / "chips.npy") != np.load(tmp_path / "mosaic" / "chips.npy")
    # the seam (x = 230,000 m) cuts grid pixel 8 of column 342 (229,824 + 8 x 21 m); each item is
    # resampled on its own, so that one pixel column differs, and nothing else
    assert set(np.nonzero(diff)[3]) == {8} and set(b["col"].iloc[np.nonzero(diff)[0]]) == {342}


def test_scl_asset_becomes_the_nodata_mask(tmp_path):
    files = _scene_files(tmp_path)
    scl = np.full((80, 100), 4, dtype=np.uint8)  # 20 m: vegetation
    scl[:40, :50] = 9  # cloud (high probability) over the north-west quarter
    scl[70:, 90:] = 0  # no data in a corner
    t20 = Affine(20.0, 0.0, TRANSFORM.c, 0.0, -20.0, TRANSFORM.f)
    mask = write_cog(tmp_path / "scl.tif", scl, t20, UTM)
    item = make_item("s", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16), mask=mask)
    p = tmp_path / "item.json"
    item.save_object(dest_href=str(p), include_self_link=False)
    spec = resolve_stac_inputs([str(p)], bands=["red"], workdir=tmp_path / "vrt")[0]
    with rasterio.open(spec.path) as v:
        m = v.read_masks(1)
        assert v.count == 1 and v.shape == (160, 200)
    expected = np.repeat(np.repeat(~np.isin(scl, [0, 1, 3, 8, 9, 10]), 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(m > 0, expected)
    assert (m == 0).sum() == 80 * 100 + 20 * 20  # 10 m pixels under the 20 m cloud and no-data classes
    unmasked = resolve_stac_inputs([str(p)], bands=["red"], workdir=tmp_path / "vrt2", mask=False)[0]
    with rasterio.open(unmasked.path) as v:
        assert (v.read_masks(1) > 0).all()
    cfg = CFG.model_copy(update={"min_valid": 0.0})
    masked = pd.read_parquet(tile([spec], tmp_path / "t", cfg).path / "tiles.parquet").set_index("crop_id")
    clear = pd.read_parquet(tile([unmasked], tmp_path / "u", cfg).path / "tiles.parquet").set_index("crop_id")
    assert set(masked.index) < set(clear.index)  # crops wholly under the cloud are gone
    lost = clear["valid_fraction"] - masked["valid_fraction"].reindex(clear.index, fill_value=0.0)
    nw = clear.index[(clear["col"] == clear["col"].min()) & (clear["row"] == clear["row"].max())][0]
    assert nw not in masked.index and lost[nw] == clear["valid_fraction"][nw] and (lost >= 0).all()
    # the masked ground, in crops of 21 m pixels: 8,400 masked 10 m pixels are 840,000 m2
    assert lost.sum() * 672 * 672 == pytest.approx(8400 * 100, rel=0.05)


def test_date_falls_back_to_start_datetime_then_to_the_option(tmp_path):
    files = _scene_files(tmp_path)
    start = {"start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-05-31T23:59:59Z"}
    ranged = make_item("ranged", files["scene_2022"][1], datetime=None, props=start)
    bare = make_item("bare", files["scene_2023"][1], datetime=dt.datetime(2022, 1, 1))
    bare.datetime = None
    for it in (ranged, bare):
        it.save_object(dest_href=str(tmp_path / f"{it.id}.json"), include_self_link=False)
    assert resolve_stac_inputs([str(tmp_path / "ranged.json")], bands=["red"], workdir=tmp_path / "v")[0].date == \
        dt.date(2021, 1, 1)
    with pytest.raises(StacError, match=r"bare\.json: item bare has no datetime or start_datetime; pass --date"):
        resolve_stac_inputs([str(tmp_path / "bare.json")], bands=["red"], workdir=tmp_path / "v")
    spec = resolve_stac_inputs([str(tmp_path / "bare.json")], bands=["red"], date=D2, workdir=tmp_path / "v")[0]
    assert spec.date == D2


def test_missing_bands_are_named_with_what_the_item_has(tmp_path):
    files = _scene_files(tmp_path)
    item = make_item("s2", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16))
    item.save_object(dest_href=str(tmp_path / "i.json"), include_self_link=False)
    with pytest.raises(StacError) as e:
        resolve_stac_inputs([str(tmp_path / "i.json")], bands=["red", "swir16", "B2"], workdir=tmp_path / "v")
    msg = str(e.value)
    assert "item s2 has no asset for band(s) swir16, B2; it has: B4 (red), B3 (green), B8 (nir)" in msg
    assert "\n" not in msg


def test_unreadable_asset_href_is_named(tmp_path):
    files = _scene_files(tmp_path)
    item = make_item("s2", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16))
    item.assets["B3"].href = str(tmp_path / "gone" / "B3.tif")
    item.save_object(dest_href=str(tmp_path / "i.json"), include_self_link=False)
    with pytest.raises(StacError, match=r"item s2 asset 'B3' cannot be read from .*gone/B3\.tif"):
        resolve_stac_inputs([str(tmp_path / "i.json")], bands=["red", "green"], workdir=tmp_path / "v")
    assert not list((tmp_path / "v").glob("*.vrt"))  # nothing half-made is left


def test_json_that_is_not_stac_is_refused(tmp_path):
    geojson = tmp_path / "regions.geojson"
    geojson.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": None}))
    other = tmp_path / "config.json"
    other.write_text(json.dumps({"crop_m": 672}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert is_stac_input(str(geojson)) and is_stac_input(str(other))
    with pytest.raises(StacError, match=r"regions\.geojson: JSON but not a STAC Item.*'Feature', no stac_version"):
        resolve_stac_inputs([str(geojson)], workdir=tmp_path / "v")
    with pytest.raises(StacError, match=r"config\.json: JSON but not a STAC Item, ItemCollection or Catalog \(type None"):
        resolve_stac_inputs([str(other)], workdir=tmp_path / "v")
    with pytest.raises(StacError, match=r"broken\.json: cannot read STAC JSON"):
        resolve_stac_inputs([str(broken)], workdir=tmp_path / "v")


def test_vrt_is_rewritten_identically_so_a_rerun_is_up_to_date(tmp_path):
    files = _scene_files(tmp_path)
    item = make_item("s", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16))
    item.save_object(dest_href=str(tmp_path / "i.json"), include_self_link=False)
    a = resolve_stac_inputs([str(tmp_path / "i.json")], bands=["red"], workdir=tmp_path / "v")[0]
    first = a.path.stat().st_mtime_ns
    b = resolve_stac_inputs([str(tmp_path / "i.json")], bands=["red"], workdir=tmp_path / "v")[0]
    assert a.path == b.path and b.path.stat().st_mtime_ns == first
    cfg = CFG.model_copy(update={"checksum": True, "bands": ["red"]})
    tile([a], tmp_path / "t", cfg)
    assert tile([b], tmp_path / "t", cfg).up_to_date


def test_stac_1_1_bands_field_and_asset_keys_name_bands_too(tmp_path):
    files = _scene_files(tmp_path)
    cogs = files["scene_2022"][1]
    item = make_item("s", cogs, datetime=dt.datetime(2022, 3, 16))
    for key, a in item.assets.items():
        eo = a.extra_fields.pop("eo:bands")[0]
        if key == "B8":
            continue  # no band metadata at all: named by its asset key
        a.extra_fields["bands"] = [{"name": f"B0{key[1:]}", "eo:common_name": eo["common_name"]}]
    item.save_object(dest_href=str(tmp_path / "i.json"), include_self_link=False)
    spec = resolve_stac_inputs([str(tmp_path / "i.json")], bands=["B8", "red", "B03"], workdir=tmp_path / "v")[0]
    with rasterio.open(spec.path) as v, rasterio.open(files["scene_2022"][0]) as f:
        np.testing.assert_array_equal(v.read(), f.read([3, 1, 2]))
    assert spec.bands == ["b8", "red", "b03"]


def test_urls_are_read_through_gdal_vsicurl_and_geotiff_urls_are_not_stac():
    from riotvit.stac.read import gdal_path

    assert is_stac_input("https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_46QBM")
    assert is_stac_input("http://example.org/catalog.json")
    assert not is_stac_input("https://example.org/scene.tif?token=1") and not is_stac_input("missing.json")
    assert gdal_path("https://example.org/b04.tif") == "/vsicurl/https://example.org/b04.tif"
    assert gdal_path("s3://bucket/b04.tif") == "/vsis3/bucket/b04.tif"
    assert gdal_path("/data/b04.tif") == "/data/b04.tif"


@pytest.mark.qgis
def test_item_vrt_with_its_mask_opens_in_qgis(tmp_path):
    """The per-item VRT is a plain GDAL raster: QGIS opens it with its bands, CRS and extent."""
    from qgis_support import qgis_available, run_qgis_check

    if not qgis_available():
        pytest.skip("QGIS python bindings not importable")
    files = _scene_files(tmp_path)
    scl = write_cog(tmp_path / "scl.tif", np.full((80, 100), 4, dtype=np.uint8),
                    Affine(20.0, 0.0, TRANSFORM.c, 0.0, -20.0, TRANSFORM.f), UTM)
    item = make_item("s", files["scene_2022"][1], datetime=dt.datetime(2022, 3, 16), mask=scl)
    item.save_object(dest_href=str(tmp_path / "i.json"), include_self_link=False)
    spec = resolve_stac_inputs([str(tmp_path / "i.json")], bands=["red", "green", "nir"], workdir=tmp_path / "v")[0]
    layer = run_qgis_check([spec.path])["files"][0]
    assert layer["valid"] and layer["kind"] == "raster" and layer["crs"] == "EPSG:32646"
    # QGIS shows a per-dataset mask as one more band after the data bands (and renders it as transparency)
    assert layer["band_names"] == ["Band 1: red", "Band 2: green", "Band 3: nir", "Band 4"]
    assert layer["size"] == [200, 160]
    assert layer["extent"] == pytest.approx([229_000.0, 2_629_400.0, 231_000.0, 2_631_000.0])


def test_riotvit_tile_cli_takes_a_stac_catalog(tmp_path):
    """The CLI: a catalog tiles like its files, with band ids or common names; a missing band is one line."""
    from typer.testing import CliRunner

    from riotvit.cli import app

    files = _scene_files(tmp_path)
    items = [make_item(n, cogs, datetime=dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc))
             for (n, (_, cogs)), d in zip(files.items(), (D1, D2), strict=True)]
    cat = save_catalog(items, tmp_path / "stac")
    run = CliRunner().invoke
    common = ["--crop-px", "32", "--min-valid", "0.3", "--quiet"]
    r = run(app, ["tile", str(cat), "--out", str(tmp_path / "cli"), "--bands", "red,green,nir", *common])
    assert r.exit_code == 0, r.output
    tile([SourceSpec(files["scene_2022"][0], date=D1), SourceSpec(files["scene_2023"][0], date=D2)],
         tmp_path / "by_path", CFG.model_copy(update={"bands": ["red", "green", "nir"]}))
    n = _same_tilesets(tmp_path / "by_path", tmp_path / "cli")
    assert n > 0 and (tmp_path / "cli.sources").is_dir()
    bad = run(app, ["tile", str(cat), "--out", str(tmp_path / "bad"), "--bands", "red,swir16", *common])
    assert bad.exit_code != 0 and "swir16" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()


def test_a_users_file_where_an_item_vrt_goes_is_never_overwritten(tmp_path):
    files = _scene_files(tmp_path)
    items = [make_item(n, cogs, datetime=dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc))
             for (n, (_, cogs)), d in zip(files.items(), (D1, D2), strict=True)]
    cat = save_catalog(items, tmp_path / "stac")
    work = tmp_path / "vrt"
    work.mkdir()
    (work / "scene_2022.vrt").write_text("my notes")
    with pytest.raises(StacError, match="not written by riotvit"):
        resolve_stac_inputs([str(cat)], bands=["red", "green", "nir"], workdir=work)
    assert (work / "scene_2022.vrt").read_text() == "my notes"
    with pytest.raises(StacError):  # a failed run leaves no empty folder of its own
        resolve_stac_inputs([str(cat)], bands=["swir16"], workdir=tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
