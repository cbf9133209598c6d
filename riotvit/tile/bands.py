"""Read a block of crops as horizontal bands of several crop rows, and cut crops out of them.

Shared by the tiler (which stores the crops) and the predictor (which feeds them to a model).
Consecutive bands of a block share ``crop_px - stride_px`` rows when crops overlap; those rows
are carried over instead of read again, so each source pixel is read once per block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from riotvit.grid import CropGrid
from riotvit.tile.reader import GridReader


@dataclass
class Band:
    """Pixels of consecutive crop rows of a block (``rows`` north to south)."""

    rows: list[int]
    data: np.ndarray  # (C, H, W)
    valid: np.ndarray  # (H, W) bool
    who: np.ndarray  # (H, W) index of the source that filled each pixel, -1 = none


def block_bands(
    reader: GridReader, grid: CropGrid, cols: range, rows: range, dtype: np.dtype, n_bands: int,
    budget_bytes: int = 32 << 20,
) -> Iterator[Band]:
    """Bands of a block of crops, north to south, each at most about ``budget_bytes``."""
    cp, sp = grid.crop_px, grid.stride_px
    width = (len(cols) - 1) * sp + cp
    row_bytes = width * (n_bands * np.dtype(dtype).itemsize * reader.source_factor + 3)
    per_read = max(1, min(len(rows), (max(cp, int(budget_bytes // row_bytes)) - cp) // sp + 1))
    x0 = cols.start * grid.stride_m
    carry = max(0, cp - sp)
    order = list(reversed(rows))
    prev: Band | None = None
    for k in range(0, len(order), per_read):
        band_rows = order[k : k + per_read]
        h = (len(band_rows) - 1) * sp + cp
        top = band_rows[0] * grid.stride_m + grid.crop_m
        data = np.empty((n_bands, h, width), dtype=dtype)
        valid = np.zeros((h, width), dtype=bool)
        who = np.full((h, width), -1, dtype=np.int16)
        kept = carry if (prev is not None and carry) else 0
        if kept:  # the previous band's last `carry` rows are this band's first
            data[:, :kept] = prev.data[:, -kept:]
            valid[:kept] = prev.valid[-kept:]
            who[:kept] = prev.who[-kept:]
        reader.read(x0, top - kept * grid.gsd, width, h - kept, data[:, kept:], valid[kept:], who[kept:])
        prev = Band(band_rows, data, valid, who)
        yield prev


@dataclass
class CropRow:
    """The kept crops of one crop row: column indexes (into the block), valid fractions, pixels."""

    keep: np.ndarray  # positions in the block's column range
    fractions: np.ndarray
    chips: np.ndarray  # (k, C, cp, cp), invalid pixels set to 0
    masks: np.ndarray  # (k, cp, cp) bool
    xs: np.ndarray  # pixel offsets of the crops in the band


def cut_row(band: Band, i: int, n_cols: int, grid: CropGrid, min_valid: float) -> CropRow | None:
    """Cut crop row ``i`` of a band; keep crops with a valid share >= ``min_valid`` (and > 0)."""
    cp, sp = grid.crop_px, grid.stride_px
    sl = slice(i * sp, i * sp + cp)
    data, valid = band.data[:, sl], band.valid[sl]
    x0 = np.arange(n_cols) * sp
    colsum = np.concatenate([[0], np.cumsum(np.count_nonzero(valid, axis=0))])
    fr = (colsum[x0 + cp] - colsum[x0]) / float(cp * cp)
    keep = np.flatnonzero((fr > 0) & (fr >= min_valid))
    if keep.size == 0:
        return None
    xs = x0[keep]
    chips = np.stack([data[:, :, x : x + cp] for x in xs])  # (k, C, cp, cp), one copy
    masks = np.stack([valid[:, x : x + cp] for x in xs])
    partial = fr[keep] < 1.0
    if partial.any():
        chips[~np.broadcast_to(masks[:, None], chips.shape)] = 0
    return CropRow(keep, fr[keep], chips, masks, xs)


def crop_sources(band: Band, i: int, xs: np.ndarray, grid: CropGrid, n_sources: int) -> np.ndarray:
    """Index of the source that filled most of each crop's valid pixels (for mosaics)."""
    if n_sources == 1:
        return np.zeros(xs.size, dtype=np.int64)
    cp, sp = grid.crop_px, grid.stride_px
    who = band.who[i * sp : i * sp + cp]
    w = np.stack([who[:, x : x + cp] for x in xs]).reshape(xs.size, -1)
    counts = np.stack([(w == k).sum(axis=1) for k in range(n_sources)], axis=1)
    return counts.argmax(axis=1)


def companion_band(reader: GridReader, grid: CropGrid, cols: range, band: Band) -> Band:
    """The region of ``band`` read from another group of sources (the previous image date, for
    ``model.temporal``): same rows, columns and pixels, so crops cut at the same offsets match."""
    h, width = band.valid.shape
    data = np.zeros((band.data.shape[0], h, width), dtype=band.data.dtype)
    valid = np.zeros((h, width), dtype=bool)
    who = np.full((h, width), -1, dtype=np.int16)
    top = band.rows[0] * grid.stride_m + grid.crop_m
    reader.read(cols.start * grid.stride_m, top, width, h, data, valid, who)
    return Band(band.rows, data, valid, who)


def cut_at(band: Band, i: int, xs: np.ndarray, grid: CropGrid) -> tuple[np.ndarray, np.ndarray]:
    """Crops of crop row ``i`` at pixel offsets ``xs`` whatever their valid share: (chips, masks),
    invalid pixels set to 0."""
    cp, sp = grid.crop_px, grid.stride_px
    sl = slice(i * sp, i * sp + cp)
    data, valid = band.data[:, sl], band.valid[sl]
    chips = np.stack([data[:, :, x : x + cp] for x in xs])
    masks = np.stack([valid[:, x : x + cp] for x in xs])
    chips[~np.broadcast_to(masks[:, None], chips.shape)] = 0
    return chips, masks
