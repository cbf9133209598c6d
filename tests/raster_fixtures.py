"""Small rasters made by code for tiling tests (seeded, a few hundred KB at most)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def write_raster(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    crs: str | None = "EPSG:32637",
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    tags: dict | None = None,
    alpha: np.ndarray | None = None,
    tiled: bool = True,
) -> Path:
    """Write a (C, H, W) array as a GeoTIFF; ``alpha`` adds an alpha band."""
    c, h, w = data.shape
    count = c + (1 if alpha is not None else 0)
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype, transform=transform,
                   nodata=nodata, compress="deflate")
    if crs is not None:
        profile["crs"] = crs
    if tiled and w >= 256 and h >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if alpha is not None:
        profile["photometric"] = "RGB" if c == 3 else None
        profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, indexes=list(range(1, c + 1)))
        if alpha is not None:
            dst.write(alpha.astype(data.dtype), c + 1)
            from rasterio.enums import ColorInterp

            ci = [ColorInterp.red, ColorInterp.green, ColorInterp.blue][:c] if c == 3 else [ColorInterp.gray] * c
            dst.colorinterp = [*ci, ColorInterp.alpha]
        if descriptions:
            for i, d in enumerate(descriptions, 1):
                dst.set_band_description(i, d)
        dst.update_tags(**(tags or {"ACQUISITION_DATE": "2023-02-16"}))
    return path


def random_image(shape: tuple[int, int, int], seed: int = 0, dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = 255 if np.dtype(dtype) == np.uint8 else 4000
    return rng.integers(1, hi, size=shape).astype(dtype)


def aligned_transform(col0: int, row_top: int, gsd: float = 3.0, stride_m: float = 672.0) -> Affine:
    """Top-left corner on the crop grid: x = col0 * stride, y = row_top * stride."""
    return Affine(gsd, 0, col0 * stride_m, 0, -gsd, row_top * stride_m)
