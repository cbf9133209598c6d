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

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

from riotvit import __version__
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
from riotvit.tile.bands import block_bands, crop_sources, cut_row
from riotvit.tile.chipstore import HEADER_BYTES, AppendArray
from riotvit.tile.meta import TILESET_FORMAT, TILESET_FORMAT_VERSION, TileSetMeta
from riotvit.tile.plan import Block, SourceSpec, TileConfig, TilePlan, plan_tiles
from riotvit.tile.prefetch import Prefetch
from riotvit.tile.reader import GridReader
from riotvit.tile.stats import BandStats

__all__ = ["TILESET_FORMAT", "TILESET_FORMAT_VERSION", "TileResult", "signature", "tile", "tileset_meta"]
_PART_COLUMNS = ["crop_id", "col", "row", "source", "date", "valid_fraction", "chip_index", "mask_index", "block"]
_PART_DTYPES = {"crop_id": object, "col": "int64", "row": "int64", "source": object, "date": object,
                "valid_fraction": "float64", "chip_index": "int64", "mask_index": "int64", "block": "int64"}


def _part_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A block part with fixed column types, so a block without crops (no rows) concatenates cleanly."""
    return df[_PART_COLUMNS].astype(_PART_DTYPES)


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
    work, done_parts = _open_work(st.out, sig)
    runner = _Runner(plan, st.cfg, work, st.rep, done_parts)
    try:
        n_blocks_done = runner.run(stop_after_blocks)
    finally:
        runner.close()
    if stop_after_blocks is not None and n_blocks_done < len(plan.blocks):
        return TileResult(work, runner.n_chips, runner.n_masks, plan.n_candidates, st.elapsed(),
                          resumed_blocks=len(done_parts), warnings=plan.warnings)
    if runner.n_chips == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RasterError(
            f"{', '.join(str(s.path) for s in plan.sources)}: no crop has at least {st.cfg.min_valid:.0%} valid pixels; "
            "check the nodata value and the raster's extent, or lower --min-valid"
        )
    _finalize(plan, st.cfg, work, runner, sig, st.out)
    publish(work, st.out)
    return TileResult(st.out, runner.n_chips, runner.n_masks, plan.n_candidates, st.elapsed(),
                      resumed_blocks=len(done_parts), warnings=plan.warnings)


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


def _open_work(out: Path, sig: str) -> tuple[Path, list[pd.DataFrame]]:
    """The work folder ``out.partial`` and the blocks already done there (resumed when the signature matches).

    The work folder is kept across interruptions so the next run resumes at the next block;
    it is renamed onto ``out`` only when complete.
    """
    work = partial_path(out)
    done_parts = _resume_state(work, sig)
    if not done_parts:
        if work.exists() and not made_by_riotvit(work):
            raise OutputExistsError(f"{work}: a folder riotvit did not make is in the way of its working folder; "
                                    "move or rename it, or choose another --out")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        (work / "parts").mkdir()
        (work / "state.json").write_text(json.dumps({"signature": sig, "version": __version__}))
    return work, done_parts


def _existing_signature(out: Path) -> str | None:
    f = out / "tileset.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text()).get("signature")
    except (OSError, json.JSONDecodeError):
        return "unreadable"


def _resume_state(work: Path, sig: str) -> list[pd.DataFrame]:
    """Completed parts of an interrupted run with the same signature (a prefix of the blocks)."""
    state = work / "state.json"
    if not state.is_file():
        return []
    try:
        if json.loads(state.read_text()).get("signature") != sig:
            return []
    except (OSError, json.JSONDecodeError):
        return []
    parts = []
    for i, p in enumerate(sorted((work / "parts").glob("block_*.parquet"))):
        if p.name != f"block_{i:06d}.parquet":
            break
        parts.append(_part_frame(pd.read_parquet(p)))
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
        if n_chips:
            self._restat(n_chips, n_masks, done)
        if cfg.write_geotiffs:
            (work / "geotiffs").mkdir(exist_ok=True)

    @property
    def n_chips(self) -> int:
        return self.chips.n

    @property
    def n_masks(self) -> int:
        return self.masks.n

    def _restat(self, n_chips: int, n_masks: int, done: list[pd.DataFrame]) -> None:
        """Rebuild the statistics from chips already on disk (resumption)."""
        g = self.plan.grid
        shape = (n_chips, len(self.plan.band_names), g.crop_px, g.crop_px)
        chips = np.memmap(self.work / "chips.npy", self.dtype, "r", HEADER_BYTES, shape)
        masks = np.memmap(self.work / "masks.npy", np.uint8, "r", HEADER_BYTES, (max(n_masks, 1), g.crop_px, g.crop_px)) if n_masks else None
        df = pd.concat(done, ignore_index=True)
        mi = df["mask_index"].to_numpy()
        keep = np.flatnonzero(in_stats_sample(df["col"].to_numpy(), df["row"].to_numpy(), self.stats_every))
        for a in range(0, keep.size, 256):
            idx = keep[a : a + 256]
            full = idx[mi[idx] < 0]
            part = idx[mi[idx] >= 0]
            if full.size:
                self.stats.update(np.asarray(chips[full]), None)
            if part.size:
                self.stats.update(np.asarray(chips[part]), np.asarray(masks[mi[part]]).astype(bool))

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
                        records.extend(self._emit_band(blk, band))
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
        part = _part_frame(pd.DataFrame.from_records(records, columns=_PART_COLUMNS))
        tmp = self.work / "parts" / f".block_{b.index:06d}.tmp"
        part.to_parquet(tmp, index=False)
        tmp.rename(self.work / "parts" / f"block_{b.index:06d}.parquet")

    def _emit_band(self, b: Block, band) -> list[tuple]:
        """Store the kept crops of every crop row of a band; return their records."""
        g, cfg = self.plan.grid, self.cfg
        group = self.plan.groups[b.group]
        date = self.plan.sources[group[0]].date.isoformat()
        recs: list[tuple] = []
        for i, row in enumerate(band.rows):
            cr = cut_row(band, i, len(b.cols), g, cfg.min_valid)
            if cr is None:
                continue
            partial = cr.fractions < 1.0
            first = self.chips.append(cr.chips)
            mask_idx = np.full(cr.keep.size, -1, dtype=np.int64)
            if partial.any():
                mfirst = self.masks.append(cr.masks[partial].astype(np.uint8))
                mask_idx[partial] = np.arange(mfirst, mfirst + int(partial.sum()))
            cols = b.cols.start + cr.keep
            sel = in_stats_sample(cols, row, self.stats_every)
            if sel.any():
                full, part = sel & ~partial, sel & partial
                if full.any():
                    self.stats.update(cr.chips[full], None)
                if part.any():
                    self.stats.update(cr.chips[part], cr.masks[part])
            srcs = [self.plan.sources[group[k]].id for k in crop_sources(band, i, cr.xs, g, len(group))]
            ids = g.crop_ids(cols, np.full(cr.keep.size, row))
            recs += list(zip(ids, cols.tolist(), [row] * cr.keep.size, srcs, [date] * cr.keep.size,
                             np.round(cr.fractions, 6).tolist(), range(first, first + cr.keep.size),
                             mask_idx.tolist(), [b.index] * cr.keep.size))
            if cfg.write_geotiffs:
                for k in range(cr.keep.size):
                    _write_crop_tif(self.work / "geotiffs" / f"{ids[k]}_{date}.tif", cr.chips[k], cr.masks[k], g,
                                    int(cols[k]), row, self.plan.band_names)
        return recs


STATS_TARGET_CHIPS = 512
READ_BUDGET_BYTES = 32 << 20  # pixels of one read band (data + mask + source index)


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


def _write_crop_tif(path: Path, chip: np.ndarray, mask: np.ndarray, grid, col: int, row: int, names) -> None:
    profile = dict(driver="GTiff", width=grid.crop_px, height=grid.crop_px, count=chip.shape[0], dtype=chip.dtype,
                   crs=grid.crs, transform=grid.crop_transform(col, row), compress="deflate")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(chip)
        dst.write_mask((mask * 255).astype(np.uint8))
        dst.descriptions = tuple(names)


def _finalize(plan: TilePlan, cfg: TileConfig, work: Path, runner: _Runner, sig: str, out: Path) -> None:
    """Merge the block parts into ``tiles.parquet``, write ``tileset.json`` and drop the resume state."""
    runner.close()
    df = _tiles_table(plan, work)
    write_json(work / "tileset.json", tileset_meta(plan, cfg, df, runner, sig, out).to_dict())
    shutil.rmtree(work / "parts")
    (work / "state.json").unlink()


def _tiles_table(plan: TilePlan, work: Path) -> pd.DataFrame:
    """Write ``tiles.parquet`` (one row per crop, with its footprint) from the block parts; return its rows."""
    parts = [_part_frame(pd.read_parquet(p)) for p in sorted((work / "parts").glob("block_*.parquet"))]
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
