"""What each pipeline stage reads, writes and runs (thin calls into the library).

Run folder layout: ``sample/`` (when the pipeline generates the synthetic city), ``tiles/``,
``samples.parquet``, ``model/`` (bundle, metrics, model card, plots), ``evaluation/`` (the final
model re-scored on its held-out blocks), ``predict/`` (risk maps, cells, explanations) and
``riotvit.qgs`` at the top, which opens the maps over the imagery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riotvit.catalog import raster_specs, resolve_source
from riotvit.config import dump_config
from riotvit.errors import ConfigError
from riotvit.explain.stage import ExplainConfig, Explainer
from riotvit.join.stage import JoinConfig, join, with_census_roles
from riotvit.pipeline.spec import Pipeline
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.predict.region import Region, resolve_region
from riotvit.publish.qgis_project import relocate_project
from riotvit.synth import SampleConfig, generate_sample
from riotvit.tile.plan import TileConfig
from riotvit.tile.tiler import tile
from riotvit.train.bundle import META, WEIGHTS
from riotvit.train.config import TrainConfig
from riotvit.train.evaluate import evaluate_bundle
from riotvit.train.forecast_report import ForecastReport
from riotvit.train.launch import train_distributed
from riotvit.train.report import write_metrics, write_reliability_plots
from riotvit.train.trainer import train


@dataclass
class StageCall:
    config: Any
    inputs: dict[str, Path]
    outputs: list[Path]
    run: Callable[[Any], dict]  # reporter -> summary
    owns: list[Path] | None = None  # what the stage replaces (default: its outputs); checked before it runs

    @property
    def owned(self) -> list[Path]:
        return self.owns if self.owns is not None else self.outputs


@dataclass
class MetaSources:
    """The ACLED export, census layer (and its catalog entry) and population raster, resolved."""

    acled: Path
    census: Path | None
    census_entry: Any
    population: Path | None

    def inputs(self) -> dict[str, Path]:
        named = {"acled": self.acled, "census": self.census, "population": self.population}
        return {k: v for k, v in named.items() if v is not None}


def _meta_sources(pipe: Pipeline) -> MetaSources:

    src = pipe.spec.sources
    if not src.acled:
        raise ConfigError(f"pipeline {pipe.path}: sources.acled is required for join and predict")
    census, entry = resolve_source(pipe.find(src.census), "census", pipe.catalog) if src.census else (None, None)
    pop = resolve_source(pipe.find(src.population_raster), "raster", pipe.catalog)[0] if src.population_raster else None
    return MetaSources(resolve_source(pipe.find(src.acled), "acled", pipe.catalog)[0], census, entry, pop)


def _with_date(pipe: Pipeline, cfg):
    """``sources.date`` overrides the imagery's date unless the stage's config names its own."""
    d = pipe.spec.sources.date
    return cfg.model_copy(update={"date": d}) if d and cfg.date is None else cfg


def _rasters(pipe: Pipeline, predict: bool = False) -> list:

    if not pipe.spec.sources.raster:
        raise ConfigError(f"pipeline {pipe.path}: sources.raster names no imagery")
    names = (pipe.spec.sources.predict_raster or pipe.spec.sources.raster) if predict else pipe.spec.sources.raster
    return raster_specs([pipe.find(r) for r in names], pipe.catalog)


def plan_sample(pipe: Pipeline) -> StageCall:

    cfg = pipe.section("sample", SampleConfig)
    out = pipe.run / "sample"

    def run(rep) -> dict:
        r = generate_sample(out, cfg, overwrite=True)
        return {"events": r.n_events, "riots": r.n_riots, "wards": r.n_wards, "seconds": round(r.seconds, 2)}

    return StageCall(dump_config(cfg), {}, [out], run)


def plan_tile(pipe: Pipeline) -> StageCall:

    cfg = _with_date(pipe, pipe.section("tile", TileConfig))
    specs = _rasters(pipe)
    out = pipe.run / "tiles"

    def run(rep) -> dict:
        r = tile(specs, out, cfg, overwrite=True, reporter=rep, cluster=pipe.spec.cluster)
        return {"crops": r.n_crops, "masked": r.n_masked, "seconds": round(r.seconds, 2)}

    return StageCall(dump_config(cfg), {f"raster{i}": s.path for i, s in enumerate(specs)}, [out], run)


def plan_join(pipe: Pipeline) -> StageCall:

    ms = _meta_sources(pipe)
    cfg = with_census_roles(pipe.section("join", JoinConfig), ms.census_entry, ms.census)
    tiles, out = pipe.run / "tiles", pipe.run / "samples.parquet"
    inputs = {"tiles": tiles, **ms.inputs()}

    def run(rep) -> dict:
        r = join(tiles, ms.acled, ms.census, out, cfg, population_raster=ms.population, overwrite=True, reporter=rep)
        return {"rows": r.n_rows, "riot_crops": r.positives.get("riot", 0), "features": len(r.features)}

    return StageCall(dump_config(cfg), inputs, [out], run)


def plan_train(pipe: Pipeline) -> StageCall:

    cfg = pipe.section("train", TrainConfig)
    tiles, samples, out = pipe.run / "tiles", pipe.run / "samples.parquet", pipe.run / "model"

    nproc = pipe.spec.cluster.train_nproc

    def run(rep) -> dict:
        if nproc > 1:  # DDP ranks started by torchrun; their bundle differs from one process's, so nproc is in the config
            r = train_distributed(tiles, samples, out, cfg, nproc, overwrite=True)
        else:
            r = train(tiles, samples, out, cfg, overwrite=True, reporter=rep)
        return {"best_epoch": r.best_epoch, "epochs": r.epochs_run, "images_per_s": round(r.images_per_s, 1),
                "seconds": round(r.seconds, 1)}

    config = dump_config(cfg) | ({"nproc": nproc} if nproc > 1 else {})
    return StageCall(config, {"tiles": tiles, "samples": samples}, [out], run)


def plan_evaluate(pipe: Pipeline) -> StageCall:

    model, out = pipe.run / "model", pipe.run / "evaluation"

    def run(rep) -> dict:
        table, _ = evaluate_bundle(str(model))
        out.mkdir(parents=True, exist_ok=True)
        if isinstance(table, ForecastReport):
            table.write(out)
            scores = table.scores[table.last]["held-out blocks"]
            return {"origin": table.last, "held_out_aupr": {m: round(v["aupr"], 3) for m, v in scores.items()
                                                           if v.get("aupr") is not None}}
        write_metrics(out, table)
        write_reliability_plots(out, table)
        split = next(iter(table.to_dict()["splits"].values()))
        return {"held_out_aupr": {m: round(v["riot"]["aupr"], 3) for m, v in split["models"].items()
                                  if v["riot"].get("aupr") is not None}}

    inputs = {"bundle": model / META, "weights": model / WEIGHTS, "tiles": pipe.run / "tiles",
              "samples": pipe.run / "samples.parquet"}  # the tile set and table the bundle records
    return StageCall({}, inputs, [out / "metrics.json"], run, owns=[out])


def plan_predict(pipe: Pipeline) -> StageCall:

    cfg = _with_date(pipe, pipe.section("predict", PredictConfig))
    ecfg = None
    if pipe.explain:

        ecfg = pipe.section("explain", ExplainConfig)
    specs = _rasters(pipe, predict=True)
    src = pipe.spec.sources
    previous = raster_specs([pipe.find(r) for r in src.predict_previous_raster], pipe.catalog) \
        if src.predict_previous_raster else None
    admin = resolve_source(pipe.find(src.admin), "census", pipe.catalog)[0] if src.admin else None
    ms = _meta_sources(pipe)
    model, out = pipe.run / "model", pipe.run / "predict"
    inputs = {"bundle": model / META, "weights": model / WEIGHTS, **ms.inputs(),
              **{f"raster{i}": s.path for i, s in enumerate(specs)},
              **{f"previous{i}": s.path for i, s in enumerate(previous or [])}, **({"admin": admin} if admin else {})}
    config = {"region": pipe.spec.region, "region_crs": pipe.spec.region_crs, "predict": dump_config(cfg),
              "admin_id": src.admin_id,
              "explain": dump_config(ecfg) if ecfg else None}

    def run(rep) -> dict:
        region = pipeline_region(pipe, specs)
        explainer = None
        if ecfg is not None:

            explainer = Explainer(model, ecfg)
        r = predict(model, region, out, cfg, imagery=specs, acled=ms.acled, census=ms.census, population_raster=ms.population,
                    catalog=pipe.catalog, overwrite=True, yes=True, reporter=rep, explain=explainer, admin=admin,
                    admin_id=src.admin_id, previous_imagery=previous, cluster=pipe.spec.cluster)

        relocate_project(out / "riotvit.qgs", pipe.run / "riotvit.qgs")
        d = {"crops": r.n_predicted, "km2": round(r.area_km2, 1), "crops_per_s": round(r.crops_per_s, 1),
             "seconds": round(r.seconds, 1)}
        if explainer is not None:
            sm = explainer.summary()
            d["top_drivers"] = list(sm.get("mean_abs_shap", {}))[:3]
            d["completeness_gap"] = sm.get("completeness", {}).get("relative_gap")
            d["top1_seed_agreement"] = sm.get("top1_seed_agreement")
            d["drivers_reliable_share"] = sm.get("drivers_reliable_share")
        return d

    return StageCall(config, inputs, [out, pipe.run / "riotvit.qgs"], run)


def pipeline_region(pipe: Pipeline, specs: list):
    """The pipeline's region; ``imagery`` is the union of the rasters' footprints."""
    if pipe.spec.region != "imagery":

        return resolve_region(pipe.find(pipe.spec.region), pipe.spec.region_crs, pipe.catalog)
    import rasterio
    import shapely
    from rasterio.warp import transform_bounds


    boxes = []
    for s in specs:
        with rasterio.open(s.path) as src:
            boxes.append(shapely.box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)))
    return Region("imagery", shapely.union_all(boxes), "extent of the pipeline's imagery")


PLANS = {"sample": plan_sample, "tile": plan_tile, "join": plan_join, "train": plan_train, "evaluate": plan_evaluate,
         "predict": plan_predict}
