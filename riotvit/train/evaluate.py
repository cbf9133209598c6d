"""Scoring a trained model honestly: calibrate on validation, threshold on validation, score the
held-out test blocks, next to the prevalence and history-plus-census baselines on the same rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riotvit.io import resolve_recorded
from riotvit.join.features import BandNorm, MetaScaler, target_arrays
from riotvit.join.samples import open_samples
from riotvit.tile.tileset import TileSet
from riotvit.train.baselines import HistoryCensusBaseline, evaluate_baselines
from riotvit.train.bundle import Bundle
from riotvit.train.calibration import Calibrator, calibrator_from_dict, fit_calibrator
from riotvit.train.data import ChipBatcher
from riotvit.train.forecast import Member, OriginForecast, add_image_free, member_forecasts
from riotvit.train.forecast_report import ForecastReport
from riotvit.train.inputs import check_inputs
from riotvit.train.loop import predict_outputs
from riotvit.train.metrics import choose_threshold, count_metrics, evaluate_heads
from riotvit.train.origins import rolling_split
from riotvit.train.report import build_metrics_table
from riotvit.train.splits import Split, column_split
from riotvit.train.stacking import Stacker


def expected_outputs(raw: dict[str, np.ndarray], calibrator: Calibrator | None) -> dict[str, np.ndarray]:
    """Turn raw head outputs into probabilities and expected counts."""
    out: dict[str, np.ndarray] = {}
    if "riot" in raw:
        z = raw["riot"].astype(np.float64)
        out["riot"] = calibrator.transform(z) if calibrator is not None else 1 / (1 + np.exp(-z))
    for k in ("event_count", "fatalities"):
        if k in raw:
            out[k] = np.exp(np.clip(raw[k].astype(np.float64), -20, 20))
    if "crowd_size" in raw:
        p_gt = 1 / (1 + np.exp(-raw["crowd_size"].astype(np.float64)))
        cum = np.concatenate([np.ones_like(p_gt[:, :1]), p_gt, np.zeros_like(p_gt[:, :1])], axis=1)
        probs = np.clip(cum[:, :-1] - cum[:, 1:], 0, None)
        out["crowd_size"] = probs / np.clip(probs.sum(1, keepdims=True), 1e-12, None)
    if "type_counts" in raw:
        out["type_counts"] = np.exp(np.clip(raw["type_counts"].astype(np.float64), -20, 20))
    return out


@dataclass
class SplitScore:
    """A model's scores on one split, and the calibration and threshold chosen on its validation rows."""

    name: str
    heads: dict
    calibrator: Calibrator
    threshold: float
    test_pred: dict[str, np.ndarray]


def score_split(
    split: Split, raw_val: dict[str, np.ndarray], raw_test: dict[str, np.ndarray], samples: pd.DataFrame,
    type_columns: list[str], calibration: str, threshold_method: str,
) -> SplitScore:
    y_val = samples["riot"].to_numpy()[split.val]
    cal = fit_calibrator(calibration, raw_val["riot"], y_val)
    p_val = cal.transform(raw_val["riot"])
    thr = choose_threshold(y_val, p_val, threshold_method)
    pred = expected_outputs(raw_test, cal)
    test = samples[split.test]
    targets: dict[str, np.ndarray] = {k: test[k].to_numpy() for k in ("riot", "event_count", "fatalities", "crowd_size")}
    preds = {k: pred[k] for k in ("riot", "event_count", "fatalities", "crowd_size") if k in pred}
    heads = evaluate_heads(targets, preds, threshold=thr, num_classes=pred["crowd_size"].shape[1] if "crowd_size" in pred else None)
    if "type_counts" in pred and type_columns:

        for j, c in enumerate(type_columns):
            heads[c] = count_metrics(test[c].to_numpy(), pred["type_counts"][:, j])
    return SplitScore(split.name, heads, cal, float(thr), pred)


def baseline_scores(samples: pd.DataFrame, splits: list[Split], kind: str, calibration: str, threshold: str,
                    features: list[str]) -> dict:
    cols = [c for c in samples.columns if not c.startswith(("census_", "hist_")) or c in features]
    return evaluate_baselines(samples[cols], splits=splits, kind=kind, calibration=calibration,
                              threshold_method=threshold)


