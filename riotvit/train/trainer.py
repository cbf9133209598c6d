"""``riotvit train``: tile set + samples table -> model bundle, evaluated against baselines.

The work happens in ``RUN.partial`` (checkpoints there make an interrupted run resumable) and
the finished bundle is renamed to ``RUN``. Steps: check the inputs (:func:`load_inputs`), train
and score each split (:func:`train_split`), score the baselines, describe the bundle
(:func:`bundle_meta`) and write it (:func:`write_bundle`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riotvit.device import DeviceChoice, choose_device
from riotvit.errors import ConfigError, SamplesError, suggest
from riotvit.io import atomic_dir, file_sha256, partial_path, relative_to_artifact, resolve_recorded
from riotvit.join.features import BandNorm, MetaScaler, target_arrays
from riotvit.join.samples import SamplesMeta, open_samples
from riotvit.progress import NullReporter, Reporter
from riotvit.publish.card import write_model_card
from riotvit.stage import start_stage
from riotvit.tile.tileset import TileSet
from riotvit.train import ddp
from riotvit.train.bundle import (
    BACKGROUND,
    BUNDLE_FORMAT,
    META,
    WEIGHTS,
    save_tensors,
)
from riotvit.train.config import TrainConfig
from riotvit.train.evaluate import SplitScore, baseline_scores, score_split
from riotvit.train.forecast import background_samples, train_on_split
from riotvit.train.forecast_train import (
    ensemble_meta,
    reliability_figure,
    run_forecast,
    use_rolling,
    write_members,
)
from riotvit.train.inputs import check_inputs
from riotvit.train.loop import FitResult, predict_outputs
from riotvit.train.meta import BundleMeta
from riotvit.train.models import model_summary
from riotvit.train.plots import training_curves
from riotvit.train.report import (
    MetricsTable,
    build_metrics_table,
    write_metrics,
    write_reliability_plots,
)
from riotvit.train.splits import Split, column_split, make_splits


@dataclass
class TrainResult:
    """What a training run wrote and how it went."""

    path: Path
    metrics: dict
    table_markdown: str
    best_epoch: int
    epochs_run: int
    seconds: float
    images_per_s: float
    device: str
    resumed_from: int = 0
    table: object = None


@dataclass
class TrainInputs:
    """A tile set and samples table that belong together, and what training reads from them."""

    ts: TileSet
    df: pd.DataFrame
    smeta: SamplesMeta
    samples_path: Path
    samples_sha: str
    features: list[str]
    type_cols: list[str]
    split: Split
    norm: BandNorm
    targets: dict[str, np.ndarray]
    riot: np.ndarray


@dataclass
class SplitRun:
    """One split trained and scored: the model, its metadata scaler, the fit, the scores and background."""

    model: Any
    scaler: MetaScaler
    fit: FitResult
    score: SplitScore
    background: dict[str, Any] | None


def load_inputs(tileset: str | Path, samples: str | Path, cfg: TrainConfig) -> TrainInputs:
    """Open and check the tile set and samples table; pick the features and the main split.

    Raises:
        SamplesError: they do not belong together, or no riot in the training folds.
        ConfigError: an unknown feature in ``data.features``.
    """
    ts = TileSet.open(tileset)
    samples_path = Path(samples)
    df, smeta = open_samples(samples_path)
    check_inputs(ts, df, smeta, samples_path)
    features = list(cfg.data.features or smeta.features)
    unknown = [f for f in features if f not in df.columns]
    if unknown:
        raise ConfigError(f"data.features: unknown feature '{unknown[0]}'{suggest(unknown[0], smeta.features)}; "
                          "see the features listed by riotvit join")
    split = column_split(df)
    if int(df["riot"].to_numpy()[split.train].sum()) == 0:
        raise SamplesError(
            f"{samples_path}: no riot crop in the training folds ({int(split.train.sum())} rows); the model cannot "
            "learn riots — use a longer --horizon-days, more riot types, or a larger area"
        )
    type_cols = list(smeta.type_counts)
    return TrainInputs(ts, df, smeta, samples_path, file_sha256(samples_path), features, type_cols, split,
                       BandNorm.from_stats(ts.bands, ts.stats), target_arrays(df, type_cols),
                       df["riot"].to_numpy().astype(np.float32))


def train_split(inp: TrainInputs, sp: Split, tag: str, save_dir: Path, cfg: TrainConfig, dc: DeviceChoice,
                rep: Reporter) -> SplitRun:
    """Train a model on one split (resuming from checkpoints in ``save_dir``) and score it."""

    def score(model, batcher):
        raw_val = predict_outputs(model, batcher, np.flatnonzero(sp.val), cfg.data.eval_batch_size, dc.bf16)
        raw_test = predict_outputs(model, batcher, np.flatnonzero(sp.test), cfg.data.eval_batch_size, dc.bf16)
        return (score_split(sp, raw_val, raw_test, inp.df, inp.type_cols, cfg.eval.calibration, cfg.eval.threshold),
                background_samples(batcher, sp, cfg) if cfg.eval.background_samples else None)

    model, scaler, fr, scored = train_on_split(inp, sp, tag, save_dir, cfg, dc, rep, None, score)
    return SplitRun(model, scaler, fr, *(scored or (None, None)))  # unscored on DDP ranks other than 0


def cross_validate(inp: TrainInputs, work: Path, cfg: TrainConfig, dc: DeviceChoice,
                   rep: Reporter) -> dict[str, tuple[Split, SplitRun]]:
    """Train and score with each other fold held out (``eval.cv_folds``); checkpoints under ``work/cvN``."""
    cv = cfg.eval.cv_folds
    if not cv:
        return {}
    df = inp.df
    folds = sorted(int(f) for f in df["fold"].unique() if f >= 0) if cv == "all" else list(cv)
    runs: dict[str, tuple[Split, SplitRun]] = {}
    for f in folds:
        if f == inp.split.test_fold:
            continue
        sp = make_splits(df, folds=[f], temporal=False)[0]
        rep.log(f"cross-validation: holding out fold {f}")
        runs[sp.name] = (sp, train_split(inp, sp, f"cv{f}", work / f"cv{f}", cfg, dc, rep))
    return runs


def metrics_table(inp: TrainInputs, main: SplitRun, cv: dict[str, tuple[Split, SplitRun]],
                  cfg: TrainConfig) -> MetricsTable:
    """riotvit's held-out scores on every split, next to the baselines on the same rows."""
    results = {inp.split.name: {"riotvit": main.score.heads}}
    splits = [inp.split]
    for name, (sp, run) in cv.items():
        results[name] = {"riotvit": run.score.heads}
        splits.append(sp)
    base = baseline_scores(inp.df, splits, cfg.eval.baseline, cfg.eval.calibration, cfg.eval.threshold, inp.features)
    for name, models in base.items():
        results.setdefault(name, {}).update({k: v for k, v in models.items() if k != "info"})
    return build_metrics_table(results, calibration=main.score.calibrator.to_dict(),
                               threshold_method=cfg.eval.threshold, meta={"features": inp.features})


