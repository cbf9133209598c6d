"""``riotvit predict``: apply a model bundle to a region and write maps that open in QGIS.

The region is tiled on the model's grid on the fly (no tile set on disk): blocks of crops
anchored on the grid are read band by band in a background thread, crops inside the region
are batched through the model (with test-time augmentation), and the results stream into
``cells.gpkg``/``cells.geojson`` and an on-disk accumulator for ``risk.tif``. Memory is bounded
by a band and a batch, not by the region.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riotvit import __version__
from riotvit.catalog import Catalog
from riotvit.errors import ConfigError, InputError, RegionError
from riotvit.io import partial_path, refuse_existing, write_json
from riotvit.join.events.acled import read_acled
from riotvit.join.events.labels import build_history
from riotvit.join.stage import JoinConfig, census_features, project_events
from riotvit.predict.plan import PredictConfig, PredictPlan, plan_prediction
from riotvit.predict.region import Region
from riotvit.predict.runner import ModelRunner
from riotvit.progress import NullReporter, Reporter
from riotvit.publish.layers import CellsWriter, cell_rows
from riotvit.publish.mosaic import RISK_BANDS, RiskRaster
from riotvit.publish.qgis_project import LayerSpec, write_qgis_project
from riotvit.publish.styles import raster_rgb_qml, risk_raster_qml, risk_vector_qml, write_style
from riotvit.tile.bands import block_bands, cut_row
from riotvit.tile.plan import SourceSpec
from riotvit.tile.prefetch import Prefetch
from riotvit.tile.reader import GridReader
from riotvit.tile.source import open_source
from riotvit.train.bundle import Bundle


@dataclass
class PredictResult:
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

    @property
    def stream_crops_per_s(self) -> float:
        """Throughput of reading, inference and writing alone (without start-up and metadata)."""
        return self.n_predicted / self.stream_seconds if self.stream_seconds else float("nan")


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def metadata_features(plan: PredictPlan, bundle_meta: dict, mode: str, acled: Path | None, census: Path | None,
                      population_raster: Path | None) -> tuple[pd.DataFrame, dict, list[str]]:
    """The model's metadata for the plan's crops, as of the plan's date (raw, before scaling)."""

    names = list(bundle_meta["features"]["names"])
    crops = plan.crops.assign(date=pd.Timestamp(plan.date))
    if not names or mode == "none":
        return pd.DataFrame(np.nan, index=crops.index, columns=names, dtype="float32"), {"mode": "none"}, (
            ["metadata treated as missing (--metadata none): the model relies on the image and its missing-indicators"]
            if names else [])
    prov = bundle_meta["provenance"]["join"]
    jcfg = JoinConfig.model_validate(prov["config"])
    out = pd.DataFrame(index=crops.index)
    info: dict = {"mode": "auto"}
    warnings: list[str] = []
    if any(n.startswith("hist_") for n in names):
        path = acled or Path(prov["acled"]["path"])
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
        info["acled"] = {"path": str(path), "sha256": _sha256(path), "events_near_region": int(len(ev))}
    if any(n.startswith("census_") for n in names):
        cpath = census or (Path(prov["census"]["path"]) if prov.get("census") else None)
        if cpath is None or not cpath.exists():
            raise InputError(f"{cpath}: the census layer the model was trained with is not here; pass --census FILE or --metadata none")
        pop = population_raster or (Path(prov["census"]["population_raster"]) if prov["census"].get("population_raster") else None)
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


def _device(cfg: PredictConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available; use --device cpu or auto")
    dev = "cuda" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev == "cuda")
    return dev, bf16


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
) -> PredictResult:
    """Predict riot risk over a region and write the prediction folder (see DESIGN.md).

    Raises:
        RegionError: region outside the imagery, or larger than ``max_cells`` without ``yes``.
        RasterError: imagery bands differ from the model's.
        BundleError: incompatible or incomplete bundle.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
    """

    cfg = config or PredictConfig()
    rep = reporter or NullReporter()
    out = Path(out)
    refuse_existing(out, overwrite, "prediction folder")
    t0 = time.perf_counter()
    bundle = Bundle.open(model)
    specs = imagery if imagery else catalog_imagery(region, bundle.meta["bands"], catalog)
    plan = plan_prediction(specs, region, bundle.meta, cfg, bands)
    if plan.n_crops == 0:
        raise RegionError(f"region {region.name} ({region.bounds_text()}) holds no crop of the grid; is it smaller than a cell?")
    if plan.n_crops > cfg.max_cells and not yes:
        raise RegionError(f"region {region.name}: {plan.n_crops:,} crops exceed --max-cells {cfg.max_cells:,}; "
                          "pass --yes to predict it anyway, or choose a smaller region")
    dev, bf16 = _device(cfg)
    runner = ModelRunner(bundle, dev, cfg.tta, cfg.batch_size, bf16)
    feats, meta_info, warnings = metadata_features(plan, bundle.meta, cfg.metadata, acled, census, population_raster)
    meta = runner.meta_array(feats)
    work = partial_path(out)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        if explain is not None:
            explain.begin(plan, work, runner, feats)
        ts = time.perf_counter()
        n_pred = _stream(plan, runner, meta, cfg, work, rep, bundle, explain)
        stream_s = time.perf_counter() - ts
        if explain is not None:
            explain.finish()
        _finish(plan, bundle, region, cfg, work, n_pred, meta_info, warnings, dev, explain)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    dt = time.perf_counter() - t0
    area = n_pred * plan.grid.stride_m**2 / 1e6
    return PredictResult(out, plan.n_crops, n_pred, area, dt, n_pred / dt, area / dt, dev, stream_s, warnings)


