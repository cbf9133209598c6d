"""Spatial block cross-validation folds with a buffer ring, and optional past / future labels.

Crops are grouped into square blocks of ``block_m`` metres anchored on the grid CRS origin (like
the crop grid itself, so a crop's block never depends on the extent), and blocks are dealt to
``n_folds`` folds in a seeded random order. Neighbouring crops are spatially autocorrelated, so
a crop that lies within ``buffer_m`` of a crop of another fold must not be trained on when that
fold is tested: ``near_folds`` is a bitmask of those folds for each crop.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from riotvit.grid import CropGrid


def block_ids(grid: CropGrid, cols: np.ndarray, rows: np.ndarray, block_m: float) -> np.ndarray:
    """Block key of each crop, from its centre: ``bx * 2**32 + by``."""
    cx = np.asarray(cols) * grid.stride_m + grid.crop_m / 2
    cy = np.asarray(rows) * grid.stride_m + grid.crop_m / 2
    bx = np.floor(cx / block_m).astype(np.int64)
    by = np.floor(cy / block_m).astype(np.int64)
    return bx * (1 << 32) + by


def assign_folds(
    grid: CropGrid, cols: np.ndarray, rows: np.ndarray, block_m: float = 5000.0, n_folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Fold (0..n_folds-1) of each crop; whole blocks go to one fold.

    Blocks are shuffled with ``seed`` and dealt to folds so that each fold gets about the same
    number of crops (largest blocks first).
    """
    keys = block_ids(grid, cols, rows, block_m)
    uniq, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(uniq.size)
    order = order[np.argsort(-counts[order], kind="stable")]
    load = np.zeros(n_folds, dtype=np.int64)
    fold_of_block = np.zeros(uniq.size, dtype=np.int64)
    for b in order:
        f = int(np.argmin(load))
        fold_of_block[b] = f
        load[f] += counts[b]
    return fold_of_block[inv]


def near_folds(grid: CropGrid, cols: np.ndarray, rows: np.ndarray, folds: np.ndarray, buffer_m: float) -> np.ndarray:
    """Bitmask per crop of the *other* folds with a crop within ``buffer_m`` of its footprint.

    Two footprints are within the buffer when their gap along both axes is below ``buffer_m``,
    i.e. when their grid indexes differ by at most ``ceil((crop + buffer) / stride) - 1``.
    """
    cols = np.asarray(cols, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    k = max(0, math.ceil((grid.crop_m + buffer_m) / grid.stride_m - 1e-9) - 1)
    c0, r0 = cols.min() - k, rows.min() - k
    w, h = cols.max() - c0 + k + 1, rows.max() - r0 + k + 1
    fgrid = np.full((h, w), -1, dtype=np.int64)
    fgrid[rows - r0, cols - c0] = folds
    mask = np.zeros(cols.size, dtype=np.int64)
    for dc in range(-k, k + 1):
        for dr in range(-k, k + 1):
            if dc == 0 and dr == 0:
                continue
            f = fgrid[rows - r0 + dr, cols - c0 + dc]
            other = (f >= 0) & (f != folds)
            mask[other] |= np.left_shift(1, f[other])
    return mask


def default_split(folds: np.ndarray, near: np.ndarray, test_fold: int = 0, val_fold: int | None = 1) -> np.ndarray:
    """'test', 'val', 'train' or 'buffer' (a train crop next to the test or validation fold)."""
    split = np.full(folds.size, "train", dtype=object)
    blocked = (near >> test_fold) & 1
    if val_fold is not None:
        blocked |= (near >> val_fold) & 1
        split[folds == val_fold] = "val"
    split[(split == "train") & (blocked == 1)] = "buffer"
    split[folds == test_fold] = "test"
    return split


def time_split_labels(dates: pd.Series, split_date: dt.date) -> np.ndarray:
    """The ``time_split`` column: 'past' for acquisitions before ``split_date``, else 'future'.

    :func:`riotvit.train.splits.temporal_split` turns that column into a train / test split.
    """
    d = pd.to_datetime(dates).dt.date
    return np.where(d < split_date, "past", "future").astype(object)