def bundle_meta(inp: TrainInputs, run: SplitRun, table: MetricsTable, cfg: TrainConfig, dc: DeviceChoice,
                out: Path) -> BundleMeta:
    """``bundle.json`` of the final model; its paths are relative to the bundle folder ``out``."""
    ts, smeta, split, fr = inp.ts, inp.smeta, inp.split, run.fit
    summary = model_summary(run.model)
    joined = smeta.to_dict()
    sdir = inp.samples_path.parent  # the samples table's paths are relative to its folder

    def rebase(recorded: str | None) -> str | None:
        return relative_to_artifact(resolve_recorded(recorded, sdir), out) if recorded else recorded

    joined["acled"]["path"] = rebase(joined["acled"]["path"])
    if joined.get("census"):
        joined["census"]["path"] = rebase(joined["census"]["path"])
        joined["census"]["population_raster"] = rebase(joined["census"].get("population_raster"))
    return BundleMeta.build(
        bands=ts.bands, normalisation=inp.norm.to_dict(), input_px=cfg.model.img_size,
        tile_px=ts.info.chip_shape[1], grid=ts.info.grid, dtype=ts.info.dtype,
        features=run.scaler.to_dict(),
        targets={"heads": cfg.model.heads.enabled(), "type_counts": inp.type_cols,
                 "label_windows": smeta.label_windows, "riot_event_types": smeta.config["riot_event_types"],
                 "lead_days": smeta.config["lead_days"], "horizon_days": smeta.config["horizon_days"]},
        calibration=run.score.calibrator.to_dict(), threshold=run.score.threshold,
        metrics=table.summary(),
        split={"name": split.name, "test_fold": split.test_fold, "val_fold": split.val_fold, **split.sizes()},
        config=cfg.model_dump(mode="json"),
        model={k: v for k, v in summary.items() if isinstance(v, (int, float, str, list, dict, type(None)))},
        training={"best_epoch": fr.best_epoch, "epochs_run": len(fr.history), "best_val_aupr": fr.best_val_aupr,
                  "stopped_early": fr.stopped_early, "seconds": round(fr.seconds, 1),
                  "images_per_s": round(fr.images_per_s, 1), "device": dc.device, "bf16": dc.bf16,
                  "compile": dc.compile},
        provenance={"tileset": {"path": relative_to_artifact(ts.path, out), "signature": ts.info.signature,
                                "sources": [s.model_dump() | {"path": rebase_source(s.path, ts.path, out)}
                                            for s in ts.info.sources]},
                    "samples": {"path": relative_to_artifact(inp.samples_path, out), "sha256": inp.samples_sha},
                    "join": {k: joined[k] for k in ("acled", "census", "config", "folds")}},
    )


