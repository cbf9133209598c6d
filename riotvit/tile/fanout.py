"""Tile on Dask: every block is cut by a worker into a shard of its own, then stitched in block order.

Workers open the rasters themselves from the plan's paths and write their block's crops to
``parts/block_NNNNNN.chips.npy`` and ``.masks.npy`` (chip indexes counted from 0 in the block),
then its rows to ``parts/block_NNNNNN.parquet``, the part written last, by an atomic rename.
A block whose part exists is done: a rerun (or Dask, after a worker died) redoes only the
others, and redoing a block rewrites the same bytes. When every block is done, this process
concatenates the shards in block order into ``chips.npy``/``masks.npy``, offsets the indexes and
replays the band statistics crop row by crop row, so the tile set is byte for byte the one a
single process writes.

Why shards and a stitch rather than Zarr or writes at precomputed offsets: how many crops a
block keeps is only known once its pixels are read (``min_valid``), so offsets cannot be
precomputed without reading everything twice; and a chunked, compressed store would slow the
random reads training does (one memory-mapped ``.npy`` serves them with no decoding). The
stitch is one sequential copy; ``bench/bench_scale.py`` measures its share of the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riotvit.cluster import ordered_map
from riotvit.progress import Reporter
from riotvit.tile.bands import block_bands
from riotvit.tile.blockwork import (
    PART_COLUMNS,
    BlockSink,
    emit_band,
    part_frame,
    replay_stats,
    stats_stride,
)
from riotvit.tile.chipstore import AppendArray, open_array
from riotvit.tile.plan import Block, TileConfig, TilePlan
from riotvit.tile.reader import GridReader
from riotvit.tile.stats import BandStats


def part_path(work: Path, index: int, what: str = "parquet") -> Path:
    """A block's part (``parquet``) or shard (``chips.npy``, ``masks.npy``) in the work folder."""
    return work / "parts" / f"block_{index:06d}.{what}"


def done_shards(work: Path) -> dict[int, pd.DataFrame]:
    """The blocks a previous (or killed) run finished: index -> rows (chip indexes local to the block)."""
    out = {}
    for p in sorted((work / "parts").glob("block_*.parquet")):
        i = int(p.name[6:12])
        if part_path(work, i, "chips.npy").is_file() and part_path(work, i, "masks.npy").is_file():
            out[i] = part_frame(pd.read_parquet(p))
    return out


def tile_block(block: Block, plan: TilePlan, cfg: TileConfig, work: str, read_budget: int) -> tuple[int, int]:
    """Worker task: cut one block into its shard and part; returns (crops kept, masks stored).

    Idempotent: every file is written under a name of this attempt's own and renamed into place,
    the part last, so a block killed half-way leaves nothing that counts as done.
    """
    w = Path(work)
    g, dtype = plan.grid, np.dtype(plan.dtype)
    tag = f".{os.getpid()}-{os.urandom(3).hex()}.tmp"
    tmp = {k: part_path(w, block.index, k + tag) for k in ("chips.npy", "masks.npy")}
    chips = AppendArray(tmp["chips.npy"], dtype, (len(plan.band_names), g.crop_px, g.crop_px))
    masks = AppendArray(tmp["masks.npy"], np.uint8, (g.crop_px, g.crop_px))
    sink = BlockSink(chips, masks, None, 1, w / "geotiffs" if cfg.write_geotiffs else None)
    records: list[tuple] = []
    try:
        with GridReader([plan.sources[i] for i in plan.groups[block.group]], g, plan.dtype, cfg.resampling) as reader:
            for band in block_bands(reader, g, block.cols, block.rows, dtype, len(plan.band_names), read_budget):
                records += emit_band(plan, cfg, block, band, sink)
        chips.close()
        masks.close()
        for k, p in tmp.items():
            p.replace(part_path(w, block.index, k))
        part = part_frame(pd.DataFrame.from_records(records, columns=PART_COLUMNS))
        ptmp = part_path(w, block.index, "parquet" + tag)
        part.to_parquet(ptmp, index=False)
        ptmp.replace(part_path(w, block.index))
    finally:
        chips.close()
        masks.close()
        for p in tmp.values():
            p.unlink(missing_ok=True)
    return chips.n, masks.n


@dataclass
class Stitched:
    """The finished chip store of a Dask run, shaped like the single-process runner for ``tileset.json``."""

    work: Path
    n_chips: int
    n_masks: int
    stats: BandStats
    stats_every: int
    parts: list[pd.DataFrame]

    def close(self) -> None:
        pass


def run_on_dask(client, plan: TilePlan, cfg: TileConfig, work: Path, rep: Reporter, done: dict[int, pd.DataFrame],
                read_budget: int, stop_after: int | None = None) -> Stitched | None:
    """Cut the blocks not yet done on the cluster, then stitch; None when stopped early (``stop_after``)."""
    todo = [b for b in plan.blocks if b.index not in done]
    if cfg.write_geotiffs:
        (work / "geotiffs").mkdir(exist_ok=True)
    if stop_after is not None:
        todo = todo[:stop_after]
    rep.start(plan.n_candidates, "tiling", unit="crops")
    rep.advance(sum(b.n_candidates for b in plan.blocks if b.index in done))
    try:
        for i, _ in ordered_map(client, tile_block, todo, plan, cfg, str(work), read_budget, name="riotvit-tile"):
            rep.advance(todo[i].n_candidates)
    finally:
        rep.stop()
    if len(done) + len(todo) < len(plan.blocks):
        return None
    return stitch(plan, work)


def stitch(plan: TilePlan, work: Path) -> Stitched:
    """Concatenate the shards in block order into the tile set's chip and mask stores; rebuild the statistics."""
    g, dtype, c = plan.grid, np.dtype(plan.dtype), len(plan.band_names)
    chips = AppendArray(work / "chips.npy", dtype, (c, g.crop_px, g.crop_px))
    masks = AppendArray(work / "masks.npy", np.uint8, (g.crop_px, g.crop_px))
    parts: list[pd.DataFrame] = []
    try:
        for b in plan.blocks:
            df = part_frame(pd.read_parquet(part_path(work, b.index)))
            c0, m0 = chips.n, masks.n
            for store, shard in ((chips, part_path(work, b.index, "chips.npy")), (masks, part_path(work, b.index, "masks.npy"))):
                store.append_store(shard, int(np.load(shard, mmap_mode="r").shape[0]))
            df["chip_index"] += c0
            df.loc[df["mask_index"] >= 0, "mask_index"] += m0
            parts.append(df)
    finally:
        chips.close()
        masks.close()
    stats = BandStats(list(plan.band_names), dtype)
    every = stats_stride(plan.n_candidates)
    replay_stats(stats, parts, open_array(work / "chips.npy"), open_array(work / "masks.npy") if masks.n else None, every)
    return Stitched(work, chips.n, masks.n, stats, every, parts)
