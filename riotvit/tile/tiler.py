"""``riotvit tile``: cut rasters into metre-true crops on the stable grid.

The plan's blocks are processed one at a time, north to south. Inside a block the crop rows
are read as a rolling band: with overlap, the part of the previous crop row that the next one
shares is kept, so every source pixel is read and resampled once per block. Memory is bounded
by one block, whatever the raster size. After each block its chips are flushed and a part file
records it, so an interrupted run resumes at the next block and yields the same tile set.

Size: the block runner, its journal and resumption belong together; splitting them would spread
the resume invariants (part files, chip counts, statistics) over modules.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riotvit import __version__
from riotvit.cluster import ClusterConfig, dask_client
from riotvit.errors import OutputExistsError, RasterError
from riotvit.io import (
    file_sha256,
    json_sha256,
    made_by_riotvit,
    partial_path,
    publish,
    relative_to_artifact,
    write_json,
)
from riotvit.progress import Reporter
from riotvit.stage import start_stage
from riotvit.tile.bands import block_bands
from riotvit.tile.blockwork import (
    PART_COLUMNS,
    BlockSink,
    emit_band,
    part_frame,
    replay_stats,
    stats_stride,
)
from riotvit.tile.chipstore import HEADER_BYTES, AppendArray
from riotvit.tile.fanout import done_shards, run_on_dask
from riotvit.tile.meta import TILESET_FORMAT, TILESET_FORMAT_VERSION, TileSetMeta
from riotvit.tile.plan import Block, SourceSpec, TileConfig, TilePlan, plan_tiles
from riotvit.tile.prefetch import Prefetch
from riotvit.tile.reader import GridReader
from riotvit.tile.stats import BandStats

__all__ = ["TILESET_FORMAT", "TILESET_FORMAT_VERSION", "TileResult", "signature", "tile", "tileset_meta"]
@dataclass
class TileResult:
    """What a tiling run produced."""

    path: Path
    n_crops: int
    n_masked: int
    n_candidates: int
    seconds: float
    resumed_blocks: int = 0
    up_to_date: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def crops_per_s(self) -> float:
        return self.n_crops / self.seconds if self.seconds > 0 else float("nan")


def signature(plan: TilePlan, cfg: TileConfig) -> str:
    """Content hash of everything that determines a tile set's contents."""
    payload = {
        "format": TILESET_FORMAT_VERSION,
        "grid": plan.grid.to_dict(),
        "sources": [
            {k: v for k, v in s.to_dict().items() if k != "path"} | {"file": s.path.name} for s in plan.sources
        ],
        # dates/sensor/scale/offset act through the sources (their dates, band names, scale): left out here
        "config": cfg.model_dump(mode="json", exclude={"checksum", "dates", "sensor", "scale", "offset"}
                                 | ({"block_crops"} if all_on_lattice(plan) else set())),
    }
    return json_sha256(payload, 16)


def all_on_lattice(plan: TilePlan) -> bool:
    """True when every source's pixels sit on the grid lattice, so crops are copied, not warped.

    Copied pixels never depend on the block a crop is read in. Warped pixels can: GDAL's warper
    works on the window it is asked for, so ``block_crops`` changes a few resampled values at
    block seams. It is therefore part of the signature of a tile set that needs warping: a
    rerun with another ``--block-crops`` re-tiles instead of resuming with mixed blocks.
    """
    return all(s.epsg == plan.grid.epsg and plan.grid.is_aligned(s.transform) for s in plan.sources)