def rebase_source(recorded: str, tileset: Path, out: Path) -> str:
    """A tile set's source path (relative to the tile set) made relative to the bundle folder ``out``."""
    return relative_to_artifact(resolve_recorded(recorded, tileset), out)


def write_bundle(work: Path, run: SplitRun, table: MetricsTable, meta: BundleMeta) -> None:
    """Metrics, plots, history, weights, background, ``bundle.json`` and the model card; drop the checkpoints."""
    write_metrics(work, table)
    write_reliability_plots(work, table)
    save_tensors(work / WEIGHTS, run.model.state_dict(), metadata={"format": BUNDLE_FORMAT})
    if run.background is not None:
        save_tensors(work / BACKGROUND, run.background)
    sums = {f: file_sha256(work / f) for f in (WEIGHTS, BACKGROUND) if (work / f).is_file()}
    finish_bundle(work, meta.model_copy(update={"checksums": sums}), table, run.fit.history)


def finish_bundle(work: Path, meta: BundleMeta, table, history: pd.DataFrame) -> None:
    """Training curves, the signed ``bundle.json`` and the model card; drop checkpoints and fold work folders."""
    history.to_csv(work / "history.csv", index=False)
    if len(history):
        tr = meta.training  # the kept epoch and the throughput the model card states
        training_curves(history, work / "history.png", best_epoch=tr.best_epoch, images_per_s=tr.images_per_s)
    meta = meta.model_copy(update={"signature": meta.compute_signature()})
    meta.write(work / META)
    write_model_card(work, meta, table)
    for f in work.glob("checkpoint.*"):
        f.unlink()
    for d in work.glob("cv*"):
        shutil.rmtree(d, ignore_errors=True)


def write_forecast_bundle(work: Path, inp: TrainInputs, report, members: list, cfg: TrainConfig, dc: DeviceChoice,
                          out: Path) -> FitResult:
    """The rolling-origin bundle: the ensemble's weights, the forecast report, plots and the model card."""
    m0 = members[0]
    score = SplitScore(m0.split.name, {}, m0.calibrator, m0.threshold, {})
    meta = bundle_meta(inp, SplitRun(m0.model, m0.scaler, m0.fit, score, None), report, cfg, dc, out)
    meta = meta.model_copy(update={
        "split": type(meta.split).model_validate({"name": m0.split.name, "test_fold": m0.split.test_fold,
                                                  "val_fold": m0.split.val_fold, **m0.split.sizes()}),
        "forecast": ensemble_meta(members, report)})
    report.write(work)
    reliability_figure(work, report, members, inp.df)
    finish_bundle(work, meta.model_copy(update={"checksums": write_members(work, members)}), report, m0.fit.history)
    return m0.fit


