"""STAC catalogs made by code over local single-band COGs (seeded, a few hundred KB at most)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

S2_BANDS = {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir"}


def write_cog(path: Path, band: np.ndarray, transform: Affine, crs: str, nodata: float | None = None) -> Path:
    """Write one (H, W) band as a COG."""
    profile = dict(driver="COG", width=band.shape[1], height=band.shape[0], count=1, dtype=band.dtype,
                   transform=transform, crs=crs, nodata=nodata, compress="deflate", blocksize=128)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(band, 1)
    return path


def split_to_cogs(src_path: Path, folder: Path, band_ids: list[str]) -> dict[str, Path]:
    """One COG per band of a multi-band GeoTIFF, named ``<stem>_<id>.tif``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with rasterio.open(src_path) as src:
        for i, bid in enumerate(band_ids, start=1):
            out[bid] = write_cog(folder / f"{src_path.stem}_{bid}.tif", src.read(i), src.transform, src.crs.to_string(),
                                 src.nodata)
    return out


def make_item(item_id: str, cogs: dict[str, Path], *, datetime: dt.datetime | None,
              props: dict | None = None, mask: Path | None = None, mask_key: str = "SCL") -> pystac.Item:
    """A STAC Item with one asset per band COG (``eo:bands`` name and common name) and an optional mask."""
    first = next(iter(cogs.values()))
    with rasterio.open(first) as src:
        lon0, lat0, lon1, lat1 = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    geom = {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}
    item = pystac.Item(item_id, geom, [lon0, lat0, lon1, lat1], datetime, dict(props or {}))
    for bid, p in cogs.items():
        item.add_asset(bid, pystac.Asset(
            str(p.resolve()), media_type=pystac.MediaType.COG, roles=["data"],
            extra_fields={"eo:bands": [{"name": bid, "common_name": S2_BANDS.get(bid, bid.lower())}]},
        ))
    if mask is not None:
        item.add_asset(mask_key, pystac.Asset(str(mask.resolve()), media_type=pystac.MediaType.COG, roles=["data"]))
    return item


def save_catalog(items: list[pystac.Item], root: Path) -> Path:
    """A self-contained catalog of ``items`` under ``root``; returns its catalog.json."""
    cat = pystac.Catalog("test-catalog", "made by a test")
    for it in items:
        cat.add_item(it)
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def synthetic_scene(seed: int, shape=(3, 160, 200)) -> np.ndarray:
    """Seeded uint16 reflectance-like bands (values 300..5000)."""
    rng = np.random.default_rng(seed)
    return rng.integers(300, 5000, size=shape, dtype=np.uint16)


UTM = "EPSG:32646"
TRANSFORM = Affine(10.0, 0.0, 229_000.0, 0.0, -10.0, 2_631_000.0)
