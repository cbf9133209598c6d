"""Writing the synthetic city's files: the dated images, the land-cover truth and ``SAMPLE.md``."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np

import riotvit.synth.truth as truth_module

GSD = 3.0


def image_name(date: dt.date, last: bool) -> str:
    """``city.tif`` for the last date (what stages and configs read), ``city_<YYYY-MM-DD>.tif`` before."""
    return "city.tif" if last else f"city_{date.isoformat()}.tif"


def landcover_name(date: dt.date, last: bool) -> str:
    return "landcover.tif" if last else f"landcover_{date.isoformat()}.tif"


def write_image(path: Path, image: np.ndarray, x0: float, y1: float, epsg: int, date: dt.date, seed: int) -> None:
    import rasterio
    from rasterio.transform import Affine

    profile = dict(driver="GTiff", width=image.shape[2], height=image.shape[1], count=4, dtype="uint16",
                   crs=f"EPSG:{epsg}", transform=Affine(GSD, 0, x0, 0, -GSD, y1), tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", predictor=2, zlevel=1, interleave="pixel")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = ("blue", "green", "red", "nir")
        dst.update_tags(ACQUISITION_DATE=date.isoformat(), SOURCE="riotvit synthetic city", SEED=str(seed))


def write_landcover(path: Path, lc: np.ndarray, x0: float, y1: float, epsg: int, names: list[str], date: dt.date) -> None:
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", driver="GTiff", width=lc.shape[1], height=lc.shape[0], count=1, dtype="uint8",
                       crs=f"EPSG:{epsg}", transform=Affine(GSD, 0, x0, 0, -GSD, y1), tiled=True,
                       compress="deflate") as dst:
        dst.write(lc, 1)
        dst.update_tags(CLASSES=",".join(f"{i}:{n}" for i, n in enumerate(names)), DATE=date.isoformat())


def write_wards(path: Path, wards) -> None:
    """The census wards as a GeoPackage, with a fixed timestamp so the file is byte-identical per seed."""
    key = "OGR_CURRENT_DATE"  # GDAL stamps GeoPackage contents with the time of writing unless this is set
    before = os.environ.get(key)
    os.environ[key] = "2000-01-01T00:00:00.000Z"
    try:
        wards.to_crs(4326).to_file(path, layer="wards", driver="GPKG", VERSION="1.3")
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before


def readme(meta: dict) -> str:
    """``SAMPLE.md``: the files, the dates, what changes between them and the planted relationships."""
    c = meta["planted"]["coefficients"]
    first, last = meta["dates"][0], meta["dates"][-1]
    rows = "\n".join(
        f"| {d['date']} | `{d['file']}` | {d['markets']} (+{d['markets_opened']} / -{d['markets_closed']}) | "
        f"{d['settlements']} (+{d['settlements_appeared']}, {d['settlements_grown']} growing) | "
        f"{'yes' if d['new_road'] else ''} | {d['cells_rate_rose']} | {d['onsets']} |"
        for d in meta["dates"])
    planted = truth_module.__doc__.split("what drives riots in the synthetic city.", 1)[-1].strip()
    return f"""# riotvit synthetic city (seed {meta['config']['seed']})

Fictional data made by `riotvit sample`; nothing here is real.

- {len(meta['images'])} images of the same city, one per acquisition date ({first['date']} to {last['date']}):
  `city.tif` is the last date's, earlier dates are `city_<YYYY-MM-DD>.tif`; each {meta['image']['width']} x {meta['image']['height']} px,
  3 m, {meta['crs']}, bands blue, green, red, nir (uint16 reflectance x 10000), with its date in the
  `ACQUISITION_DATE` tag.
- `acled.csv`: {meta['events']['n']} events ({meta['events']['riots']} riots) from {meta['events']['start']} to {meta['events']['end']}, ACLED current export format.
- `wards.gpkg`: {meta['wards']} census wards (EPSG:4326): population, households, youth_share, unemployment_rate (one census).
- `truth/cells.parquet`: planted drivers, rates and onsets per 672 m cell and date ({meta['cells']} cells x
  {len(meta['images'])} dates); `truth/landcover.tif`: the land-cover map at the last date
  (`truth/landcover_<YYYY-MM-DD>.tif` at earlier dates).

## What changes between dates

The city is drawn once; between dates markets open (the ones at index 0 existed during the whole
early event history) and some close, informal settlements appear and grow, and one cross-town road
with its junctions is built. Everything else (and every random texture and noise draw) is the
same at every date, so two images differ exactly where the land cover changed.

| date | image | markets (opened / closed) | settlements (appeared, growing) | new road | cells whose rate rose | onset cells |
|---|---|---|---|---|---|---|
{rows}

## Planted relationships
{planted}

Coefficients: {json.dumps(c)}.
"""
