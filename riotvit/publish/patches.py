"""Rasters at ViT-patch resolution (image attribution, attention), mosaicked over the region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.windows import Window

from riotvit.grid import CropGrid
from riotvit.publish.cog import StreamingGeoTIFFWriter

NODATA = -9999.0


class PatchRaster:
    """One value per ViT patch of every crop, averaged where crops overlap, as a COG.

    Patches are ``crop_m / grid`` metres (48 m for 224 px crops and 16 px patches); when the
    stride is a whole number of patches, overlapping crops put their patches on the same cells.
    """

    def __init__(self, path: Path, grid: CropGrid, patch_grid: tuple[int, int], crops: pd.DataFrame, region, band: str,
                 tags: dict):
        gh, gw = patch_grid
        self.p = grid.crop_m / gw
        steps = grid.stride_m / self.p
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"stride {grid.stride_m:g} m is not a whole number of {self.p:g} m patches")
        self.steps = int(round(steps))
        self.gh, self.gw = gh, gw
        self.grid, self.region = grid, region
        self.c0 = int(crops["col"].min())
        self.r_top = int(crops["row"].max())
        w = (int(crops["col"].max()) - self.c0) * self.steps + gw
        h = (self.r_top - int(crops["row"].min())) * self.steps + gh
        top = self.r_top * grid.stride_m + grid.crop_m
        self.transform = Affine(self.p, 0, self.c0 * grid.stride_m, 0, -self.p, top)
        self.writer = StreamingGeoTIFFWriter(path, w, h, 1, "float32", self.transform, grid.crs, NODATA, [band], tags=tags)

    def add(self, cols: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Accumulate (n, gh, gw) patch values of crops at ``cols``, ``rows``."""
        if cols.size == 0:
            return
        j = (cols - self.c0) * self.steps
        i = (self.r_top - rows) * self.steps
        j0, i0 = int(j.min()), int(i.min())
        w, h = int(j.max()) - j0 + self.gw, int(i.max()) - i0 + self.gh
        acc = np.zeros((h, w))
        wt = np.zeros((h, w))
        for k in range(cols.size):
            a, b = int(i[k] - i0), int(j[k] - j0)
            acc[a : a + self.gh, b : b + self.gw] += values[k]
            wt[a : a + self.gh, b : b + self.gw] += 1.0
        t = self.transform @ Affine.translation(j0, i0)
        inside = ~geometry_mask([self.region], out_shape=(h, w), transform=t, all_touched=True)
        wt = np.where(inside, wt, 0.0)
        mean = np.divide(acc, wt, out=np.full_like(acc, NODATA), where=wt > 0).astype(np.float32)
        self.writer.accumulate(Window(j0, i0, w, h), mean[None], weight=wt.astype(np.float32)[None])

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
