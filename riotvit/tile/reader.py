"""Fill a region of the crop grid's pixel lattice from one or more source rasters.

Two paths: when a source's pixels already sit on the grid lattice (same CRS, pixel size = GSD,
origin on a pixel multiple) pixels are copied with a window read, no resampling; otherwise the
source window under the region is read once and warped with GDAL (bilinear for imagery, nearest
for categorical data). Invalid pixels (nodata, alpha, outside the raster) never contribute to
resampling and stay masked.
"""

from __future__ import annotations

import math
from contextlib import ExitStack

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from riotvit.cluster import worker_threads
from riotvit.errors import RasterError
from riotvit.grid import CropGrid
from riotvit.tile.source import RasterSource, valid_mask

GDAL_CACHE_BYTES = 64 << 20
#: Threads GDAL decodes a read's compressed tiles with outside Dask (GDAL_NUM_THREADS; the same pixels, sooner).
DECODE_THREADS = "ALL_CPUS"
_KERNEL_PAD = {"nearest": 1, "bilinear": 2, "cubic": 3, "cubic_spline": 3, "lanczos": 4, "average": 2, "mode": 2}


def cast_into(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float values into an integer dtype (identity for floats)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def _warp_scale(s: RasterSource, gsd: float) -> dict[str, float]:
    """GDAL's XSCALE/YSCALE (destination pixels per source pixel) fixed once per source.

    GDAL otherwise derives the resampling scale per processing chunk from the shape of the
    regions, so the same pixel can come out differently when the requested extent changes
    (e.g. at the raster's edge). A constant scale makes every pixel independent of the region
    asked for, which is what lets two half-regions merge into exactly the whole.
    """
    rx, ry = s.pixel_size_m()
    return {"XSCALE": rx / gsd, "YSCALE": ry / gsd}


class GridReader:
    """Reads grid-lattice regions from a group of sources (a mosaic of one date).

    Earlier sources win where sources overlap. Use as a context manager: it keeps the source
    datasets open for the whole run so each is opened once.
    """

    def __init__(self, sources: list[RasterSource], grid: CropGrid, dtype: str, resampling: str = "bilinear"):
        self.sources = sources
        self.grid = grid
        self.dtype = np.dtype(dtype)
        self.resampling = resampling
        self.dst_crs = CRS.from_epsg(grid.epsg)
        self._stack = ExitStack()
        self._ds: list = []
        self._grid_bounds: list[tuple[float, float, float, float]] = []
        self._aligned: list[bool] = []
        self._scale: list[dict[str, float]] = []

    def __enter__(self) -> GridReader:
        # each source pixel is read once per block, so GDAL's block cache (default 5% of RAM,
        # which grows with the raster) only needs to hold about one read band; a band spans many
        # compressed tiles, which GDAL decodes on every core (1.8x faster reads on 2 cores); a Dask
        # worker decodes with its own threads, so workers sharing a machine do not oversubscribe it
        threads = worker_threads()
        self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES,
                                               GDAL_NUM_THREADS=str(threads) if threads else DECODE_THREADS))
        for s in self.sources:
            ds = self._stack.enter_context(rasterio.open(s.path))
            self._ds.append(ds)
            same_crs = s.epsg == self.grid.epsg or CRS.from_wkt(s.crs_wkt) == self.dst_crs
            self._aligned.append(bool(same_crs and self.grid.is_aligned(s.transform)))
            self._scale.append(_warp_scale(s, self.grid.gsd))
            if same_crs:
                self._grid_bounds.append(s.bounds)
            else:
                self._grid_bounds.append(
                    transform_bounds(CRS.from_wkt(s.crs_wkt), self.dst_crs, *s.bounds, densify_pts=21)
                )
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    @property
    def source_factor(self) -> float:
        """Bytes read and warped per destination byte, at most (for sizing read bands).

        When the grid is coarser than a source (downsampling), a destination row pulls in many
        source rows, and GDAL's warp works on float copies of them.
        """
        f = 1.0
        for k, s in enumerate(self.sources):
            if self._aligned[k]:
                continue
            px = min(s.pixel_size_m())
            f = max(f, 3.0 * max(1.0, self.grid.gsd / px) ** 2)
        return f

    @property
    def aligned(self) -> list[bool]:
        return list(self._aligned)

    def grid_bounds(self) -> list[tuple[float, float, float, float]]:
        return list(self._grid_bounds)

    def read(
        self, x0: float, y1: float, width: int, height: int, out: np.ndarray, mask: np.ndarray,
        who: np.ndarray | None = None,
    ) -> None:
        """Fill ``out`` (C, height, width) and ``mask`` (height, width) for the region whose
        top-left corner is ``(x0, y1)`` in the grid CRS. ``mask`` must come in all False.
        ``who``, if given, receives the index of the source that filled each pixel."""
        g = self.grid.gsd
        bounds = (x0, y1 - height * g, x0 + width * g, y1)
        for k, s in enumerate(self.sources):
            b = self._grid_bounds[k]
            if b[0] >= bounds[2] or b[2] <= bounds[0] or b[1] >= bounds[3] or b[3] <= bounds[1]:
                continue
            before = mask.copy() if who is not None else None
            try:
                if self._aligned[k]:
                    self._read_aligned(k, x0, y1, width, height, out, mask)
                else:
                    self._read_warped(k, bounds, width, height, out, mask)
            except RasterioIOError as e:
                msg = str(e).split("\n")[0]
                raise RasterError(f"{s.path}: read failed ({msg}); the file may be corrupt or truncated") from None
            if who is not None:
                who[mask & ~before] = k
            if mask.all():
                return

    def _read_aligned(self, k, x0, y1, width, height, out, mask) -> None:
        s, ds = self.sources[k], self._ds[k]
        g = self.grid.gsd
        col = int(round((x0 - s.transform.c) / g))
        row = int(round((s.transform.f - y1) / g))
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, s.width), min(row + height, s.height)
        if c1 <= c0 or r1 <= r0:
            return
        win = Window(c0, r0, c1 - c0, r1 - r0)
        data = ds.read(list(s.band_indexes), window=win)
        m = valid_mask(ds, s, data, win)
        data = s.scaled(data)
        oy, ox = r0 - row, c0 - col
        sl = (slice(oy, oy + (r1 - r0)), slice(ox, ox + (c1 - c0)))
        if not mask[sl].any():
            out[(slice(None), *sl)] = data if data.dtype == out.dtype else cast_into(data, out.dtype)
            mask[sl] = m
            return
        take = m & ~mask[sl]
        region = out[(slice(None), *sl)]
        region[:, take] = cast_into(data[:, take], out.dtype)
        mask[sl] |= take

    def _read_warped(self, k, bounds, width, height, out, mask) -> None:
        s, ds = self.sources[k], self._ds[k]
        src_crs = CRS.from_wkt(s.crs_wkt)
        sb = transform_bounds(self.dst_crs, src_crs, *bounds, densify_pts=21)
        inv = ~s.transform
        cols, rows = zip(*(inv @ (x, y) for x in (sb[0], sb[2]) for y in (sb[1], sb[3])))
        # when downsampling, GDAL widens the kernel by 1/scale: pad the source window to match,
        # or pixels near a read edge would depend on where the read was cut
        sc = min(self._scale[k]["XSCALE"], self._scale[k]["YSCALE"], 1.0)
        pad = int(math.ceil(_KERNEL_PAD.get(self.resampling, 2) / sc)) + 1
        c0 = max(int(math.floor(min(cols))) - pad, 0)
        r0 = max(int(math.floor(min(rows))) - pad, 0)
        c1 = min(int(math.ceil(max(cols))) + pad, s.width)
        r1 = min(int(math.ceil(max(rows))) + pad, s.height)
        if c1 <= c0 or r1 <= r0:
            return
        win = Window(c0, r0, c1 - c0, r1 - r0)
        data = ds.read(list(s.band_indexes), window=win)
        res = "nearest" if s.categorical else self.resampling
        dst_t = Affine(self.grid.gsd, 0, bounds[0], 0, -self.grid.gsd, bounds[3])
        if s.mask_kind == "all_valid" and data.dtype.kind in "iu" and s.scale is None:
            # every source pixel is valid: warp the integers directly, GDAL's alpha marks coverage
            c = data.shape[0]
            dst = np.zeros((c + 1, height, width), dtype=data.dtype)
            reproject(source=data, destination=dst, src_transform=ds.window_transform(win), src_crs=src_crs,
                      dst_transform=dst_t, dst_crs=self.dst_crs, dst_alpha=c + 1, resampling=Resampling[res],
                      num_threads=2, **self._scale[k])
            got = dst[c] > 0
            vals = dst[:c] if dst.dtype == out.dtype else cast_into(dst[:c], out.dtype)
            take = got & ~mask
            if take.all():
                out[:] = vals
            elif take.any():
                np.copyto(out, vals, where=take)
            mask |= take
            return
        m = valid_mask(ds, s, data, win)
        src = s.scaled(data).astype(np.float32, copy=False)
        src[:, ~m] = np.nan
        dst = np.full((len(s.band_indexes), height, width), np.nan, dtype=np.float32)
        reproject(
            source=src,
            destination=dst,
            src_transform=ds.window_transform(win),
            src_crs=src_crs,
            src_nodata=np.nan,
            dst_transform=dst_t,
            dst_crs=self.dst_crs,
            dst_nodata=np.nan,
            resampling=Resampling[res],
            init_dest_nodata=True,
            num_threads=2,
            **self._scale[k],
        )
        got = ~np.isnan(dst).any(axis=0)
        take = got & ~mask
        if take.all():
            out[:] = cast_into(dst, out.dtype)
        elif take.any():
            dst[:, ~take] = 0  # NaN or already filled: discarded below, zeroed so the cast is clean
            np.copyto(out, cast_into(dst, out.dtype), where=take)
        mask |= take