def evaluate_forecast(b: Bundle, ts: TileSet, df: pd.DataFrame, device: str = "cpu") -> ForecastReport:
    """Re-score an ensemble bundle at its test origin from what the bundle holds: each member's weights,
    stacker, calibrations and history + census baseline, on the same held-out crops as in training."""
    import datetime as dt

    import torch

    fc, bm = b.meta.forecast, b.meta
    scaler = MetaScaler.from_dict(bm.features.model_dump())
    meta = scaler.transform(df) if scaler.names else None
    batcher = ChipBatcher(ts, df["chip_index"].to_numpy(), meta, target_arrays(df, bm.targets.type_counts),
                          BandNorm.from_dict(bm.normalisation.model_dump()), torch.device(device), bm.input_px, "auto", temporal=bm.temporal != "none")
    members = []
    try:
        for m in fc["members"]:
            sp = rolling_split(df, dt.date.fromisoformat(fc["origin"]), int(m["test_fold"]), int(fc["lead_days"]),
                               int(fc["horizon_days"]), int(m["val_fold"]))
            rows = np.flatnonzero(sp.test_all)
            raw = predict_outputs(b.load_model(device, m["weights"]), batcher, rows, 256, False)
            base = HistoryCensusBaseline.from_dict(m["baseline"])
            at = df.iloc[rows]
            st = Stacker.from_dict(m["stacker"])
            pred = member_forecasts(raw, base.predict_proba(at), base.predict_count(at), st,
                                    calibrator_from_dict(m["calibration"]), calibrator_from_dict(m["image_calibration"]))
            members.append(Member(sp, None, scaler, None, base, st, dispersion=float(m["dispersion"]),
                                  threshold=float(m["threshold"]), rows=rows, pred=pred))
    finally:
        batcher.close()
    add_image_free(members, df, meta, int(bm.config["model"]["meta_hidden"]), int(bm.config["seed"]),
                   bm.config["eval"]["calibration"])
    report = ForecastReport(int(fc["lead_days"]), int(fc["horizon_days"]))
    report.add_origin(OriginForecast.pool(members), df)
    report.selected = {"model": fc["selected"], "why": fc["why"]}
    return report


def evaluate_bundle(run: str, tileset: str | None = None, samples: str | None = None, device: str = "cpu"):
    """Re-score a trained bundle on its held-out split, next to the baselines.

    Uses the bundle's own scaler, calibration and threshold (all chosen on validation data at
    training time); tile set and samples default to the paths recorded in the bundle.

    Returns:
        (MetricsTable, Bundle), or (ForecastReport, Bundle) for an ensemble (rolling-origin) bundle.
    """
    from pathlib import Path

    import torch


    b = Bundle.open(run)
    bm = b.meta
    ts = TileSet.open(tileset or resolve_recorded(bm.provenance.tileset.path, b.path))
    sp_path = Path(samples or resolve_recorded(bm.provenance.samples.path, b.path))
    df, smeta = open_samples(sp_path)
    check_inputs(ts, df, smeta, sp_path)
    if bm.forecast:
        return evaluate_forecast(b, ts, df, device), b
    split = column_split(df)
    scaler = MetaScaler.from_dict(bm.features.model_dump())
    meta = scaler.transform(df) if scaler.names else None
    type_cols = bm.targets.type_counts
    dev = torch.device(device)
    model = b.load_model(device)
    batcher = ChipBatcher(ts, df["chip_index"].to_numpy(), meta, target_arrays(df, type_cols),
                          BandNorm.from_dict(bm.normalisation.model_dump()), dev, bm.input_px, "auto", temporal=bm.temporal != "none")
    try:
        raw = predict_outputs(model, batcher, np.flatnonzero(split.test), 256, False)
    finally:
        batcher.close()
    cal = calibrator_from_dict(bm.calibration)
    pred = expected_outputs(raw, cal)
    test = df[split.test]
    targets = {k: test[k].to_numpy() for k in ("riot", "event_count", "fatalities", "crowd_size")}
    heads = evaluate_heads(targets, {k: pred[k] for k in targets if k in pred}, threshold=bm.threshold,
                           num_classes=pred["crowd_size"].shape[1] if "crowd_size" in pred else None)
    for j, c in enumerate(type_cols):
        if "type_counts" in pred:
            heads[c] = count_metrics(test[c].to_numpy(), pred["type_counts"][:, j])
    cfg = bm.config["eval"]
    base = baseline_scores(df, [split], cfg["baseline"], cfg["calibration"], cfg["threshold"], scaler.names)
    results = {split.name: {"riotvit": heads, **{k: v for k, v in base[split.name].items() if k != "info"}}}
    table = build_metrics_table(results, calibration=bm.calibration, threshold_method=cfg["threshold"],
                                meta={"features": scaler.names})
    return table, b