def train(
    tileset: str | Path,
    samples: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    overwrite: bool = False,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train, evaluate and write a model bundle.

    Inside a torchrun job (``torchrun --nproc_per_node=N -m riotvit.train``, or ``riotvit train
    --nproc N``) it trains with DDP (:mod:`riotvit.train.ddp`): ``data.batch_size`` is the global
    batch, shared evenly by the ranks; every rank takes part in every fit (the main split,
    cross-validation folds, rolling-origin members, one after the other) and only rank 0 scores and
    writes the bundle. The other ranks return a result without metrics or table.

    Raises:
        SamplesError: tile set and samples do not match, or no riot in the training folds.
        ModelError: unknown backbone, unmappable pretrained bands.
        ConfigError: bad options.
    """
    import torch

    st = start_stage(config, TrainConfig, out, reporter, overwrite=overwrite, what="model bundle")
    cfg, rep = st.cfg, st.rep
    inp = load_inputs(tileset, samples, cfg)
    dc = choose_device(cfg.device, cfg.precision, cfg.compile, option="device")
    ddp.check_world(cfg.data.batch_size, ddp.launched_world())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    with ddp.process_group(dc.device):
        if not ddp.is_main():
            return _help_rank_0(inp, st.out, cfg, dc, st.elapsed)
        # an interrupted run resumes from the checkpoints in out.partial, unless it replaces a finished bundle
        with atomic_dir(st.out, overwrite=overwrite, resume=not (overwrite and st.out.exists())) as work:
            ddp.barrier()  # the other ranks wait for the work folder (they read checkpoints there)
            table, fr = _train_and_write(inp, work, cfg, dc, rep, st.out)
    return TrainResult(st.out, table.to_dict(), table.to_markdown(), fr.best_epoch, len(fr.history), st.elapsed(),
                       fr.images_per_s, dc.device, fr.resumed_from, table)


def _train_and_write(inp: TrainInputs, work: Path, cfg: TrainConfig, dc: DeviceChoice, rep: Reporter,
                     out: Path) -> tuple[Any, FitResult]:
    """Every fit of the run, the scores and the bundle in ``work``; the table and the kept fit."""
    split = inp.split
    if use_rolling(inp, cfg):
        table, members = run_forecast(inp, work, cfg, dc, rep)
        return table, write_forecast_bundle(work, inp, table, members, cfg, dc, out)
    where = f"{ddp.world_size()} processes on {dc.device}" if ddp.active() else dc.device
    rep.log(f"training on {int(split.train.sum())} crops, validating on {int(split.val.sum())}, "
            f"testing on {int(split.test.sum())} (held-out spatial block fold {split.test_fold}) on {where}"
            + (" with bf16" if dc.bf16 else "") + (" + torch.compile" if dc.compile else ""))
    main = train_split(inp, split, "main", work, cfg, dc, rep)
    table = metrics_table(inp, main, cross_validate(inp, work, cfg, dc, rep), cfg)
    write_bundle(work, main, table, bundle_meta(inp, main, table, cfg, dc, out))
    return table, main.fit


def _help_rank_0(inp: TrainInputs, out: Path, cfg: TrainConfig, dc: DeviceChoice, elapsed) -> TrainResult:
    """A DDP rank other than 0: the same fits as rank 0, in the same order, writing nothing."""
    work = partial_path(out)
    ddp.barrier()  # rank 0 has made (or cleared) its work folder
    rep = NullReporter()
    if use_rolling(inp, cfg):
        fr = run_forecast(inp, work, cfg, dc, rep)[1][0].fit
    else:
        fr = train_split(inp, inp.split, "main", work, cfg, dc, rep).fit
        cross_validate(inp, work, cfg, dc, rep)
    return TrainResult(out, {}, "", fr.best_epoch, len(fr.history), elapsed(), fr.images_per_s, dc.device,
                       fr.resumed_from)