def catalog_imagery(region: Region, bands: list[str], catalog: Path | None) -> list[SourceSpec]:
    """Catalog rasters whose footprint meets the region and whose bands are the model's."""
    import shapely
    from rasterio.warp import transform_bounds


    try:
        cat = Catalog.load(catalog)
    except Exception:
        return []
    found = []
    for rid in cat.ids("raster"):
        r = cat.entries[rid]
        e = r.entry
        if r.path is None or not r.path.exists() or sorted(e.bands or []) != sorted(bands):
            continue
        try:
            s = open_source(r.path, source_id=e.id, bands=e.bands, date=e.acquisition_date, checksum=False)
        except Exception:
            continue
        from rasterio.crs import CRS

        b = transform_bounds(CRS.from_wkt(s.crs_wkt), "EPSG:4326", *s.bounds, densify_pts=21)
        if shapely.box(*b).intersects(region.geometry):
            found.append(SourceSpec(r.path, id=e.id, bands=e.bands, date=e.acquisition_date, categorical=e.categorical))
    return found


def _stream(plan: PredictPlan, runner, meta: np.ndarray | None, cfg: PredictConfig, work: Path, rep: Reporter,
            bundle, explain) -> int:
    """Read, predict and write every block; returns the number of crops predicted."""

    g = plan.grid
    index = pd.Series(np.arange(plan.n_crops), index=pd.MultiIndex.from_arrays([plan.crops["col"], plan.crops["row"]]))
    stamp = f"{plan.date.isoformat()}T00:00:00.000Z"
    cells = CellsWriter(work, g, stamp)
    tags = {"riotvit_version": __version__, "model": bundle.meta.get("model_id", bundle.path.name),
            "date": plan.date.isoformat(), "region": plan.region.name, "bands": ",".join(RISK_BANDS)}
    raster = RiskRaster(work / "risk.tif", g, plan.crops, plan.region_grid, tags)
    blocks = plan.blocks(cfg.block_crops)
    dtype = np.dtype(plan.sources[0].dtype) if len({s.dtype for s in plan.sources}) == 1 else np.dtype("float32")
    rep.start(plan.n_crops, "predicting", unit="crops", per_item=(g.stride_m**2 / 1e6, "km²"))
    pending: list[tuple] = []
    n_done = 0
    date = plan.date.isoformat()

    def flush() -> None:
        nonlocal pending, n_done
        if not pending:
            return
        idx = np.concatenate([p[0] for p in pending])
        chips = np.concatenate([p[1] for p in pending])
        masks = np.concatenate([p[2] for p in pending])
        fr = np.concatenate([p[3] for p in pending])
        pending = []
        pred = runner.predict(chips, masks, None if meta is None else meta[idx])
        crops = plan.crops.iloc[idx].assign(valid_fraction=fr)
        rows = cell_rows(crops, pred, date)
        if explain is not None:
            rows = explain.add(crops, chips, masks, None if meta is None else meta[idx], pred, rows)
        cells.add(rows)
        vals = np.stack([pred["riot_probability"], pred.get("expected_events", np.full(idx.size, np.nan)),
                         pred["uncertainty"]], axis=1)
        raster.add(crops["col"].to_numpy(), crops["row"].to_numpy(), vals)
        n_done += idx.size

    def produce():
        with GridReader(plan.sources, g, str(dtype), "bilinear") as reader:
            for cols, rows, members in blocks:
                for band in block_bands(reader, g, cols, rows, dtype, len(plan.sources[0].band_names)):
                    yield cols, band, members

    try:
        with Prefetch(produce) as items:
            for cols, band, _ in items:
                for i, row in enumerate(band.rows):
                    cr = cut_row(band, i, len(cols), g, cfg.min_valid)
                    if cr is None:
                        continue
                    cc = cols.start + cr.keep
                    pos = index.reindex(pd.MultiIndex.from_arrays([cc, np.full(cc.size, row)])).to_numpy()
                    ok = ~np.isnan(pos)
                    if ok.any():
                        pending.append((pos[ok].astype(np.int64), cr.chips[ok], cr.masks[ok], cr.fractions[ok]))
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


