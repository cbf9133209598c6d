"""One unit of a prediction: read a group of blocks, run the model batch by batch, return what the maps need.

A prediction runs in one process or on Dask workers, and both run the same code: the crops of a
**group** (consecutive blocks of ``block_crops`` x ``block_crops`` crops until a batch is full) are cut from the imagery, batched by ``batch_size`` (a batch never
spans two groups), scored by :class:`~riotvit.predict.runner.ModelRunner` and turned into
:class:`BatchOutput`: the crops' attribute rows, their ``risk.tif`` values and the partial sums
of the value-range check. One process merges the outputs in group order
(:mod:`riotvit.predict.predictor`), so a run on any number of workers writes the pixels and
cells of a single-process run, exactly.

On Dask, :func:`predict_group` is the task: the worker opens the rasters itself, from the paths
in a small :class:`BlockContext` sent to it once, and keeps the loaded model between tasks
(:func:`riotvit.cluster.worker_cache`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from riotvit.cluster import worker_cache, worker_threads
from riotvit.device import choose_device
from riotvit.errors import BundleError
from riotvit.grid import CropGrid
from riotvit.io import file_sha256
from riotvit.join.features import MetaScaler
from riotvit.predict.checks import VALUE_CHECK_CROPS, value_sums
from riotvit.predict.plan import PredictConfig
from riotvit.predict.runner import ModelRunner
from riotvit.predict.temporal import with_previous
from riotvit.publish.layers import cell_rows, cell_share
from riotvit.tile.bands import Band, block_bands, companion_band, cut_row
from riotvit.tile.reader import GridReader
from riotvit.train.bundle import WEIGHTS, Bundle

Block = tuple[range, range, np.ndarray]
"""A block of the plan (:meth:`~riotvit.predict.plan.PredictPlan.blocks`): its columns, its rows, its crops' indexes."""


@dataclass(frozen=True)
class BlockContext:
    """Everything a group's task needs besides its blocks: small, picklable, sent once to each worker.

    Args:
        grid: the crop grid.
        sources: the imagery (the mosaic of the prediction date).
        previous: the mosaic of the date before, for a model that compares two dates (else empty).
        crops: the plan's crops (``col``, ``row``, ``crop_id``); batch indexes point into it.
        bundle: the model bundle folder.
        weights_sha: SHA-256 of its weights, as the coordinator read them.
        cfg: the prediction options (device, precision, tta, batch size, min_valid).
        meta: scaled metadata per crop of the plan (None when the model takes none).
        baseline: raw metadata per crop, for an ensemble's history + census baseline (None otherwise).
        dtype: the pixel type chips are read in.
        run: a token of this run (a worker's cached model is given this run's baseline once).
    """

    grid: CropGrid
    sources: tuple
    previous: tuple
    crops: pd.DataFrame
    bundle: Path
    weights_sha: str
    cfg: PredictConfig
    meta: np.ndarray | None
    baseline: pd.DataFrame | None
    dtype: str
    run: str

    @property
    def n_bands(self) -> int:
        return len(self.sources[0].band_names)

    @cached_property
    def index(self) -> pd.Series:
        """Crop (col, row) -> position in the plan."""
        return pd.Series(np.arange(len(self.crops)),
                         index=pd.MultiIndex.from_arrays([self.crops["col"], self.crops["row"]]))


def read_dtype(sources: Iterable, previous: Iterable) -> str:
    """The pixel type to read chips in: the files' own when all agree and none is scaled, else float32
    (scaled reflectance is float whatever the file stores; uint16 would truncate it to 0)."""
    srcs = [*sources, *previous]
    same = len({s.dtype for s in srcs}) == 1 and all(s.scale is None for s in srcs)
    return str(np.dtype(srcs[0].dtype) if same else np.dtype("float32"))


def block_groups(blocks: list[Block], batch_size: int, across: bool) -> list[list[Block]]:
    """The units of work: consecutive blocks holding a batch (``across``, what predict uses), or one block each."""
    if not across:
        return [[b] for b in blocks]
    groups: list[list[Block]] = [[]]
    n = 0
    for b in blocks:
        if n >= batch_size:
            groups.append([])
            n = 0
        groups[-1].append(b)
        n += b[2].size
    return [g for g in groups if g]


