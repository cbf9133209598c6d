"""Census wards of the synthetic city: Voronoi polygons with population, households, youth
share and unemployment rate derived from the land cover (so census and imagery agree)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from riotvit.synth.city import FORMAL, INDUSTRIAL, INFORMAL, MARKET

# people per 3 m pixel by land cover (informal ~390/ha, formal ~100/ha)
_DENSITY = {FORMAL: 0.09, INFORMAL: 0.35, MARKET: 0.02, INDUSTRIAL: 0.005}


def build_wards(rng: np.random.Generator, lc: np.ndarray, gsd: float, x0: float, y1: float, epsg: int) -> gpd.GeoDataFrame:
    """Ward polygons (in the image's UTM CRS) with census attributes (one census, at the last date).

    Args:
        lc: the land cover the census counts people on (image frame: x right, y down).
        x0, y1: UTM coordinates of the image's top-left corner.
    """
    h, w = lc.shape
    size = w * gsd
    n = max(6, int(round(100 * (size / 12096) ** 2)))  # ~1.4 km² wards: many independent census draws
    seeds = rng.uniform(0.02 * size, 0.98 * size, size=(n, 2))
    bbox = shapely.box(0, 0, size, size)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=bbox)
    polys = [shapely.intersection(c, bbox) for c in cells.geoms]
    polys = [p for p in polys if not p.is_empty and p.area > 0]
    # label pixels by ward on a coarse 12 m lattice (fast, exact enough for sums)
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    lab = rasterize([(p, i + 1) for i, p in enumerate(polys)], out_shape=(h, w),
                    transform=Affine(gsd, 0, 0, 0, gsd, 0), dtype=np.int32)
    dens = np.zeros(lc.shape, dtype=np.float32)
    for k, v in _DENSITY.items():
        dens[lc == k] = v
    dens += 0.002
    pop = np.bincount(lab.ravel(), weights=dens.ravel(), minlength=len(polys) + 1)[1:]
    npx = np.bincount(lab.ravel(), minlength=len(polys) + 1)[1:].astype(float)
    inf = np.bincount(lab.ravel(), weights=(lc == INFORMAL).ravel().astype(np.float32), minlength=len(polys) + 1)[1:]
    inf_share = inf / np.maximum(npx, 1)
    mkt = np.bincount(lab.ravel(), weights=(lc == MARKET).ravel().astype(np.float32), minlength=len(polys) + 1)[1:]
    noise = rng.normal(0, 1, size=(len(polys), 3))
    population = np.round(pop * np.exp(0.08 * noise[:, 0])).astype(np.int64)
    hh_size = np.clip(3.1 + 1.6 * inf_share + 0.2 * noise[:, 1], 2.2, 6.5)
    # the census drivers are drawn independent of what the image shows (orthogonal to the wards'
    # market and settlement shares), so a model's use of them can be told apart from the image's
    visible = np.column_stack([np.ones(len(polys)), inf_share, mkt / np.maximum(npx, 1)])
    z = _orthogonal(noise[:, 2], visible)
    unemployment = np.clip(0.14 + 0.08 * z, 0.02, 0.4)
    youth = np.clip(0.30 + 0.03 * _orthogonal(rng.normal(0, 1, len(polys)), np.column_stack([visible, z])), 0.15, 0.5)
    # image frame -> UTM
    geoms = [shapely.affinity.affine_transform(p, [1, 0, 0, -1, x0, y1]) for p in polys]
    gdf = gpd.GeoDataFrame(
        {
            "ward_id": [f"W{i + 1:02d}" for i in range(len(polys))],
            "ward_name": [f"Ward {i + 1:02d}" for i in range(len(polys))],
            "population": population,
            "households": np.round(population / hh_size).astype(np.int64),
            "youth_share": np.round(youth, 4),
            "unemployment_rate": np.round(unemployment, 4),
        },
        geometry=geoms,
        crs=f"EPSG:{epsg}",
    )
    return gdf


def _orthogonal(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v`` with its least-squares fit on the columns of ``x`` removed, rescaled to unit variance."""
    r = v - x @ np.linalg.lstsq(x, v, rcond=None)[0]
    return r / max(float(r.std()), 1e-9)