def _finish(plan: PredictPlan, bundle, region: Region, cfg: PredictConfig, work: Path, n_pred: int, meta_info: dict,
            warnings: list[str], device: str, explain) -> None:
    """Styles, the QGIS project and run.json."""
    import os


    if n_pred == 0:
        raise RegionError(f"region {region.name}: no crop had at least {cfg.min_valid:.0%} valid imagery; "
                          "check the imagery's nodata or lower --min-valid")
    write_style(work / "risk.tif", risk_raster_qml(1))
    write_style(work / "cells.gpkg", risk_vector_qml("riot_probability"))
    # with overlap, crops overlap and their fills stack: the averaged risk.tif is the map, and the
    # cells layer (drivers in the identify panel) starts hidden
    layers = [LayerSpec("cells (riot probability per crop)", "cells.gpkg", "vector", "ogr", risk_vector_qml(), layer_name="cells",
                        opacity=0.6, visible=plan.grid.overlap == 0)]
    if explain is not None:
        layers += explain.layers(work)
    layers.append(LayerSpec("risk (riot probability)", "risk.tif", "raster", "gdal", risk_raster_qml(1), opacity=0.85))
    norm = bundle.meta["normalisation"]
    bands = list(norm["bands"])
    rgb = [b for b in ("red", "green", "blue") if b in bands]
    for s in plan.sources:
        if len(rgb) == 3:
            idx = [s.band_indexes[bands.index(b)] for b in rgb]
            stats = [(max(0.0, norm["mean"][bands.index(b)] - 2 * norm["std"][bands.index(b)]),
                      norm["mean"][bands.index(b)] + 2 * norm["std"][bands.index(b)]) for b in rgb]
        else:
            idx = [s.band_indexes[0]] * 3
            stats = [(norm["mean"][0] - 2 * norm["std"][0], norm["mean"][0] + 2 * norm["std"][0])] * 3
        crs = f"EPSG:{s.epsg}" if s.epsg else None
        layers.append(LayerSpec(f"imagery {s.id} ({s.date})", os.path.relpath(s.path, work.parent / work.name.removesuffix('.partial')),
                                "raster", "gdal", raster_rgb_qml(*idx, stats), crs=crs))
    extent = plan.region_grid.bounds
    write_qgis_project(work / "riotvit.qgs", layers, plan.grid.crs, extent, f"riotvit: riot risk, {region.name}, {plan.date}")
    from pyproj import Transformer

    b = plan.region_grid.bounds
    lon0, lat0, lon1, lat1 = Transformer.from_crs(plan.grid.epsg, 4326, always_xy=True).transform_bounds(*b)
    run = {
        "riotvit_version": __version__,
        "model": {"path": str(bundle.path), "sha256": _sha256(bundle.path / "model.safetensors"),
                  "format_version": bundle.meta["format_version"], "backbone": bundle.meta["config"]["model"]["backbone"],
                  "threshold": bundle.meta["threshold"]},
        "region": {"name": region.name, "source": region.source, "bbox_lonlat": [round(v, 6) for v in (lon0, lat0, lon1, lat1)],
                   "area_km2": round(plan.region_grid.area / 1e6, 3)},
        "date": plan.date.isoformat(),
        "crs": plan.grid.crs,
        "grid": plan.grid.to_dict(),
        "imagery": [{"id": s.id, "path": str(s.path), "sha256": s.sha256, "date": s.date.isoformat(),
                     "bands": list(s.band_names)} for s in plan.sources],
        "metadata": meta_info,
        "counts": {"candidate_crops": plan.n_crops, "predicted_crops": n_pred,
                   "skipped_crops": plan.n_crops - n_pred},
        "tta_views": cfg.tta,
        "outputs": sorted(p.name for p in work.iterdir()),
        "warnings": warnings,
    }
    if explain is not None:
        run["explain"] = explain.summary()
    write_json(work / "run.json", run)
