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

Reading the raster onto the working lattice (step 1) lives in :mod:`riotvit.join.census.people`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize

from riotvit.join.census.people import (
    Lattice,
    fine_resolution,
    lattice,
    open_population,
    snap,
    tiled_people,
)

MAX_COARSE_PIXELS = 10_000_000  # grid for polygon parts beyond the crops


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
    with open_population(raster) as src:
        bands = src.count
        s, c = layout.stride, layout.crop
        region = (
            float(layout.cols.min() * s),
            float(layout.rows.min() * s),
            float(layout.cols.max() * s + c),
            float(layout.rows.max() * s + c),
        )
        res = fine_resolution(src, region, s, c, resolution_m)
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
            coarse = lattice(snap(outer, res * m), res * m)
            region = snap(region, res * m)
        fine = lattice(snap(region, res), res)

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


def _fine_pass(src, grid_crs, lat: Lattice, polys: np.ndarray, layout, sums: _Sums):
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


def _coarse_pass(src, grid_crs, lat: Lattice, polys, which, fine: Lattice, sums: _Sums) -> None:
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


def _strip(src, grid_crs, lat: Lattice, r0: int, h: int, polys, bounds):
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
    return lab, tiled_people(src, grid_crs, lat, r0, h, lab)


