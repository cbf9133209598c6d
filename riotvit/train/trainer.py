"""``riotvit train``: tile set + samples table -> model bundle, evaluated against baselines.

The work happens in ``RUN.partial`` (checkpoints there make an interrupted run resumable) and
the finished bundle is renamed to ``RUN``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riotvit import __version__
from riotvit.errors import ConfigError, SamplesError, suggest
from riotvit.io import partial_path, refuse_existing
from riotvit.join.features import BandNorm, MetaScaler, target_arrays
from riotvit.join.stage import read_samples
from riotvit.progress import NullReporter, Reporter
from riotvit.publish.card import write_model_card
from riotvit.tile.tileset import TileSet
from riotvit.train.bundle import (
    BACKGROUND,
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    META,
    WEIGHTS,
    save_tensors,
    write_json,
)
from riotvit.train.config import TrainConfig
from riotvit.train.data import ChipBatcher
from riotvit.train.evaluate import baseline_scores, score_split
from riotvit.train.inputs import check_inputs
from riotvit.train.loop import fit, predict_outputs
from riotvit.train.models import create_model, model_summary
from riotvit.train.models.losses import MultiTaskLoss
from riotvit.train.plots import training_curves
from riotvit.train.report import build_metrics_table, write_metrics, write_reliability_plots
from riotvit.train.splits import column_split, make_splits


@dataclass
class TrainResult:
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


def _device(cfg: TrainConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA GPU is available; use device: cpu or auto")
    dev = torch.device("cuda" if (cfg.device in ("auto", "cuda") and torch.cuda.is_available()) else "cpu")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda")
    comp = cfg.compile == "on" or (cfg.compile == "auto" and dev.type == "cuda")
    return dev, bf16, comp


def _signature(cfg: TrainConfig, ts: TileSet, smeta: dict, samples_sha: str, split_name: str) -> str:
    payload = {"cfg": cfg.model_dump(mode="json"), "tileset": ts.info["signature"], "samples": samples_sha,
               "split": split_name, "v": BUNDLE_FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


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

    Raises:
        SamplesError: tile set and samples do not match, or no riot in the training folds.
        ModelError: unknown backbone, unmappable pretrained bands.
        ConfigError: bad options.
    """
    import torch


    cfg = config or TrainConfig()
    rep = reporter or NullReporter()
    out = Path(out)
    refuse_existing(out, overwrite, "model bundle")
    t0 = time.perf_counter()
    ts = TileSet.open(tileset)
    samples_path = Path(samples)
    df, smeta = read_samples(samples_path)
    check_inputs(ts, df, smeta, samples_path)
    features = list(cfg.data.features or smeta["features"])
    unknown = [f for f in features if f not in df.columns]
    if unknown:
        raise ConfigError(f"data.features: unknown feature '{unknown[0]}'{suggest(unknown[0], smeta['features'])}; "
                          "see the features listed by riotvit join")
    type_cols = list(smeta.get("type_counts", []))
    split = column_split(df)
    if int(df["riot"].to_numpy()[split.train].sum()) == 0:
        raise SamplesError(
            f"{samples_path}: no riot crop in the training folds ({int(split.train.sum())} rows); the model cannot "
            "learn riots — use a longer --horizon-days, more riot types, or a larger area"
        )
    dev, bf16, comp = _device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    work = partial_path(out)
    if work.exists() and overwrite and out.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    samples_sha = hashlib.sha256(samples_path.read_bytes()).hexdigest()
    norm = BandNorm.from_stats(ts.bands, ts.stats)
    targets = target_arrays(df, type_cols)
    riot = df["riot"].to_numpy().astype(np.float32)

    def run_split(sp, tag: str, save_dir: Path):
        scaler = MetaScaler.fit(df[sp.train], features)
        meta = scaler.transform(df) if features else None
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, ts.bands, n_meta=len(features), n_types=len(type_cols)).to(dev)
        loss_fn = MultiTaskLoss(cfg.model, cfg.loss, riot_labels=riot[sp.train]).to(dev)
        compiled = torch.compile(model) if comp else None
        batcher = ChipBatcher(ts, df["chip_index"].to_numpy(), meta, targets, norm, dev, cfg.model.img_size, cfg.data.cache)
        try:
            sig = _signature(cfg, ts, smeta, samples_sha, tag)
            save_dir.mkdir(parents=True, exist_ok=True)
            fr = fit(model, loss_fn, batcher, np.flatnonzero(sp.train), np.flatnonzero(sp.val), riot, cfg, save_dir,
                     sig, bf16=bf16, compiled=compiled, reporter=rep)
            raw_val = predict_outputs(model, batcher, np.flatnonzero(sp.val), cfg.data.eval_batch_size, bf16)
            raw_test = predict_outputs(model, batcher, np.flatnonzero(sp.test), cfg.data.eval_batch_size, bf16)
            score = score_split(sp, raw_val, raw_test, df, type_cols, cfg.eval.calibration, cfg.eval.threshold)
            bg = None
            if cfg.eval.background_samples:
                rng = np.random.default_rng(cfg.seed)
                rows = np.sort(rng.choice(np.flatnonzero(sp.train), min(cfg.eval.background_samples, int(sp.train.sum())), replace=False))
                b = next(iter(batcher.iterate([rows], train=False)))
                bg = {"image": b.image.float().cpu(), "meta": (b.meta.float().cpu() if b.meta is not None else torch.zeros(rows.size, 0)),
                      "rows": torch.from_numpy(rows)}
        finally:
            batcher.close()
        return model, scaler, fr, score, bg

    rep.log(f"training on {int(split.train.sum())} crops, validating on {int(split.val.sum())}, "
            f"testing on {int(split.test.sum())} (held-out spatial block fold {split.test_fold}) on {dev.type}"
            + (" with bf16" if bf16 else "") + (" + torch.compile" if comp else ""))
    model, scaler, fr, score, bg = run_split(split, "main", work)
    results = {split.name: {"riotvit": score.heads}}
    splits = [split]
    cv = cfg.eval.cv_folds
    if cv:
        folds = sorted(int(f) for f in df["fold"].unique() if f >= 0) if cv == "all" else list(cv)
        for f in folds:
            if f == split.test_fold:
                continue
            sp = make_splits(df, folds=[f], temporal=False)[0]
            rep.log(f"cross-validation: holding out fold {f}")
            _, _, _, s2, _ = run_split(sp, f"cv{f}", work / f"cv{f}")
            results[sp.name] = {"riotvit": s2.heads}
            splits.append(sp)
    base = baseline_scores(df, splits, cfg.eval.baseline, cfg.eval.calibration, cfg.eval.threshold, features)
    for name, models in base.items():
        results.setdefault(name, {}).update({k: v for k, v in models.items() if k != "info"})
    table = build_metrics_table(results, calibration=score.calibrator.to_dict(), threshold_method=cfg.eval.threshold,
                                meta={"features": features})
    write_metrics(work, table)
    write_reliability_plots(work, table)
    hist = fr.history
    hist.to_csv(work / "history.csv", index=False)

    if len(hist):
        training_curves(hist, work / "history.png")
    save_tensors(work / WEIGHTS, model.state_dict(), metadata={"format": BUNDLE_FORMAT})
    if bg is not None:
        save_tensors(work / BACKGROUND, bg)
    summary = model_summary(model)
    meta = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "riotvit_version": __version__,
        "bands": ts.bands, "normalisation": norm.to_dict(), "input_px": cfg.model.img_size,
        "tile_px": ts.info["chip_shape"][1], "grid": ts.info["grid"], "dtype": ts.info["dtype"],
        "features": scaler.to_dict(),
        "targets": {"heads": cfg.model.heads.enabled(), "type_counts": type_cols,
                    "label_windows": smeta.get("label_windows"), "riot_event_types": smeta["config"]["riot_event_types"],
                    "lead_days": smeta["config"]["lead_days"], "horizon_days": smeta["config"]["horizon_days"]},
        "calibration": score.calibrator.to_dict(), "threshold": score.threshold,
        "metrics": table.summary(), "split": {"name": split.name, "test_fold": split.test_fold, "val_fold": split.val_fold,
                                              **split.sizes()},
        "config": cfg.model_dump(mode="json"),
        "model": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, list, dict, type(None)))},
        "training": {"best_epoch": fr.best_epoch, "epochs_run": len(hist), "best_val_aupr": fr.best_val_aupr,
                     "stopped_early": fr.stopped_early, "seconds": round(fr.seconds, 1),
                     "images_per_s": round(fr.images_per_s, 1), "device": dev.type, "bf16": bf16, "compile": comp},
        "provenance": {"tileset": {"path": str(ts.path), "signature": ts.info["signature"], "sources": ts.info["sources"]},
                       "samples": {"path": str(samples_path), "sha256": samples_sha},
                       "join": {k: smeta.get(k) for k in ("acled", "census", "config", "folds")}},
    }
    write_json(work / META, meta)

    write_model_card(work, meta, table)
    for f in work.glob("checkpoint.*"):
        f.unlink()
    for d in work.glob("cv*"):
        shutil.rmtree(d, ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return TrainResult(out, table.to_dict(), table.to_markdown(), fr.best_epoch, len(hist),
                       time.perf_counter() - t0, fr.images_per_s, dev.type, fr.resumed_from, table)