def tile(
    rasters: list[SourceSpec] | list[str | Path],
    out: str | Path,
    config: TileConfig | None = None,
    *,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    stop_after_blocks: int | None = None,
    cluster: ClusterConfig | Any | None = None,
) -> TileResult:
    """Tile rasters into a tile set folder (see docs/formats.md, "Tile set").

    Args:
        rasters: source specs or plain paths.
        out: the tile set folder to create.
        config: tiling options.
        overwrite: replace an existing, different tile set at ``out``.
        reporter: progress sink.
        stop_after_blocks: stop (as if interrupted) after this many blocks; used by tests of
            resumption.
        cluster: where the blocks run: None or ``ClusterConfig()`` for this process, a
            :class:`~riotvit.cluster.ClusterConfig` with ``workers`` or ``scheduler`` for Dask,
            or a ``distributed.Client`` of the caller's. The tile set is the same bytes either way.

    Raises:
        RiotvitError subclasses for every bad input; nothing is left at ``out`` on failure.
    """
    st = start_stage(config, TileConfig, out, reporter)
    specs = [r if isinstance(r, SourceSpec) else SourceSpec(Path(r)) for r in rasters]
    plan = plan_tiles(specs, st.cfg)
    for w in plan.warnings:
        st.rep.log(f"warning: {w}")
    sig = signature(plan, st.cfg)
    if _up_to_date(st.out, sig, overwrite):
        info = TileSetMeta.read_json(st.out / "tileset.json")
        return TileResult(st.out, info.n_crops, info.chips.n_masked, plan.n_candidates, 0.0, up_to_date=True)
    on_dask = cluster is not None and (not isinstance(cluster, ClusterConfig) or cluster.enabled)
    if on_dask:
        with dask_client(cluster) as client:  # connected before the work folder is made: no scheduler, nothing written
            work, done = _open_work(st.out, sig, "shards")
            runner = run_on_dask(client, plan, st.cfg, work, st.rep, done, READ_BUDGET_BYTES, stop_after_blocks)
        if runner is None:  # stopped early, as if interrupted
            return TileResult(work, 0, 0, plan.n_candidates, st.elapsed(), resumed_blocks=len(done), warnings=plan.warnings)
    else:
        work, done = _open_work(st.out, sig, "append")
        runner = _Runner(plan, st.cfg, work, st.rep, list(done.values()))
        try:
            n_blocks_done = runner.run(stop_after_blocks)
        finally:
            runner.close()
        if stop_after_blocks is not None and n_blocks_done < len(plan.blocks):
            return TileResult(work, runner.n_chips, runner.n_masks, plan.n_candidates, st.elapsed(),
                              resumed_blocks=len(done), warnings=plan.warnings)
    if runner.n_chips == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RasterError(
            f"{', '.join(str(s.path) for s in plan.sources)}: no crop has at least {st.cfg.min_valid:.0%} valid pixels; "
            "check the nodata value and the raster's extent, or lower --min-valid"
        )
    _finalize(plan, st.cfg, work, runner, sig, st.out)
    publish(work, st.out)
    return TileResult(st.out, runner.n_chips, runner.n_masks, plan.n_candidates, st.elapsed(),
                      resumed_blocks=len(done), warnings=plan.warnings)


def _up_to_date(out: Path, sig: str, overwrite: bool) -> bool:
    """True when ``out`` already holds this very tile set; raise when it holds something else.

    Raises:
        OutputExistsError: ``out`` holds a different tile set or other files, and ``overwrite`` is False.
    """
    existing = _existing_signature(out)
    if existing is not None and existing == sig and not overwrite:
        return True
    if out.exists() and not overwrite and (existing is not None or any(out.iterdir())):
        what = "a different tile set" if existing is not None else "other files"
        raise OutputExistsError(f"{out}: folder already holds {what}; pass --overwrite to replace it or choose another --out")
    return False


def _open_work(out: Path, sig: str, journal: str) -> tuple[Path, dict[int, pd.DataFrame]]:
    """The work folder ``out.partial`` and the blocks already done there (resumed when the signature matches).

    The work folder is kept across interruptions so the next run resumes where it stopped; it
    is renamed onto ``out`` only when complete. ``journal`` is how blocks are recorded:
    ``append`` (one process: one growing chip store, blocks done in order) or ``shards`` (Dask:
    a chip store per block, done in any order). A run resumes only a work folder of its own kind.
    """
    work = partial_path(out)
    done = _resume_state(work, sig, journal)
    if not done:
        if work.exists() and not made_by_riotvit(work):
            raise OutputExistsError(f"{work}: a folder riotvit did not make is in the way of its working folder; "
                                    "move or rename it, or choose another --out")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        (work / "parts").mkdir()
        (work / "state.json").write_text(json.dumps({"signature": sig, "version": __version__, "journal": journal}))
    return work, done


