"""``riotvit predict``: apply a model bundle to a region and write maps that open in QGIS.

The region is tiled on the model's grid on the fly (no tile set on disk): blocks of crops
anchored on the grid are read band by band in a background thread, crops inside the region
are batched through the model (with test-time augmentation), and the results stream into
``cells.gpkg``/``cells.geojson`` and an on-disk accumulator for ``risk.tif``. Memory is bounded
by a band and a batch, not by the region.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from riotvit import __version__
from riotvit.device import choose_device
from riotvit.errors import InputError, RegionError
from riotvit.io import atomic_dir, file_sha256, relative_to_artifact, resolve_recorded
from riotvit.join.events.acled import read_acled
from riotvit.join.events.labels import build_history
from riotvit.join.stage import JoinConfig, census_features, project_events
from riotvit.predict.checks import ValueRangeCheck, dtype_warnings
from riotvit.predict.meta import PredictionMeta
from riotvit.predict.plan import PredictConfig, PredictPlan, catalog_imagery, plan_prediction
from riotvit.predict.region import Region
from riotvit.predict.runner import ModelRunner
from riotvit.predict.temporal import previous_sources, with_previous
from riotvit.progress import Reporter
from riotvit.publish.admin import read_admin
from riotvit.publish.layers import CellLayer, CropsWriter, cell_rows, cell_share, write_cells
from riotvit.publish.mosaic import RISK_BANDS, RISK_UNITS, RiskRaster
from riotvit.publish.prediction import admin_summary_layer, write_handout, write_prediction_project
from riotvit.stage import start_stage
from riotvit.tile.bands import block_bands, companion_band, cut_row
from riotvit.tile.plan import SourceSpec
from riotvit.tile.prefetch import Prefetch
from riotvit.tile.reader import GridReader
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
) -> PredictResult:
    """Predict riot risk over a region and write the prediction folder (see docs/formats.md).

    ``admin`` (a vector file of wards, districts or P-codes, id column ``admin_id``) adds the
    summary per unit. ``previous_imagery``, the same area at the image date before, is what a
    model trained with ``model.temporal`` compares against (required by such a model).

    Raises:
        RegionError: region outside the imagery, or larger than ``max_cells`` without ``yes``.
        RasterError: imagery bands differ from the model's.
        BundleError: incompatible or incomplete bundle.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
    """

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
    dc = choose_device(cfg.device, cfg.precision, "off", option="--device")
    runner = ModelRunner(bundle, dc.device, cfg.tta, cfg.batch_size, dc.bf16)
    feats, meta_info, warnings = metadata_features(plan, bundle.meta, cfg.metadata, acled, census, population_raster,
                                                   bundle.path)
    meta = runner.meta_array(feats)
    runner.set_baseline(feats)
    warnings += dtype_warnings([s.dtype for s in plan.sources], bundle.meta.dtype)
    values = ValueRangeCheck(runner.bands, bundle.meta.normalisation.mean, bundle.meta.normalisation.std)
    window = forecast_window(bundle.meta, plan.date)
    with atomic_dir(st.out, overwrite=True) as work:
        if explain is not None:
            explain.begin(plan, work, runner, feats)
        ts = time.perf_counter()
        n_pred = _stream(plan, runner, meta, cfg, work, st.rep, bundle, explain, values, window, previous)
        warnings += values.warnings()
        stream_s = time.perf_counter() - ts
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
    return PredictResult(st.out, plan.n_crops, n_pred, area, dt, n_pred / dt, area / dt, dc.device, stream_s, warnings,
                         window.to_dict(), cells.n_cells)




#: The per-crop layer while it streams (turned into cells.gpkg's layers by write_cells, then removed).
CROPS_TMP = "crops.partial.gpkg"


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


def _stream(plan: PredictPlan, runner, meta: np.ndarray | None, cfg: PredictConfig, work: Path, rep: Reporter,
            bundle, explain, values: ValueRangeCheck, window: ForecastWindow, previous: list | None = None) -> int:
    """Read, predict and write every block; returns the number of crops predicted.

    ``previous``: the sources of the image date before, for a model that compares two dates.
    """

    g = plan.grid
    index = pd.Series(np.arange(plan.n_crops), index=pd.MultiIndex.from_arrays([plan.crops["col"], plan.crops["row"]]))
    cells = CropsWriter(work / CROPS_TMP, g, _stamp(plan))
    tags = raster_tags(plan, bundle, window, file_sha256(bundle.path / WEIGHTS))
    raster = RiskRaster(work / "risk.tif", g, plan.crops, plan.region_grid, tags, window)
    blocks = plan.blocks(cfg.block_crops)
    srcs = [*plan.sources, *(previous or [])]
    # scaled reflectance is float whatever the file stores (uint16 would truncate it to 0)
    same = len({s.dtype for s in srcs}) == 1 and all(s.scale is None for s in srcs)
    dtype = np.dtype(plan.sources[0].dtype) if same else np.dtype("float32")
    rep.start(plan.n_crops, "predicting", unit="crops", per_item=(g.stride_m**2 / 1e6, "km²"))
    pending: list[tuple] = []
    n_done = 0

    def flush() -> None:
        nonlocal pending, n_done
        if not pending:
            return
        idx = np.concatenate([p[0] for p in pending])
        chips = np.concatenate([p[1] for p in pending])
        masks = np.concatenate([p[2] for p in pending])
        fr = np.concatenate([p[3] for p in pending])
        pending = []
        values.add(chips[:, :n_bands], masks[:, 0] if masks.ndim == 4 else masks)
        pred = runner.predict(chips, masks, None if meta is None else meta[idx], idx)
        crops = plan.crops.iloc[idx].assign(valid_fraction=fr)
        rows = cell_rows(crops, pred)
        if explain is not None:
            rows = explain.add(crops, chips, masks, None if meta is None else meta[idx], pred, rows)
        cells.add(rows)
        # expected riots per stride cell: a crop's count spread over the cells it covers (overlapping
        # crops average onto a cell, so a sum over cells counts each riot once)
        vals = np.stack([pred["riot_probability"],
                         pred.get("expected_events", np.full(idx.size, np.nan)) * cell_share(g),
                         pred["uncertainty"]], axis=1)
        raster.add(crops["col"].to_numpy(), crops["row"].to_numpy(), vals)
        n_done += idx.size

    n_bands = len(plan.sources[0].band_names)

    def produce():
        with ExitStack() as stack:
            reader = stack.enter_context(GridReader(plan.sources, g, str(dtype), "bilinear"))
            before = stack.enter_context(GridReader(previous, g, str(dtype), "bilinear")) if previous else None
            for cols, rows, _members in blocks:
                for band in block_bands(reader, g, cols, rows, dtype, n_bands):
                    yield cols, band, companion_band(before, g, cols, band) if before is not None else None

    try:
        with Prefetch(produce) as items:
            for cols, band, prev_band in items:
                for i, row in enumerate(band.rows):
                    cr = cut_row(band, i, len(cols), g, cfg.min_valid)
                    if cr is None:
                        continue
                    chips, masks = cr.chips, cr.masks
                    if prev_band is not None:
                        chips, masks = with_previous(cr, prev_band, i, g, cfg.min_valid)
                    cc = cols.start + cr.keep
                    pos = index.reindex(pd.MultiIndex.from_arrays([cc, np.full(cc.size, row)])).to_numpy()
                    ok = ~np.isnan(pos)
                    if ok.any():
                        pending.append((pos[ok].astype(np.int64), chips[ok], masks[ok], cr.fractions[ok]))
                        if sum(p[0].size for p in pending) >= cfg.batch_size:
                            flush()
                rep.advance(len(band.rows) * len(cols))
            flush()
        cells.close()
        raster.close()
    except BaseException:
        raster.abort()
        raise
    finally:
        rep.stop()
    return n_done


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
