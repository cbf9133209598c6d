"""``riotvit predict``: apply a model bundle to a region and write maps that open in QGIS.

The region is tiled on the model's grid on the fly (no tile set on disk): blocks of crops
anchored on the grid are read band by band, crops inside the region are batched through the
model (with test-time augmentation) block by block (:mod:`riotvit.predict.blocks`), and the
results stream into ``cells.gpkg``/``cells.geojson`` and an on-disk accumulator for
``risk.tif``. Memory is bounded by a band and a batch, not by the region.

The blocks run in this process (the next blocks read in a background thread) or on Dask
workers (``cluster``); either way one process merges their outputs in block order and writes
the single COG, so the maps are the same to the last bit.

Size: the stage function, its metadata and the run record (``run.json``) read the same plan and
bundle; the block work itself lives in :mod:`riotvit.predict.blocks`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer

from riotvit import __version__
from riotvit.cluster import ClusterConfig, dask_client, n_workers, ordered_map
from riotvit.device import choose_device
from riotvit.errors import ClusterError, InputError, RegionError
from riotvit.io import atomic_dir, file_sha256, relative_to_artifact, resolve_recorded
from riotvit.join.events.acled import read_acled
from riotvit.join.events.labels import build_history
from riotvit.join.stage import JoinConfig, census_features, project_events
from riotvit.predict.blocks import (
    BatchOutput,
    Block,
    BlockContext,
    block_groups,
    group_crops,
    group_outputs,
    open_readers,
    predict_group,
    read_bands,
    read_dtype,
    scaled_metadata,
    worker_device,
)
from riotvit.predict.checks import ValueRangeCheck, dtype_warnings
from riotvit.predict.meta import PredictionMeta
from riotvit.predict.plan import PredictConfig, PredictPlan, catalog_imagery, plan_prediction
from riotvit.predict.region import Region
from riotvit.predict.runner import ModelRunner
from riotvit.predict.temporal import previous_sources
from riotvit.predict.writer import BackgroundWriter
from riotvit.progress import Reporter
from riotvit.publish.admin import read_admin
from riotvit.publish.layers import CellLayer, CropsWriter, write_cells
from riotvit.publish.mosaic import RISK_BANDS, RISK_UNITS, RiskRaster
from riotvit.publish.prediction import admin_summary_layer, write_handout, write_prediction_project
from riotvit.stage import start_stage
from riotvit.tile.plan import SourceSpec
from riotvit.tile.prefetch import Prefetch
from riotvit.train.bundle import WEIGHTS, Bundle
from riotvit.train.meta import BundleMeta
from riotvit.window import ForecastWindow, forecast_window


@dataclass
class PredictResult:
    """What a prediction wrote and how fast."""

    path: Path
    n_candidates: int
    n_predicted: int
    area_km2: float
    seconds: float
    crops_per_s: float
    km2_per_s: float
    device: str
    stream_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    window: dict = field(default_factory=dict)
    n_cells: int = 0
    ran_on: str = "one process"

    @property
    def stream_crops_per_s(self) -> float:
        """Throughput of reading, inference and writing alone (without start-up and metadata)."""
        return self.n_predicted / self.stream_seconds if self.stream_seconds else float("nan")


def metadata_features(plan: PredictPlan, bundle_meta: BundleMeta, mode: str, acled: Path | None, census: Path | None,
                      population_raster: Path | None, bundle_dir: Path = Path(".")) -> tuple[pd.DataFrame, dict, list[str]]:
    """The model's metadata for the plan's crops, as of the plan's date (raw, before scaling).

    Inputs not given default to those recorded in the bundle (paths relative to ``bundle_dir``).
    """

    names = list(bundle_meta.features.names)
    crops = plan.crops.assign(date=pd.Timestamp(plan.date))
    if not names or mode == "none":
        return pd.DataFrame(np.nan, index=crops.index, columns=names, dtype="float32"), {"mode": "none"}, (
            ["metadata treated as missing (--metadata none): the model relies on the image and its missing-indicators"]
            if names else [])
    prov = bundle_meta.provenance.join
    jcfg = JoinConfig.model_validate(prov.config)
    out = pd.DataFrame(index=crops.index)
    info: dict = {"mode": "auto"}
    warnings: list[str] = []
    if any(n.startswith("hist_") for n in names):
        trained_with = resolve_recorded(prov.acled.path, bundle_dir)
        path = acled or trained_with
        if not path.exists():
            raise InputError(f"{path}: the ACLED export the model was trained with is not here; pass --acled FILE "
                             "(an export covering the history windows before the date) or --metadata none")
        ev, rep = read_acled(path, jcfg.acled)
        ev = project_events(ev, plan.grid.epsg)
        r = max(jcfg.radii_m) + max(jcfg.acled.geo_precision_radius_m.values(), default=0.0)
        b = plan.region_grid.bounds
        ev = ev[ev["x"].between(b[0] - r, b[2] + r) & ev["y"].between(b[1] - r, b[3] + r)]
        emin = ev["event_date"].min() if len(ev) else None
        h0 = pd.Timestamp(plan.date) - pd.Timedelta(days=max(jcfg.history_days))
        if emin is None or emin > h0:
            warnings.append(f"{path.name}: no events before {h0:%Y-%m-%d} near the region; history features may undercount")
        out = out.join(build_history(crops, ev, plan.grid, jcfg.label_spec()))
        sha = file_sha256(path)
        if sha != prov.acled.sha256:
            warnings.append(f"{path}: not the ACLED export the model was trained with ({trained_with}, SHA-256 "
                            f"{prov.acled.sha256[:12]}…, this file {sha[:12]}…); history features come from this file")
        info["acled"] = {"path": str(path), "sha256": sha, "events_near_region": int(len(ev))}
    if any(n.startswith("census_") for n in names):
        cpath = census or (resolve_recorded(prov.census.path, bundle_dir) if prov.census else None)
        if cpath is None or not cpath.exists():
            raise InputError(f"{cpath}: the census layer the model was trained with is not here; pass --census FILE or --metadata none")
        pop = population_raster or (resolve_recorded(prov.census.population_raster, bundle_dir)
                                    if prov.census and prov.census.population_raster else None)
        import geopandas as gpd
        import shapely

        fp = plan.grid.footprints(crops["col"].to_numpy(), crops["row"].to_numpy())
        cg = gpd.GeoDataFrame(crops[["crop_id", "col", "row"]], geometry=shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3]),
                              crs=plan.grid.crs)
        cf, _, cmeta, cw = census_features(crops, cg, plan.grid, cpath, jcfg, pop if pop and pop.exists() else None)
        out = out.join(cf)
        info["census"] = cmeta
        warnings += cw
    missing = [n for n in names if n not in out.columns]
    for n in missing:
        out[n] = np.nan
    if missing:
        warnings.append(f"{len(missing)} metadata features could not be computed and are treated as missing: {', '.join(missing[:4])}")
    return out[names], info, warnings


def predict(
    model: str | Path,
    region: Region,
    out: str | Path,
    config: PredictConfig | None = None,
    *,
    imagery: list[SourceSpec] | None = None,
    bands: list[str] | None = None,
    acled: Path | None = None,
    census: Path | None = None,
    population_raster: Path | None = None,
    catalog: Path | None = None,
    overwrite: bool = False,
    yes: bool = False,
    reporter: Reporter | None = None,
    explain: object | None = None,
    admin: Path | None = None,
    admin_id: str | None = None,
    previous_imagery: list[SourceSpec] | None = None,
    cluster: ClusterConfig | Any | None = None,
) -> PredictResult:
    """Predict riot risk over a region and write the prediction folder (see docs/formats.md).

    ``admin`` (a vector file of wards, districts or P-codes, id column ``admin_id``) adds the
    summary per unit. ``previous_imagery``, the same area at the image date before, is what a
    model trained with ``model.temporal`` compares against (required by such a model).
    ``cluster`` (a :class:`~riotvit.cluster.ClusterConfig` or a ``distributed.Client``) runs the
    region's blocks on Dask workers; the maps are the single-process run's, exactly.

    Raises:
        RegionError: region outside the imagery, or larger than ``max_cells`` without ``yes``.
        RasterError: imagery bands differ from the model's.
        BundleError: incompatible or incomplete bundle.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
        ClusterError: ``explain`` with a Dask ``cluster``, or no Dask scheduler answers.
    """

    on_dask = cluster is not None and (not isinstance(cluster, ClusterConfig) or cluster.enabled)
    if explain is not None and on_dask:
        raise ClusterError("--explain runs in one process (explanations accumulate over the whole region); drop "
                           "--workers/--scheduler to explain, or predict on Dask without --explain")
    st = start_stage(config, PredictConfig, out, reporter, overwrite=overwrite, what="prediction folder")
    cfg = st.cfg
    bundle = Bundle.open(model)
    specs = imagery if imagery else catalog_imagery(region, bundle.meta.bands, catalog)
    plan = plan_prediction(specs, region, bundle.meta, cfg, bands)
    previous = previous_sources(plan, bundle, previous_imagery, bands)  # checked before any pixel is read
    if admin is not None:
        read_admin(admin, admin_id)  # a wrong file or id column fails now, not after the whole region
    if plan.n_crops == 0:
        raise RegionError(f"region {region.name} ({region.bounds_text()}) holds no crop of the grid; is it smaller than a cell?")
    if plan.n_crops > cfg.max_cells and not yes:
        raise RegionError(f"region {region.name}: {plan.n_crops:,} crops exceed --max-cells {cfg.max_cells:,}; "
                          "pass --yes to predict it anyway, or choose a smaller region")
    # the model loads before anything slower, so a bad bundle fails first; on Dask the workers load
    # their own, and this one (on the CPU) only checks it
    dc = choose_device(cfg.device, cfg.precision, "off", option="--device") if not on_dask else None
    runner = ModelRunner(bundle, dc.device if dc else "cpu", cfg.tta, cfg.batch_size, dc.bf16 if dc else False)
    if on_dask:
        runner = None
    feats, meta_info, warnings = metadata_features(plan, bundle.meta, cfg.metadata, acled, census, population_raster,
                                                   bundle.path)
    warnings += dtype_warnings([s.dtype for s in plan.sources], bundle.meta.dtype)
    norm = bundle.meta.normalisation
    values = ValueRangeCheck(norm.bands, norm.mean, norm.std)
    window = forecast_window(bundle.meta, plan.date)
    ctx = BlockContext(plan.grid, tuple(plan.sources), tuple(previous or ()), plan.crops[["col", "row", "crop_id"]],
                       bundle.path, file_sha256(bundle.path / WEIGHTS), cfg, scaled_metadata(bundle.meta, feats),
                       feats if bundle.members() else None, read_dtype(plan.sources, previous or ()), os.urandom(8).hex())
    with ExitStack() as on_cluster:
        client = on_cluster.enter_context(dask_client(cluster))
        if client is None:
            runner.set_baseline(feats)
            devices = {dc.device}
        else:
            devices = set(client.run(worker_device, cfg.device, cfg.precision).values())
        # batches filled from consecutive blocks, in one process and on Dask alike (small edge blocks would
        # otherwise make small batches: the demo's predict + explain ran 10% slower with a batch per block)
        groups = block_groups(plan.blocks(cfg.block_crops), cfg.batch_size, across=True)
        with atomic_dir(st.out, overwrite=True) as work:
            if explain is not None:
                explain.begin(plan, work, runner, feats)
            ts = time.perf_counter()
            n_pred = _stream(plan, ctx, groups, runner, client, work, st.rep, bundle, explain, values, window)
            warnings += values.warnings()
            stream_s = time.perf_counter() - ts
            where = ran_on(cluster, client)
            on_cluster.close()  # the workers are done: free them before the maps are published
            if explain is not None:
                explain.finish()
            if n_pred == 0:
                raise RegionError(f"region {region.name}: no crop had at least {cfg.min_valid:.0%} valid imagery; "
                                  "check the imagery's nodata or lower --min-valid")
            cells = write_cells(work, work / CROPS_TMP, plan.grid, window, _stamp(plan))

            def record() -> None:  # run.json lists the folder's files: written first (the summaries read it), then again
                prediction_meta(plan, bundle, region, cfg, n_pred, meta_info, warnings, work,
                                explain.summary() if explain is not None else None, out=st.out, window=window,
                                cells=cells, previous=previous).write(work / "run.json")

            record()
            extra = list(explain.layers(work)) if explain is not None else []
            if admin is not None:
                extra.append(admin_summary_layer(work, admin, admin_id, population_raster, window))
            write_prediction_project(work, st.out, plan.sources, bundle.meta.normalisation, plan.grid.crs,
                                     plan.region_grid.bounds, window, cells,
                                     f"riotvit: {window.label}, {region_label(plan)}", _stamp(plan), extra)
            write_handout(work, admin)
            record()
    dt = st.elapsed()
    area = n_pred * plan.grid.stride_m**2 / 1e6
    return PredictResult(st.out, plan.n_crops, n_pred, area, dt, n_pred / dt, area / dt, "+".join(sorted(devices)),
                         stream_s, warnings, window.to_dict(), cells.n_cells, where)




#: The per-crop layer while it streams (turned into cells.gpkg's layers by write_cells, then removed).
CROPS_TMP = "crops.partial.gpkg"


def ran_on(cluster: ClusterConfig | Any | None, client) -> str:
    """Where the blocks ran, in words (the CLI's summary line)."""
    if client is None:
        return "one process"
    if isinstance(cluster, ClusterConfig):
        return cluster.describe()
    return f"Dask cluster at {client.scheduler.address}, {n_workers(client)} workers"


def _stamp(plan: PredictPlan) -> str:
    return f"{plan.date.isoformat()}T00:00:00.000Z"


def region_label(plan: PredictPlan) -> str:
    """The region by name: the imagery's ids when the region is the imagery's footprint."""
    name = plan.region.name
    if name == "imagery":
        return "footprint of " + ", ".join(dict.fromkeys(s.id for s in plan.sources))
    return name


def raster_tags(plan: PredictPlan, bundle: Bundle, window: ForecastWindow, weights_sha: str) -> dict[str, str]:
    """The dataset tags of ``risk.tif``: the window, the model (bundle name, weights hash, signature), the region."""
    return {"riotvit_version": __version__, "model": f"{bundle.path.name} (sha256 {weights_sha[:12]})",
            "model_sha256": weights_sha, "model_signature": bundle.meta.signature or "",
            "date": plan.date.isoformat(), "region": region_label(plan), "bands": ",".join(RISK_BANDS),
            "units": ",".join(RISK_UNITS), **window.tags()}


def _stream(plan: PredictPlan, ctx: BlockContext, groups: list[list[Block]], runner: ModelRunner | None, client,
            work: Path, rep: Reporter, bundle: Bundle, explain, values: ValueRangeCheck, window: ForecastWindow) -> int:
    """Predict every group, here or on Dask, and merge the outputs in group order; returns the crops predicted.

    The merge is the same either way, so a distributed run writes the single-process run's pixels
    and cells. Here, the next groups are read in a background thread while the model runs, and
    the outputs are merged into the files in another (:class:`~riotvit.predict.writer.BackgroundWriter`).
    """

    g = plan.grid
    cells = CropsWriter(work / CROPS_TMP, g, _stamp(plan))
    raster = RiskRaster(work / "risk.tif", g, plan.crops, plan.region_grid, raster_tags(plan, bundle, window, ctx.weights_sha),
                        window)
    rep.start(plan.n_crops, "predicting", unit="crops", per_item=(g.stride_m**2 / 1e6, "km²"))
    n_done = 0

    def merge(out: BatchOutput) -> None:
        nonlocal n_done
        if out.check is not None:
            values.add_partial(*out.check)
        cells.add(out.rows)
        raster.add(out.cols, out.grid_rows, out.values)
        n_done += out.idx.size

    try:
        # cells and risk.tif are merged in a background thread, in order: the model never waits for a write
        with BackgroundWriter(merge) as writer:
            if client is None:
                with closing(_local_groups(ctx, groups)) as local:
                    for group, bands in local:
                        for batch, out in group_outputs(ctx, runner, bands, lambda: not values.done):
                            if explain is not None:
                                crops = plan.crops.iloc[batch.idx].assign(valid_fraction=batch.fractions)
                                out.rows = explain.add(crops, batch.chips, batch.masks,
                                                       None if ctx.meta is None else ctx.meta[batch.idx], out.pred,
                                                       out.rows)
                            writer.put(out)
                        rep.advance(group_crops(group))
            else:
                for i, res in ordered_map(client, predict_group, groups, ctx):
                    for out in res.batches:
                        writer.put(out)
                    rep.advance(group_crops(groups[i]))
        cells.close()
        raster.close()
    except BaseException:
        raster.abort()
        raise
    finally:
        rep.stop()
    return n_done


def _local_groups(ctx: BlockContext, groups: list[list[Block]]) -> Iterator[tuple[list[Block], Iterator]]:
    """Each group with its bands, read ahead in a background thread (reading overlaps the model)."""

    def produce():
        with open_readers(ctx) as (reader, before):
            for k, group in enumerate(groups):
                for item in read_bands(ctx, reader, before, group):
                    yield k, item

    with Prefetch(produce) as items:
        # through a generator: groupby asks again after the end, and a Prefetch answers only once
        for k, run in itertools.groupby((item for item in items), key=itemgetter(0)):
            yield groups[k], (item for _k, item in run)


def prediction_meta(plan: PredictPlan, bundle: Bundle, region: Region, cfg: PredictConfig, n_pred: int,
                    meta_info: dict, warnings: list[str], work: Path, explain: dict | None,
                    out: Path | None = None, window: ForecastWindow | None = None,
                    cells: CellLayer | None = None, previous: list | None = None) -> PredictionMeta:
    """``run.json``: the model, region, date, imagery and metadata behind the maps (``work``'s files as outputs).

    Every path is recorded relative to the prediction folder ``out`` (``work`` when None).
    """
    base = out if out is not None else work

    def rel(p):
        return relative_to_artifact(p, base) if p else p

    meta_info = dict(meta_info)
    for k in ("acled", "census"):
        if meta_info.get(k):
            meta_info[k] = {f: (rel(v) if f in ("path", "population_raster") else v) for f, v in meta_info[k].items()}
    b = plan.region_grid.bounds
    lon0, lat0, lon1, lat1 = Transformer.from_crs(plan.grid.epsg, 4326, always_xy=True).transform_bounds(*b)
    bm = bundle.meta
    return PredictionMeta.build(
        model={"path": rel(bundle.path), "sha256": file_sha256(bundle.path / WEIGHTS),
               "format_version": bm.format_version, "backbone": bm.config["model"]["backbone"],
               "threshold": bm.threshold},
        region={"name": region_label(plan), "source": region.source,
                "bbox_lonlat": [round(v, 6) for v in (lon0, lat0, lon1, lat1)],
                "area_km2": round(plan.region_grid.area / 1e6, 3)},
        date=plan.date.isoformat(),
        crs=plan.grid.crs,
        grid=plan.grid.to_dict(),
        imagery=[{"id": s.id, "path": rel(s.path), "sha256": s.sha256, "date": s.date.isoformat(),
                  "bands": list(s.band_names)} for s in plan.sources]
        + [{"id": s.id, "path": rel(s.path), "sha256": s.sha256, "date": s.date.isoformat(),
            "bands": list(s.band_names), "role": "previous"} for s in previous or []],
        metadata=meta_info,
        counts={"candidate_crops": plan.n_crops, "predicted_crops": n_pred, "skipped_crops": plan.n_crops - n_pred,
                **({"cells": cells.n_cells, "edge_cells": cells.n_edge} if cells is not None else {})},
        tta_views=cfg.tta,
        outputs=sorted(p.name for p in work.iterdir()),
        warnings=warnings,
        explain=explain,
        window=window.to_dict() if window is not None else None,
    )