def _existing_signature(out: Path) -> str | None:
    f = out / "tileset.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text()).get("signature")
    except (OSError, json.JSONDecodeError):
        return "unreadable"


def _resume_state(work: Path, sig: str, journal: str) -> dict[int, pd.DataFrame]:
    """Completed blocks of an interrupted run with the same signature and journal: index -> rows.

    An ``append`` journal resumes after its prefix of complete blocks; a ``shards`` journal
    keeps every block whose part was written.
    """
    state = work / "state.json"
    if not state.is_file():
        return {}
    try:
        st = json.loads(state.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if st.get("signature") != sig or st.get("journal", "append") != journal:
        return {}
    if journal == "shards":
        return done_shards(work)
    parts = {}
    for i, p in enumerate(sorted((work / "parts").glob("block_*.parquet"))):
        if p.name != f"block_{i:06d}.parquet":
            break
        parts[i] = part_frame(pd.read_parquet(p))
    return parts


class _Runner:
    """Executes a plan block by block into a work folder."""

    def __init__(self, plan: TilePlan, cfg: TileConfig, work: Path, rep: Reporter, done: list[pd.DataFrame]):
        self.plan, self.cfg, self.work, self.rep = plan, cfg, work, rep
        g = plan.grid
        self.dtype = np.dtype(plan.dtype)
        c = len(plan.band_names)
        self.done = done
        n_chips = int(sum(len(p) for p in done))
        n_masks = int(sum((p["mask_index"] >= 0).sum() for p in done))
        self.chips = AppendArray(work / "chips.npy", self.dtype, (c, g.crop_px, g.crop_px), resume_items=n_chips)
        self.masks = AppendArray(work / "masks.npy", np.uint8, (g.crop_px, g.crop_px), resume_items=n_masks)
        self.stats = BandStats(list(plan.band_names), self.dtype)
        self.stats_every = stats_stride(plan.n_candidates)
        if n_chips:  # resumption: the statistics of the blocks already on disk, added as they were cut
            replay_stats(self.stats, done, stored(work / "chips.npy", self.dtype, (n_chips, c, g.crop_px, g.crop_px)),
                         stored(work / "masks.npy", np.uint8, (n_masks, g.crop_px, g.crop_px)), self.stats_every)
        if cfg.write_geotiffs:
            (work / "geotiffs").mkdir(exist_ok=True)
        self.sink = BlockSink(self.chips, self.masks, self.stats, self.stats_every,
                              work / "geotiffs" if cfg.write_geotiffs else None)

    @property
    def n_chips(self) -> int:
        return self.chips.n

    @property
    def n_masks(self) -> int:
        return self.masks.n

    def close(self) -> None:
        self.chips.close()
        self.masks.close()

    def run(self, stop_after: int | None) -> int:
        """Process the remaining blocks; reading runs ahead in a background thread.

        GDAL decodes and warps without holding the GIL, so while this thread cuts and writes
        the crops of one band the reader thread is already decoding the next.
        """
        plan = self.plan
        self.rep.start(plan.n_candidates, "tiling", unit="crops")
        skip = len(self.done)
        self.rep.advance(sum(b.n_candidates for b in plan.blocks[:skip]))
        todo = plan.blocks[skip:]
        if stop_after is not None:
            todo = todo[:stop_after]
        done = skip
        try:
            with Prefetch(lambda: self._produce(todo)) as items:
                records: list[tuple] = []
                for blk, band in items:
                    if band is not None:
                        records.extend(emit_band(plan, self.cfg, blk, band, self.sink))
                        continue
                    self._journal(blk, records)  # the block is complete
                    records = []
                    done = blk.index + 1
                    self.rep.advance(blk.n_candidates)
        finally:
            self.rep.stop()
        return done

    def _produce(self, blocks: list[Block]):
        """Reader thread: every band of every block, then (block, None) when a block is done."""
        plan = self.plan
        reader: GridReader | None = None
        group_open = None
        try:
            for b in blocks:
                if b.group != group_open:
                    if reader is not None:
                        reader.__exit__(None, None, None)
                    reader = GridReader([plan.sources[i] for i in plan.groups[b.group]], plan.grid, plan.dtype,
                                        self.cfg.resampling).__enter__()
                    group_open = b.group
                for band in block_bands(reader, plan.grid, b.cols, b.rows, self.dtype, len(plan.band_names),
                                        READ_BUDGET_BYTES):
                    yield b, band
                yield b, None
        finally:
            if reader is not None:
                reader.__exit__(None, None, None)

    def _journal(self, b: Block, records: list[tuple]) -> None:
        """Flush the block's chips, then record it: a rerun resumes after the last journalled block."""
        self.chips.flush()
        self.masks.flush()
        part = part_frame(pd.DataFrame.from_records(records, columns=PART_COLUMNS))
        tmp = self.work / "parts" / f".block_{b.index:06d}.tmp"
        part.to_parquet(tmp, index=False)
        tmp.rename(self.work / "parts" / f"block_{b.index:06d}.parquet")


READ_BUDGET_BYTES = 32 << 20  # pixels of one read band (data + mask + source index)


def stored(path: Path, dtype, shape: tuple[int, ...]) -> np.ndarray | None:
    """The first ``shape[0]`` items of an append store being written (its header may not say so yet)."""
    if shape[0] == 0:
        return None
    return np.memmap(path, dtype, "r", HEADER_BYTES, shape)


def _finalize(plan: TilePlan, cfg: TileConfig, work: Path, runner: _Runner, sig: str, out: Path) -> None:
    """Merge the block parts into ``tiles.parquet``, write ``tileset.json`` and drop the resume state."""
    runner.close()
    df = _tiles_table(plan, work, getattr(runner, "parts", None))
    write_json(work / "tileset.json", tileset_meta(plan, cfg, df, runner, sig, out).to_dict())
    shutil.rmtree(work / "parts")
    (work / "state.json").unlink()


def _tiles_table(plan: TilePlan, work: Path, parts: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Write ``tiles.parquet`` (one row per crop, with its footprint) from the block parts; return its rows."""
    if parts is None:
        parts = [part_frame(pd.read_parquet(p)) for p in sorted((work / "parts").glob("block_*.parquet"))]
    df = pd.concat(parts, ignore_index=True)
    g = plan.grid
    fp = g.footprints(df["col"].to_numpy(), df["row"].to_numpy())
    df["date"] = pd.to_datetime(df["date"]).dt.date
    gdf = gpd.GeoDataFrame(df.drop(columns=["block"]), geometry=shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3]), crs=g.crs)
    gdf.to_parquet(work / "tiles.parquet", index=False)
    return gdf


def tileset_meta(plan: TilePlan, cfg: TileConfig, tiles: gpd.GeoDataFrame, runner: _Runner, sig: str,
                 out: Path) -> TileSetMeta:
    """``tileset.json`` of a finished tiling run (source paths relative to the tile set folder ``out``)."""
    g = plan.grid
    x0, y0, x1, y1 = tiles.total_bounds
    per_source = tiles.groupby("source").size().to_dict()
    return TileSetMeta.build(
        signature=sig,
        grid=g.to_dict(),
        bands=list(plan.band_names),
        band_info=[r.to_dict() for r in plan.sources[0].resolved] or None,
        dtype=plan.dtype,
        fill_value=0,
        n_crops=int(len(tiles)),
        chip_shape=[len(plan.band_names), g.crop_px, g.crop_px],
        chips={"path": "chips.npy", "masks": "masks.npy", "n_masked": int(runner.n_masks),
               "sha256": file_sha256(runner.work / "chips.npy"), "masks_sha256": file_sha256(runner.work / "masks.npy")},
        tiles="tiles.parquet",
        extent=[float(x0), float(y0), float(x1), float(y1)],
        dates=sorted({d.isoformat() for d in tiles["date"]}),
        stats=runner.stats.result(),
        stats_sample={"rule": "(col + 7919 * row) % every == 0", "every": runner.stats_every},
        sources=[s.to_dict() | {"path": relative_to_artifact(s.path, out), "n_crops": int(per_source.get(s.id, 0))}
                 for s in plan.sources],
        config=cfg.model_dump(mode="json"),
        warnings=plan.warnings,
    )
