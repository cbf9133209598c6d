"""Rasters mosaicked from per-crop values: ``risk.tif``, ``drivers.tif`` and ``attention.tif``.

One writer, :class:`CropMosaic`, places a block of ``cells`` pixels for every crop, averages
where crops overlap and streams the result into a COG. :class:`RiskRaster` (one value per crop,
on stride cells) and :class:`PatchRaster` (one value per ViT patch) only choose its geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.windows import Window

from riotvit.grid import CropGrid
from riotvit.publish.cog import StreamingGeoTIFFWriter
from riotvit.window import ForecastWindow

NODATA = -9999.0
RISK_BANDS = ("riot_probability", "expected_events", "uncertainty")
#: Units of the risk bands.
RISK_UNITS = ("probability", "events", "probability")


class CropMosaic:
    """Per-crop blocks of values on one raster, averaged where crops overlap, written as a COG.

    Every crop covers ``cells = (rows, cols)`` pixels of ``pixel_m`` metres starting at its
    north-west corner; crop origins are ``stride_m / pixel_m`` pixels apart (a whole number).
    Pixels that no added crop covers, or whose centre lies outside ``region``, are nodata.

    The region test is GDAL's default rasterisation rule, a pixel's *centre* inside the polygon
    (``all_touched=False``), for every raster: it neither grows the region by up to a pixel on
    every side (which ``all_touched=True`` does, by a different distance at each resolution),
    nor lets two maps of the same region disagree on which side of the border a place falls.
    ``risk.tif`` has always used it; the patch rasters used ``all_touched=True`` until they
    shared this class, so their border ring of patches whose centre lies outside the region is
    now nodata.

    Args:
        path: the output ``.tif``.
        grid: the crop grid.
        crops: the crops that may be added (``col``, ``row``): they fix the raster's extent.
        region: the region polygon in the grid CRS.
        cells: pixels per crop, ``(rows, cols)``.
        pixel_m: pixel side, metres.
        bands: one name per band.
        tags: dataset metadata of the COG.
        descriptions: band descriptions (default: ``bands``).
        units: band units (``probability``, ``events``...).
        band_tags: per-band metadata.
    """

    def __init__(self, path: Path, grid: CropGrid, crops: pd.DataFrame, region: Any, cells: tuple[int, int],
                 pixel_m: float, bands: Sequence[str], tags: dict, descriptions: Sequence[str] | None = None,
                 units: Sequence[str] | None = None, band_tags: Sequence[dict] | None = None):
        steps = grid.stride_m / pixel_m
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"stride {grid.stride_m:g} m is not a whole number of {pixel_m:g} m pixels")
        self.steps = int(round(steps))
        self.bh, self.bw = cells
        self.bands = tuple(bands)
        self.region = region
        self.c0 = int(crops["col"].min())
        self.r_max = int(crops["row"].max())
        width = (int(crops["col"].max()) - self.c0) * self.steps + self.bw
        height = (self.r_max - int(crops["row"].min())) * self.steps + self.bh
        top = self.r_max * grid.stride_m + self.bh * pixel_m
        self.transform = Affine(pixel_m, 0, self.c0 * grid.stride_m, 0, -pixel_m, top)
        self.width, self.height = width, height
        self.writer = StreamingGeoTIFFWriter(path, width, height, len(self.bands), "float32", self.transform,
                                             grid.crs, NODATA, list(descriptions or self.bands), tags=tags,
                                             band_units=units, band_tags=band_tags)

    def add(self, cols: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Accumulate the values of crops at ``cols``, ``rows``.

        Args:
            cols: crop columns, shape ``(n,)``.
            rows: crop rows, shape ``(n,)``.
            values: ``(n, bands)`` (one value per crop and band, spread over its cells),
                ``(n, rows, cols)`` (one band) or ``(n, bands, rows, cols)``.
        """
        if cols.size == 0:
            return
        values = np.asarray(values)
        if values.ndim == 2:
            values = values[:, :, None, None]
        elif values.ndim == 3:
            values = values[:, None]
        values = np.broadcast_to(values, (cols.size, len(self.bands), self.bh, self.bw))
        j = (cols - self.c0) * self.steps
        i = (self.r_max - rows) * self.steps
        j0, i0 = int(j.min()), int(i.min())
        w, h = int(j.max()) - j0 + self.bw, int(i.max()) - i0 + self.bh
        acc = np.zeros((len(self.bands), h, w))
        wt = np.zeros((h, w))
        for dy in range(self.bh):  # cell rows counted from the crop's south edge, as grid rows are
            a = self.bh - 1 - dy
            for dx in range(self.bw):
                ii, jj = i - i0 + a, j - j0 + dx
                np.add.at(wt, (ii, jj), 1.0)
                for b in range(len(self.bands)):
                    np.add.at(acc[b], (ii, jj), values[:, b, a, dx])
        t = self.transform @ Affine.translation(j0, i0)
        inside = ~geometry_mask([self.region], out_shape=(h, w), transform=t, all_touched=False)
        wt = np.where(inside, wt, 0.0)
        mean = np.divide(acc, wt, out=np.full_like(acc, NODATA), where=wt > 0).astype(np.float32)
        self.writer.accumulate(Window(j0, i0, w, h), mean, weight=wt.astype(np.float32))

    def close(self) -> Path:
        """Average, write the COG and return its path."""
        return self.writer.close()

    def abort(self) -> None:
        """Drop everything; nothing is left at the output path."""
        self.writer.abort()


class RiskRaster(CropMosaic):
    """The risk COG at stride-cell resolution: each cell is the mean over the crops covering it.

    A stride cell belongs to a crop when the cell's centre lies in the crop (``k`` cells a side).
    """

    def __init__(self, path: Path, grid: CropGrid, crops: pd.DataFrame, region: Any, tags: dict,
                 window: ForecastWindow | None = None):
        k = max(1, int(np.ceil(grid.crop_m / grid.stride_m - 0.5)))
        desc, band_tags = list(RISK_BANDS), None
        if window is not None:
            span = f"{window.start.isoformat()} → {window.end.isoformat()}"
            desc = [f"riot_probability: {window.label}", f"expected_events: expected riots, {span}",
                    f"uncertainty: spread of {window.label}"]
            band_tags = [{"name": n, "units": u, "window_start": window.start.isoformat(),
                          "window_end": window.end.isoformat()} for n, u in zip(RISK_BANDS, RISK_UNITS, strict=True)]
        super().__init__(path, grid, crops, region, (k, k), grid.stride_m, RISK_BANDS, tags, desc, RISK_UNITS, band_tags)


class PatchRaster(CropMosaic):
    """One value per ViT patch of every crop (image attribution, attention), as a one-band COG.

    Patches are ``crop_m / grid`` metres (48 m for 224 px crops and 16 px patches); the stride
    must be a whole number of patches, so that overlapping crops put their patches on the same
    cells.
    """

    def __init__(self, path: Path, grid: CropGrid, patch_grid: tuple[int, int], crops: pd.DataFrame, region: Any,
                 band: str, tags: dict):
        super().__init__(path, grid, crops, region, patch_grid, grid.crop_m / patch_grid[1], [band], tags)
