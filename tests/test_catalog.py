"""The data catalog: shipped entries parse; validate finds broken entries and says how to fix them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from raster_fixtures import aligned_transform, random_image, write_raster

from riotvit.catalog import Catalog, raster_specs, validate_entry
from riotvit.errors import CatalogError, RasterError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_catalog_parses_with_every_kind():
    cat = Catalog.load(REPO / "data_catalog")
    assert cat.load_errors == {}
    assert {"sample_city", "sample_acled", "sample_wards", "synth_city"} <= set(cat.ids())
    assert {"landsat7_olinda", "naip_north_dakota", "rasterio_rgb_byte", "worldpop_nairobi",
            "acled_sample_2022", "kenya_counties", "nairobi"} <= set(cat.ids())
    assert {e.entry.kind for e in cat.entries.values()} == {"raster", "acled", "census", "region"}
    for r in cat.entries.values():
        assert r.entry.licence and r.entry.citation
    # paths resolve relative to the entry's file
    assert cat.get("landsat7_olinda").path == (REPO.parent / "shared/data/real/landsat7_olinda/L7_ETMs.tif").resolve()


def _write_entry(d: Path, name: str, text: str) -> None:
    (d / f"{name}.yaml").write_text(text)


@pytest.fixture
def small_catalog(tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    write_raster(tmp_path / "img.tif", random_image((4, 32, 32)), aligned_transform(0, 1))
    base = "licence: test\ncitation: test\n"
    _write_entry(d, "good", f"id: good\nkind: raster\npath: ../img.tif\ncrs: EPSG:32637\nbands: [b, g, r, n]\n{base}")
    _write_entry(d, "bands", f"id: bands\nkind: raster\npath: ../img.tif\nbands: [r, g, b]\n{base}")
    _write_entry(d, "crs", f"id: crs\nkind: raster\npath: ../img.tif\ncrs: EPSG:4326\n{base}")
    _write_entry(d, "gone", f"id: gone\nkind: raster\npath: ../nothere.tif\n{base}")
    _write_entry(d, "typo", f"id: typo\nkind: raster\npath: ../img.tif\nband: [a]\n{base}")
    return d


def test_validate_reports_each_broken_entry(small_catalog):
    cat = Catalog.load(small_catalog)
    assert validate_entry(cat.get("good")) == []
    (msg,) = validate_entry(cat.get("bands"))
    assert "3 band names (r, g, b) but the raster has 4 data bands; fix 'bands'" in msg
    (msg,) = validate_entry(cat.get("crs"))
    assert "crs EPSG:4326 but the raster is EPSG:32637; fix 'crs'" in msg
    (msg,) = validate_entry(cat.get("gone"))
    assert msg.startswith("missing file") and "nothere.tif" in msg
    assert "unknown key 'band' (did you mean: bands" in cat.load_errors["typo.yaml"]


def test_catalog_ids_resolve_to_rasters_and_unknown_ids_suggest(small_catalog):
    (spec,) = raster_specs(["good"], small_catalog)
    assert spec.id == "good" and spec.bands == ["b", "g", "r", "n"] and spec.path.name == "img.tif"
    with pytest.raises(RasterError, match="'?goood'?: neither a file nor a raster id .*did you mean: good"):
        raster_specs(["goood"], small_catalog)
    with pytest.raises(CatalogError, match="not a .*entry"):
        Catalog.load(small_catalog).get("nope")


@pytest.mark.real
def test_real_entries_validate_when_present():
    cat = Catalog.load(REPO / "data_catalog")
    real = [i for i in cat.ids() if cat.entries[i].path and "shared" in str(cat.entries[i].path)]
    present = [i for i in real if cat.entries[i].path.exists()]
    if not present:
        pytest.skip("real data absent")
    for i in present:
        assert validate_entry(cat.get(i)) == [], i
    assert np.all([cat.get(i).entry.licence for i in present])