def group_crops(group: list[Block]) -> int:
    """Crops of the plan in a group (what the progress bar advances by)."""
    return int(sum(b[2].size for b in group))


@contextmanager
def open_readers(ctx: BlockContext) -> Iterator[tuple[GridReader, GridReader | None]]:
    """The imagery's reader, and the previous date's (None for a one-date model), open for a run of reads."""
    with ExitStack() as stack:
        reader = stack.enter_context(GridReader(list(ctx.sources), ctx.grid, ctx.dtype, "bilinear"))
        before = stack.enter_context(GridReader(list(ctx.previous), ctx.grid, ctx.dtype, "bilinear")) if ctx.previous else None
        yield reader, before


def read_bands(ctx: BlockContext, reader: GridReader, before: GridReader | None,
               group: list[Block]) -> Iterator[tuple[range, Band, Band | None]]:
    """A group's bands of crop rows, block by block, north to south (with the previous date's pixels)."""
    for cols, rows, _members in group:
        for band in block_bands(reader, ctx.grid, cols, rows, np.dtype(ctx.dtype), ctx.n_bands):
            yield cols, band, companion_band(before, ctx.grid, cols, band) if before is not None else None


@dataclass
class Batch:
    """Crops cut from the imagery, ready for the model."""

    idx: np.ndarray  # positions in the plan
    chips: np.ndarray  # (n, C, H, W), or (n, 2C, H, W) with the previous date
    masks: np.ndarray  # (n, H, W), or (n, 2, H, W)
    fractions: np.ndarray  # valid share of each crop


def batches(ctx: BlockContext, bands: Iterable[tuple[range, Band, Band | None]]) -> Iterator[Batch]:
    """Cut a group's crops (those of the plan with enough valid pixels) and batch them: a batch is
    handed on once it holds ``batch_size`` crops, and the rest at the group's end."""
    g, cfg = ctx.grid, ctx.cfg
    pending: list[tuple] = []
    for cols, band, prev_band in bands:
        for i, row in enumerate(band.rows):
            cr = cut_row(band, i, len(cols), g, cfg.min_valid)
            if cr is None:
                continue
            chips, masks = cr.chips, cr.masks
            if prev_band is not None:
                chips, masks = with_previous(cr, prev_band, i, g, cfg.min_valid)
            cc = cols.start + cr.keep
            pos = ctx.index.reindex(pd.MultiIndex.from_arrays([cc, np.full(cc.size, row)])).to_numpy()
            ok = ~np.isnan(pos)
            if ok.any():
                pending.append((pos[ok].astype(np.int64), chips[ok], masks[ok], cr.fractions[ok]))
                if sum(p[0].size for p in pending) >= cfg.batch_size:
                    yield _joined(pending)
                    pending = []
    if pending:
        yield _joined(pending)


def _joined(pending: list[tuple]) -> Batch:
    return Batch(*(np.concatenate([p[k] for p in pending]) for k in range(4)))


@dataclass
class BatchOutput:
    """What the coordinator merges from one batch, in order: cells, ``risk.tif`` values, the value check."""

    idx: np.ndarray
    pred: dict[str, np.ndarray]
    rows: pd.DataFrame  # the crops' attribute rows (cell_rows)
    cols: np.ndarray  # crop columns and rows, for risk.tif
    grid_rows: np.ndarray
    values: np.ndarray  # (n, 3): probability, expected riots per stride cell, uncertainty
    check: tuple[np.ndarray, float, int] | None  # value-range partial sums; None once the group saw enough crops


