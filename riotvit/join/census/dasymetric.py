"""Dasymetric weights: split census counts among crops by a population raster.

The weight of polygon ``p`` in crop ``k`` is ``pop(p & k) / pop(p)``, where ``pop`` sums a
people-per-pixel raster (e.g. WorldPop 100 m, any CRS). The raster is never masked piece by
piece. Instead, block by block (strips of rows, warped in tiles on a global lattice so that a
pixel's value never depends on the extent of the call):

1. the raster is resampled once onto a fine working grid in the grid CRS, as people per m²
   (source pixel areas are exact on the sphere for geographic rasters) with ``average``
   resampling, then back to people per working pixel;
2. the working pixels are labelled by polygon with ``rasterio.features.rasterize``;
3. each pixel centre is mapped to the crops that contain it arithmetically (crop columns
   ``floor((x - crop)/stride) + 1 .. floor(x/stride)``, same for rows), through runs of pixels
   that share the same crops, and sums are aggregated with ``np.bincount``.

The working grid's pixel divides the stride, so crop edges on the stride lattice fall on pixel
edges. Parts of polygons that reach beyond the crops' extent are summed on the same lattice (or,
beyond ``MAX_COARSE_PIXELS``, a coarser one), so that ``pop(p)`` is the whole polygon's
population and does not depend on which crops are asked for: blocks of crops merge exactly.

Raster nodata (and negative values) inside the raster count as 0 people: WorldPop's constrained
products mark unsettled land as nodata. Pixels outside the raster are unknown and take the
polygon's mean raster density. Polygons with no raster population at all (none of them covered,
or a zero sum) fall back to the area share, and are listed in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from riotvit.errors import RasterError

TILE = 512  # the raster is warped in tiles of TILE x TILE pixels on a global lattice
MAX_FINE_PIXELS = 40_000_000  # the working grid over the crops is coarsened beyond this
MAX_COARSE_PIXELS = 10_000_000  # grid for polygon parts beyond the crops
_EARTH_R = 6_371_007.2  # authalic radius, metres


@dataclass
class DasymetricWeights:
    """Raster-based weights for the polygons the raster informs.

    Attributes:
        poly: polygon index of each (polygon, crop) weight.
        crop: crop index of each weight.
        weight: share of the polygon's count given to the crop.
        fallback: per polygon, True when it keeps the area share (no raster population).
        partial: per polygon, True when the raster covers only part of it.
        raster_total: per polygon, raster people inside it (NaN for inactive polygons).
        resolution_m: pixel size of the working grid.
    """

    poly: np.ndarray
    crop: np.ndarray
    weight: np.ndarray
    fallback: np.ndarray
    partial: np.ndarray
    raster_total: np.ndarray
    resolution_m: float
    raster: str = ""
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    bands: int = 1

    def notes(self, ids: np.ndarray) -> list[str]:
        """Report lines: method, resolution, fallbacks and partially covered polygons."""
        out = [
            f"extensive variables are split by the population in {self.raster} "
            f"(resampled to {self.resolution_m:g} m pixels in the grid CRS); every extensive "
            "column follows the same population shares",
            "raster nodata and negative values inside the raster count as 0 people",
        ]
        if self.bands > 1:
            out.append(f"{self.raster} has {self.bands} bands; band 1 is the population")
        fb = np.flatnonzero(self.fallback & self.active)
        if len(fb):
            out.append(
                f"{len(fb)} polygon(s) have no raster population (outside the raster or a zero "
                f"sum) and keep the area share: {', '.join(ids[fb][:5])}"
            )
        part = np.flatnonzero(self.partial & self.active & ~self.fallback)
        if len(part):
            out.append(
                f"{len(part)} polygon(s) are only partly covered by the raster; their uncovered "
                f"part takes the polygon's mean raster density: {', '.join(ids[part][:5])}"
            )
        return out


@dataclass(frozen=True)
class _Lattice:
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


def _lattice(bounds: tuple[float, float, float, float], res: float) -> _Lattice:
    xmin, ymin, xmax, ymax = bounds
    return _Lattice(xmin, ymax, res, int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res)))


def dasymetric_weights(
    polys: np.ndarray,
    pair_poly: np.ndarray,
    layout,
    raster: str | Path,
    grid_crs,
    resolution_m: float | None = None,
) -> DasymetricWeights:
    """Population-share weights of every polygon that overlaps a crop.

    Args:
        polys: census polygons in the grid CRS.
        pair_poly: polygon index of every overlapping (polygon, crop) pair; its unique values
            are the polygons to weigh.
        layout: a :class:`riotvit.join.census.interpolate.CropLayout`.
        raster: people-per-pixel raster, any CRS.
        grid_crs: the crops' CRS (metric).
        resolution_m: working pixel size; default about half the raster's pixel, at most
            crop / 8, snapped so that it divides the stride.
    """
    active = np.unique(pair_poly)
    n_poly = len(polys)
    with _open(raster) as src:
        bands = src.count
        s, c = layout.stride, layout.crop
        region = (
            float(layout.cols.min() * s),
            float(layout.rows.min() * s),
            float(layout.cols.max() * s + c),
            float(layout.rows.max() * s + c),
        )
        res = _fine_resolution(src, region, s, c, resolution_m)
        pb = shapely.bounds(polys[active])
        beyond = (pb[:, 0] < region[0]) | (pb[:, 1] < region[1]) | (pb[:, 2] > region[2]) | (pb[:, 3] > region[3])
        coarse = None
        if beyond.any():
            outer = (pb[beyond, 0].min(), pb[beyond, 1].min(), pb[beyond, 2].max(), pb[beyond, 3].max())
            outer = tuple(np.minimum(outer[:2], region[:2])) + tuple(np.maximum(outer[2:], region[2:]))
            # the same pixels as the working grid when affordable: then a polygon's total does
            # not depend on which crops are asked for, and blocks of crops merge exactly
            area = (outer[2] - outer[0]) * (outer[3] - outer[1])
            m = max(1, math.ceil(math.sqrt(area / MAX_COARSE_PIXELS) / res - 1e-9))
            coarse = _lattice(snap(outer, res * m), res * m)
            region = snap(region, res * m)
        fine = _lattice(snap(region, res), res)

        sums = _Sums(len(active))
        pairs = _fine_pass(src, grid_crs, fine, polys[active], layout, sums)
        if coarse is not None:
            _coarse_pass(src, grid_crs, coarse, polys[active[beyond]], np.flatnonzero(beyond), fine, sums)

    known_area = sums.known_px_area
    mean_d = np.divide(sums.known, known_area, out=np.zeros_like(known_area), where=known_area > 0)
    total = sums.known + mean_d * sums.unknown_px_area
    ok = total > 0
    a_poly, a_crop, ksum, ucnt = pairs
    num = ksum + mean_d[a_poly] * ucnt * res * res
    use = ok[a_poly] & (num > 0)
    fallback = np.ones(n_poly, bool)
    fallback[active[ok]] = False
    partial = np.zeros(n_poly, bool)
    partial[active] = sums.unknown_px_area > 0
    raster_total = np.full(n_poly, np.nan)
    raster_total[active] = total
    act = np.zeros(n_poly, bool)
    act[active] = True
    return DasymetricWeights(
        poly=active[a_poly[use]],
        crop=a_crop[use],
        weight=num[use] / total[a_poly[use]],
        fallback=fallback,
        partial=partial,
        raster_total=raster_total,
        resolution_m=res,
        raster=Path(raster).name,
        active=act,
        bands=bands,
    )


class _Sums:
    """Per active polygon: known raster people, and areas of known and unknown pixels."""

    def __init__(self, n: int):
        self.known = np.zeros(n)
        self.known_px_area = np.zeros(n)
        self.unknown_px_area = np.zeros(n)

    def add(self, lab: np.ndarray, people: np.ndarray, px_area: float, n: int) -> None:
        known = np.isfinite(people)
        self.known += np.bincount(lab, np.where(known, people, 0.0), minlength=n)
        self.known_px_area += np.bincount(lab, known.astype(np.float64), minlength=n) * px_area
        self.unknown_px_area += np.bincount(lab, (~known).astype(np.float64), minlength=n) * px_area

    def add_runs(self, poly, known, n_known, n_unknown, px_area: float) -> None:
        """Add sums already aggregated per (polygon, run)."""
        n = len(self.known)
        self.known += np.bincount(poly, known, minlength=n)
        self.known_px_area += np.bincount(poly, n_known, minlength=n) * px_area
        self.unknown_px_area += np.bincount(poly, n_unknown, minlength=n) * px_area


def _fine_pass(src, grid_crs, lat: _Lattice, polys: np.ndarray, layout, sums: _Sums):
    """Aggregate the working grid over the crops into (polygon, crop) sums."""
    s, c = layout.stride, layout.crop
    xc = lat.x0 + (np.arange(lat.width) + 0.5) * lat.res
    yc = lat.y1 - (np.arange(lat.height) + 0.5) * lat.res
    xseg, xlo, xhi = _runs(xc, s, c)
    yseg, ylo, yhi = _runs(yc, s, c)
    nx = len(xlo)
    n = len(polys)
    bounds = shapely.bounds(polys)
    chunks = []
    for r0, h in lat.strips():
        lab, people = _strip(src, grid_crs, lat, r0, h, polys, bounds)
        if lab is None:
            continue
        flat = lab.ravel()
        m = np.flatnonzero(flat)
        li = flat[m] - 1
        pv = people.ravel()[m]
        known = np.isfinite(pv)
        ys_strip = yseg[r0 : r0 + h]
        y0 = int(ys_strip.min())
        ny = int(ys_strip.max()) - y0 + 1
        cell = ((ys_strip - y0)[:, None] * nx + xseg[None, :]).ravel()[m]
        counts = np.bincount(li, minlength=n)
        present = np.flatnonzero(counts)
        local = np.zeros(n, np.int64)
        local[present] = np.arange(len(present))
        key = local[li] * (ny * nx) + cell
        n_bins = len(present) * ny * nx
        kw = np.where(known, pv, 0.0)
        if n_bins <= 4 * len(key) + 1_000_000:  # dense bins: no sort
            cnt = np.bincount(key, minlength=n_bins)
            uk = np.flatnonzero(cnt)
            ksum = np.bincount(key, kw, minlength=n_bins)[uk]
            ucnt = np.bincount(key, ~known, minlength=n_bins)[uk]
            cnt = cnt[uk]
        else:
            uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
            ksum = np.bincount(inv, kw, minlength=len(uk))
            ucnt = np.bincount(inv, ~known, minlength=len(uk))
        xs_u = uk % nx
        ys_u = (uk // nx) % ny + y0
        p_u = present[uk // (nx * ny)]
        sums.add_runs(p_u, ksum, cnt - ucnt, ucnt, lat.res**2)
        chunks.append((p_u, ys_u, xs_u, ksum, ucnt))
    if not chunks:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), np.zeros(0)
    p_u, ys_u, xs_u, ksum, ucnt = (np.concatenate(a) for a in zip(*chunks, strict=True))
    return _runs_to_crops(p_u, ylo[ys_u], yhi[ys_u], xlo[xs_u], xhi[xs_u], ksum, ucnt, layout)


def _coarse_pass(src, grid_crs, lat: _Lattice, polys, which, fine: _Lattice, sums: _Sums) -> None:
    """Add the parts of polygons beyond the working grid (``fine``) to the polygon sums."""
    bounds = shapely.bounds(polys)
    fx0, fx1 = fine.x0, fine.x0 + fine.width * fine.res
    fy1, fy0 = fine.y1, fine.y1 - fine.height * fine.res
    xc = lat.x0 + (np.arange(lat.width) + 0.5) * lat.res
    in_x = (xc > fx0) & (xc < fx1)
    n = len(sums.known)
    for r0, h in lat.strips():
        lab, people = _strip(src, grid_crs, lat, r0, h, polys, bounds)
        if lab is None:
            continue
        yc = lat.y1 - (r0 + np.arange(h) + 0.5) * lat.res
        inside = ((yc > fy0) & (yc < fy1))[:, None] & in_x[None, :]
        lab[inside] = 0  # counted on the fine grid already
        rr, cc = np.nonzero(lab)
        sums.add(which[lab[rr, cc] - 1], people[rr, cc], lat.res**2, n)


def _runs(centres: np.ndarray, s: float, c: float):
    """Group pixel centres into runs that fall in the same crops along one axis.

    Returns:
        run index of each pixel, and each run's first and last crop index (lo > hi: none).
    """
    hi = np.floor(centres / s).astype(np.int64)
    lo = np.floor((centres - c) / s).astype(np.int64) + 1
    change = np.ones(len(centres), bool)
    change[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    run = np.cumsum(change) - 1
    return run, lo[change], hi[change]


def _runs_to_crops(poly, ylo, yhi, xlo, xhi, ksum, ucnt, layout):
    """Expand (polygon, row run, column run) sums to the crops that contain each run."""
    cols, rows = layout.cols, layout.rows
    c0, r0 = cols.min(), rows.min()
    span = int(cols.max() - c0 + 1)
    keys = (rows - r0) * span + (cols - c0)
    order = np.argsort(keys)
    skeys = keys[order]
    kx = int((xhi - xlo).max()) + 1 if len(xlo) else 0
    ky = int((yhi - ylo).max()) + 1 if len(ylo) else 0
    out_p, out_c, out_k, out_u = [], [], [], []
    for jy in range(ky):  # a few offsets (ceil(crop/stride)), not a loop over pixels
        for jx in range(kx):
            col, row = xlo + jx, ylo + jy
            ok = (col <= xhi) & (row <= yhi) & (col >= c0) & (col < c0 + span) & (row >= r0)
            k = (row[ok] - r0) * span + (col[ok] - c0)
            pos = np.minimum(np.searchsorted(skeys, k), len(skeys) - 1)
            hit = skeys[pos] == k
            idx = np.flatnonzero(ok)[hit]
            out_p.append(poly[idx])
            out_c.append(order[pos[hit]])
            out_k.append(ksum[idx])
            out_u.append(ucnt[idx])
    p, c = np.concatenate(out_p), np.concatenate(out_c)
    pk = p.astype(np.int64) * len(cols) + c
    uk, inv = np.unique(pk, return_inverse=True)
    k = np.bincount(inv, np.concatenate(out_k), minlength=len(uk))
    u = np.bincount(inv, np.concatenate(out_u), minlength=len(uk))
    return uk // len(cols), uk % len(cols), k, u


def _strip(src, grid_crs, lat: _Lattice, r0: int, h: int, polys, bounds):
    """Polygon labels (1-based, 0 = none) and people per pixel (NaN = unknown) of a strip."""
    t = lat.transform @ Affine.translation(0, r0)
    sb = (lat.x0, lat.y1 - (r0 + h) * lat.res, lat.x0 + lat.width * lat.res, lat.y1 - r0 * lat.res)
    hit = np.flatnonzero(
        (bounds[:, 0] < sb[2]) & (bounds[:, 2] > sb[0]) & (bounds[:, 1] < sb[3]) & (bounds[:, 3] > sb[1])
    )
    if not len(hit):
        return None, None
    lab = rasterize(
        zip(polys[hit], (hit + 1).tolist(), strict=True),
        out_shape=(h, lat.width),
        transform=t,
        fill=0,
        dtype="int32",
    )
    if not lab.any():
        return None, None
    return lab, _tiled_people(src, grid_crs, lat, r0, h, lab)


def _tiled_people(src, grid_crs, lat: _Lattice, r0: int, h: int, lab: np.ndarray) -> np.ndarray:
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


def _fine_resolution(src, region, s: float, c: float, resolution_m: float | None) -> float:
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


def _open(raster: str | Path):
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
