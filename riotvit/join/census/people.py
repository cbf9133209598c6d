"""The population raster on a working lattice in the grid CRS, for the dasymetric weights.

Opening the raster (:func:`open_population`), choosing the working pixel
(:func:`fine_resolution`), the lattice itself (:class:`Lattice`, :func:`lattice`) and warping
people per pixel onto it tile by tile on a global tile lattice (:func:`tiled_people`), so that
a pixel's value never depends on the extent of the call. People are resampled as a density
(source pixel areas are exact on the sphere for geographic rasters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from riotvit.errors import RasterError

TILE = 512  # the raster is warped in tiles of TILE x TILE pixels on a global lattice
MAX_FINE_PIXELS = 40_000_000  # the working grid over the crops is coarsened beyond this
_EARTH_R = 6_371_007.2  # authalic radius, metres


@dataclass(frozen=True)
class Lattice:
    """A north-up pixel grid in the grid CRS: ``width x height`` pixels of ``res`` from (x0, y1)."""

    x0: float
    y1: float
    res: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y1)

    @property
    def origin(self) -> tuple[int, int]:
        """Global column and row (from y = 0, growing southwards) of pixel (0, 0)."""
        return int(round(self.x0 / self.res)), int(round(-self.y1 / self.res))

    def strips(self) -> Iterator[tuple[int, int]]:
        """Row blocks ``(first row, height)`` cut at the global tile rows."""
        g0 = self.origin[1]
        r0 = 0
        while r0 < self.height:
            h = min(TILE - (g0 + r0) % TILE, self.height - r0)
            yield r0, h
            r0 += h


def snap(bounds: tuple[float, float, float, float], res: float) -> tuple[float, float, float, float]:
    """Grow bounds outward to multiples of ``res``."""
    xmin, ymin, xmax, ymax = bounds
    return (
        math.floor(xmin / res + 1e-9) * res,
        math.floor(ymin / res + 1e-9) * res,
        math.ceil(xmax / res - 1e-9) * res,
        math.ceil(ymax / res - 1e-9) * res,
    )


def lattice(bounds: tuple[float, float, float, float], res: float) -> Lattice:
    """The lattice of ``res`` pixels that exactly covers ``bounds``."""
    xmin, ymin, xmax, ymax = bounds
    return Lattice(xmin, ymax, res, int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res)))


def tiled_people(src, grid_crs, lat: Lattice, r0: int, h: int, lab: np.ndarray) -> np.ndarray:
    """People per pixel of a strip, warped tile by tile on the global tile lattice.

    GDAL's warper approximates the transformation per chunk, so a pixel's value would depend
    on the extent of the call; warping fixed global tiles makes it depend on the pixel only.
    """
    res = lat.res
    gc0, gr0 = lat.origin
    k = (gr0 + r0) // TILE
    out = np.full((h, lat.width), np.nan)
    for j in range(gc0 // TILE, (gc0 + lat.width - 1) // TILE + 1):
        ca, cb = max(0, j * TILE - gc0), min(lat.width, (j + 1) * TILE - gc0)
        if not lab[:, ca:cb].any():
            continue  # no census polygon here: no need to warp
        x0, y1 = j * TILE * res, -k * TILE * res
        t = Affine(res, 0.0, x0, 0.0, -res, y1)
        tile = _people(src, grid_crs, t, (TILE, TILE), (x0, y1 - TILE * res, x0 + TILE * res, y1), res)
        ra = gr0 + r0 - k * TILE
        out[:, ca:cb] = tile[ra : ra + h, ca + gc0 - j * TILE : cb + gc0 - j * TILE]
    return out


def _people(src, grid_crs, t: Affine, shape, sb, res: float) -> np.ndarray:
    """People per working pixel (NaN outside the raster), resampled as a density."""
    out = np.full(shape, np.nan, dtype=np.float32)  # float32 warps faster; ratios need no more
    try:
        b = transform_bounds(grid_crs, src.crs, *sb, densify_pts=21)
    except Exception:  # noqa: BLE001 - outside the source CRS's area of use
        return out
    win = from_bounds(*b, transform=src.transform)
    pad = 2
    c0, r0 = math.floor(win.col_off) - pad, math.floor(win.row_off) - pad
    c1, r1 = math.ceil(win.col_off + win.width) + pad, math.ceil(win.row_off + win.height) + pad
    rc0, rr0, rc1, rr1 = max(c0, 0), max(r0, 0), min(c1, src.width), min(r1, src.height)
    if rc1 <= rc0 or rr1 <= rr0:
        return out
    data = src.read(1, window=Window(rc0, rr0, rc1 - rc0, rr1 - rr0)).astype(np.float64)
    bad = ~np.isfinite(data) | (data < 0)
    if src.nodata is not None:
        bad |= data == src.nodata
    data[bad] = 0.0  # nodata inside the raster: nobody lives there
    dens = np.full((r1 - r0, c1 - c0), np.nan, np.float32)  # NaN border = outside the raster
    area = _pixel_area(src, rr0, rr1)
    dens[rr0 - r0 : rr1 - r0, rc0 - c0 : rc1 - c0] = data / area
    reproject(
        dens,
        out,
        src_transform=src.transform @ Affine.translation(c0, r0),
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=t,
        dst_crs=grid_crs,
        dst_nodata=np.nan,
        resampling=Resampling.average,
    )
    return out.astype(np.float64) * (res * res)


def _pixel_area(src, row0: int, row1: int) -> np.ndarray:
    """Ground area (m²) of the source pixels of rows ``row0..row1``, as a column vector."""
    t = src.transform
    if src.crs.is_geographic and t.b == 0 and t.d == 0:
        lat_edges = t.f + t.e * np.arange(row0, row1 + 1)
        s = np.sin(np.radians(np.clip(lat_edges, -90, 90)))
        a = _EARTH_R**2 * abs(math.radians(t.a)) * np.abs(np.diff(s))
        return np.maximum(a, 1e-9)[:, None]
    if src.crs.is_geographic:  # rotated geographic grid: use the centre latitude
        lat = (src.bounds.bottom + src.bounds.top) / 2
        k = math.radians(1) * _EARTH_R
        return np.array([[abs(t.determinant) * k * k * math.cos(math.radians(lat))]])
    f = _units_factor(src.crs)
    return np.array([[abs(t.determinant) * f * f]])


def _units_factor(crs) -> float:
    try:
        return float(crs.linear_units_factor[1])
    except Exception:  # noqa: BLE001 - unknown units: assume metres
        return 1.0


def _native_res_m(src, region) -> float:
    t = src.transform
    px = math.hypot(t.a, t.d)
    if src.crs.is_geographic:
        lat = (src.bounds.bottom + src.bounds.top) / 2
        return px * math.radians(1) * _EARTH_R * max(math.cos(math.radians(lat)), 0.05)
    return px * _units_factor(src.crs)


def fine_resolution(src, region, s: float, c: float, resolution_m: float | None) -> float:
    """A working pixel that divides the stride: about half the raster's pixel, <= crop / 8."""
    if resolution_m is None:
        target = min(_native_res_m(src, region) / 2, c / 8)
        area = (region[2] - region[0]) * (region[3] - region[1])
        target = max(target, math.sqrt(area / MAX_FINE_PIXELS))
    else:
        if resolution_m <= 0:
            raise RasterError(f"population raster resolution {resolution_m} m must be positive")
        target = resolution_m
    return s / max(1, math.ceil(s / target - 1e-9))


def open_population(raster: str | Path):
    """Open a people-per-pixel raster, with clear errors for a missing file, no raster or no CRS."""
    p = Path(raster)
    if not p.exists():
        raise RasterError(f"{p}: population raster not found; check --population-raster")
    try:
        src = rasterio.open(p)
    except Exception as e:  # noqa: BLE001 - GDAL errors vary
        raise RasterError(f"{p}: cannot open as a raster ({' '.join(str(e).split())[:120]}); pass a GeoTIFF of people per pixel") from None
    if src.crs is None:
        src.close()
        raise RasterError(f"{p}: population raster has no CRS; set it (gdal_edit.py -a_srs EPSG:4326 {p.name})")
    return src