def run_batch(ctx: BlockContext, runner, batch: Batch, check: bool) -> BatchOutput:
    """Score a batch and shape it for the maps."""
    idx = batch.idx
    n_bands = ctx.n_bands
    part = value_sums(batch.chips[:, :n_bands], batch.masks[:, 0] if batch.masks.ndim == 4 else batch.masks) if check else None
    pred = runner.predict(batch.chips, batch.masks, None if ctx.meta is None else ctx.meta[idx], idx)
    crops = ctx.crops.iloc[idx].assign(valid_fraction=batch.fractions)
    # expected riots per stride cell: a crop's count spread over the cells it covers (overlapping
    # crops average onto a cell, so a sum over cells counts each riot once)
    vals = np.stack([pred["riot_probability"],
                     pred.get("expected_events", np.full(idx.size, np.nan)) * cell_share(ctx.grid),
                     pred["uncertainty"]], axis=1)
    return BatchOutput(idx, pred, cell_rows(crops, pred), crops["col"].to_numpy(), crops["row"].to_numpy(), vals, part)


def group_outputs(ctx: BlockContext, runner, bands: Iterable[tuple[range, Band, Band | None]],
                  still_checking: Callable[[], bool] | None = None) -> Iterator[tuple[Batch, BatchOutput]]:
    """Every batch of a group with its output (the one loop both the single process and a Dask worker run).

    ``still_checking``: whether the coordinator's value-range check still takes batches (in one
    process; a Dask worker cannot know, and sums its group's first crops).
    """
    seen = 0
    for batch in batches(ctx, bands):
        # the check looks at the run's first crops: past VALUE_CHECK_CROPS in this group, the
        # coordinator has enough whatever came before, and once it has enough, nothing more is summed
        check = seen < VALUE_CHECK_CROPS and (still_checking is None or still_checking())
        yield batch, run_batch(ctx, runner, batch, check=check)
        seen += batch.idx.size


@dataclass
class GroupOutput:
    """A group's batches, in order."""

    batches: list[BatchOutput]


def predict_group(group: list[Block], ctx: BlockContext) -> GroupOutput:
    """The Dask task: read a group's crops on this worker, score them with the worker's model, return the outputs.

    Idempotent (it writes nothing), so Dask may rerun it on another worker when one dies.
    """
    runner = worker_runner(ctx)  # a RiotvitError travels alone, without its GDAL cause (riotvit.cluster)
    with open_readers(ctx) as (reader, before):
        outs = [out for _b, out in group_outputs(ctx, runner, read_bands(ctx, reader, before, group))]
    return GroupOutput(outs)


def worker_device(device: str, precision: str) -> str:
    """The device a worker's model would run on (``cpu`` or ``cuda``), to decide how work is grouped."""
    return choose_device(device, precision, "off", option="--device").device


def worker_runner(ctx: BlockContext):
    """This worker's model for the context's bundle, loaded once per worker process and kept between tasks.

    Raises:
        BundleError: the bundle's weights changed since the coordinator read them.
    """
    import torch

    cache = worker_cache()
    cfg = ctx.cfg
    key = ("predict", str(ctx.bundle), ctx.weights_sha, cfg.device, cfg.precision, cfg.tta, cfg.batch_size)
    held = cache.get("predict_runner")
    if held is None or held[0] != key:
        if "threads" not in cache:
            torch.set_num_threads(cache.setdefault("threads", worker_threads() or 1))
        cache.pop("predict_runner", None)  # one model per worker: free the last run's first
        if file_sha256(Path(ctx.bundle) / WEIGHTS) != ctx.weights_sha:
            raise BundleError(f"{ctx.bundle}: the model's weights changed while predicting (or differ on this worker); "
                              "rerun when the bundle is complete, with the same bundle on every worker")
        dc = choose_device(cfg.device, cfg.precision, "off", option="--device")
        held = [key, ModelRunner(Bundle.open(ctx.bundle), dc.device, cfg.tta, cfg.batch_size, dc.bf16), None]
        cache["predict_runner"] = held
    if held[2] != ctx.run:  # this run's baseline (an ensemble's history + census odds per crop of the plan)
        if ctx.baseline is not None:
            held[1].set_baseline(ctx.baseline)
        held[2] = ctx.run
    return held[1]


def scaled_metadata(bundle_meta, features: pd.DataFrame) -> np.ndarray | None:
    """The plan's metadata scaled with the bundle's scaler, as the model takes it (None if it takes none)."""
    scaler = MetaScaler.from_dict(bundle_meta.features.model_dump())
    return scaler.transform(features) if scaler.names else None
