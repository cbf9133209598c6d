"""One block's crops: cut from read bands, stored, recorded, sampled for the band statistics.

Shared by the single-process tiler (which appends every block to one chip store) and the Dask
tiler (where each worker writes its block to a shard that is stitched in block order), so both
cut, keep and record crops with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from riotvit.tile.bands import Band, crop_sources, cut_row
from riotvit.tile.chipstore import AppendArray
from riotvit.tile.plan import Block, TileConfig, TilePlan
from riotvit.tile.stats import BandStats

PART_COLUMNS = ["crop_id", "col", "row", "source", "date", "valid_fraction", "chip_index", "mask_index", "block"]
_PART_DTYPES = {"crop_id": object, "col": "int64", "row": "int64", "source": object, "date": object,
                "valid_fraction": "float64", "chip_index": "int64", "mask_index": "int64", "block": "int64"}
STATS_TARGET_CHIPS = 512


def part_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A block part with fixed column types, so a block without crops (no rows) concatenates cleanly."""
    return df[PART_COLUMNS].astype(_PART_DTYPES)


def stats_stride(n_candidates: int) -> int:
    """Keep about ``STATS_TARGET_CHIPS`` crops in the statistics sample (all of a small set)."""
    return max(1, n_candidates // STATS_TARGET_CHIPS)


def in_stats_sample(cols: np.ndarray, rows: np.ndarray | int, every: int) -> np.ndarray:
    """Deterministic, position-based sample of crops for the band statistics.

    A crop is in the sample when ``(col + 7919 * row) % every == 0``; with ``every == 1`` every
    crop is. Being a function of the crop's place, the sample is the same on a resumed run.
    """
    cols = np.asarray(cols, dtype=np.int64)
    return ((cols + 7919 * np.asarray(rows, dtype=np.int64)) % every) == 0


@dataclass
class BlockSink:
    """Where a block's crops go: a chip store and a mask store, and (in one process) the statistics."""

    chips: AppendArray
    masks: AppendArray
    stats: BandStats | None = None
    stats_every: int = 1
    geotiffs: Path | None = None


def emit_band(plan: TilePlan, cfg: TileConfig, b: Block, band: Band, sink: BlockSink) -> list[tuple]:
    """Store the kept crops of every crop row of a band; return their records (``PART_COLUMNS``).

    Chip and mask indexes are positions in the sink's stores.
    """
    g = plan.grid
    group = plan.groups[b.group]
    date = plan.sources[group[0]].date.isoformat()
    recs: list[tuple] = []
    for i, row in enumerate(band.rows):
        cr = cut_row(band, i, len(b.cols), g, cfg.min_valid)
        if cr is None:
            continue
        partial = cr.fractions < 1.0
        first = sink.chips.append(cr.chips)
        mask_idx = np.full(cr.keep.size, -1, dtype=np.int64)
        if partial.any():
            mfirst = sink.masks.append(cr.masks[partial].astype(np.uint8))
            mask_idx[partial] = np.arange(mfirst, mfirst + int(partial.sum()))
        cols = b.cols.start + cr.keep
        if sink.stats is not None:
            update_stats(sink.stats, cr.chips, cr.masks, partial, in_stats_sample(cols, row, sink.stats_every))
        srcs = [plan.sources[group[k]].id for k in crop_sources(band, i, cr.xs, g, len(group))]
        ids = g.crop_ids(cols, np.full(cr.keep.size, row))
        recs += list(zip(ids, cols.tolist(), [row] * cr.keep.size, srcs, [date] * cr.keep.size,
                         np.round(cr.fractions, 6).tolist(), range(first, first + cr.keep.size),
                         mask_idx.tolist(), [b.index] * cr.keep.size))
        if sink.geotiffs is not None:
            for k in range(cr.keep.size):
                write_crop_tif(sink.geotiffs / f"{ids[k]}_{date}.tif", cr.chips[k], cr.masks[k], g,
                               int(cols[k]), row, plan.band_names)
    return recs


def update_stats(stats: BandStats, chips: np.ndarray, masks: np.ndarray | None, partial: np.ndarray,
                 sel: np.ndarray) -> None:
    """Add one crop row's sampled crops to the statistics: fully valid ones, then partly masked ones.

    The order of these calls fixes the float statistics to the last bit, so every path (one
    process, a resumed run, Dask shards) adds a crop row's crops exactly this way.
    """
    if not sel.any():
        return
    full, part = sel & ~partial, sel & partial
    if full.any():
        stats.update(chips[full], None)
    if part.any():
        stats.update(chips[part], masks[part])


def replay_stats(stats: BandStats, parts: list[pd.DataFrame], chips: np.ndarray, masks: np.ndarray | None,
                 every: int) -> None:
    """Rebuild the statistics from stored crops, crop row by crop row in the order they were cut.

    Gives the same statistics, to the last bit, as adding them while tiling (:func:`emit_band`).
    """
    for df in parts:
        if df.empty:
            continue
        rows = df["row"].to_numpy()
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        ends = np.r_[starts[1:], rows.size]
        ci, mi, cols = df["chip_index"].to_numpy(), df["mask_index"].to_numpy(), df["col"].to_numpy()
        for a, z in zip(starts, ends):
            sel = in_stats_sample(cols[a:z], rows[a], every)
            if not sel.any():
                continue
            k = np.flatnonzero(sel)
            partial = mi[a:z][k] >= 0
            c = np.asarray(chips[ci[a:z][k]])
            m = None
            if partial.any():
                m = np.zeros((k.size, *c.shape[2:]), dtype=bool)
                m[partial] = np.asarray(masks[mi[a:z][k][partial]]).astype(bool)
            update_stats(stats, c, m, partial, np.ones(k.size, dtype=bool))


def write_crop_tif(path: Path, chip: np.ndarray, mask: np.ndarray, grid, col: int, row: int, names) -> None:
    """One crop as a small georeferenced GeoTIFF with its valid mask (``--write-geotiffs``)."""
    profile = dict(driver="GTiff", width=grid.crop_px, height=grid.crop_px, count=chip.shape[0], dtype=chip.dtype,
                   crs=grid.crs, transform=grid.crop_transform(col, row), compress="deflate")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(chip)
        dst.write_mask((mask * 255).astype(np.uint8))
        dst.descriptions = tuple(names)
