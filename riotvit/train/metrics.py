"""Evaluation metrics for every head: binary riot risk, counts and ordinal crowd size.

Everything takes plain arrays (NaN in a target or prediction means "unknown": that row is
dropped and counted in ``n_dropped``) and returns JSON-friendly dicts of Python scalars and
lists, so a result can go straight into ``metrics.json``. Undefined values are ``nan`` (for
example AUROC on a fold with a single class) and come with a ``note`` that says why.

Reliability bins (equal-mass by default), the ECE, Brier skill and count CRPS live in
:mod:`riotvit.train.forecast_metrics`; the reliability functions are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_poisson_deviance,
    precision_recall_curve,
    roc_auc_score,
)

from riotvit.errors import ConfigError, suggest
from riotvit.train.forecast_metrics import (  # re-exported: callers import them from here
    ECE_BINS,
    MIN_BIN_COUNT,
    crps_poisson,
    ece_from_bins,
    expected_calibration_error,
    pool_reliability,
    reliability_bins,
)
from riotvit.train.forecast_metrics import finite_pair as _finite_pair

__all__ = [
    "DEFAULT_THRESHOLD", "ECE_BINS", "MIN_BIN_COUNT", "THRESHOLD_METHODS", "binary_metrics", "choose_threshold", "count_metrics",
    "ece_from_bins", "evaluate_heads", "expected_calibration_error", "metrics_by_group",
    "ordinal_metrics", "poisson_deviance", "pool_reliability", "reliability_bins",
]

THRESHOLD_METHODS = ("f1", "prevalence", "rate")
"""Ways :func:`choose_threshold` picks the decision threshold."""

DEFAULT_THRESHOLD = 0.5
"""Threshold used when none is given, or when the validation data cannot choose one."""

_EPS = 1e-12


def choose_threshold(y: Any, p: Any, method: str = "f1") -> float:
    """Pick the decision threshold on validation data (predict positive when ``p >= t``).

    Args:
        y: validation 0/1 labels.
        p: validation probabilities (calibrated, as they will be used).
        method: ``"f1"``: the threshold with the highest F1 (ties go to the lowest threshold);
            ``"prevalence"``: the validation base rate itself (flag a cell when its risk
            exceeds the average risk); ``"rate"``: the threshold that flags as many rows as
            there are positives (the ``1 - prevalence`` quantile of ``p``).

    Returns:
        The threshold; :data:`DEFAULT_THRESHOLD` when the validation data has no positives.

    Raises:
        ConfigError: unknown method.
    """
    if method not in THRESHOLD_METHODS:
        raise ConfigError(
            f"threshold method '{method}' is unknown{suggest(method, THRESHOLD_METHODS)}; "
            f"use one of {', '.join(THRESHOLD_METHODS)}"
        )
    y, p, _ = _finite_pair(y, p)
    n_pos = int((y > 0.5).sum())
    if y.size == 0 or n_pos == 0:
        return DEFAULT_THRESHOLD
    prevalence = n_pos / y.size
    if method == "prevalence":
        return float(prevalence)
    if method == "rate":
        return float(np.quantile(p, 1.0 - prevalence, method="higher"))
    if n_pos == y.size:
        return float(p.min())
    precision, recall, thresholds = precision_recall_curve(y > 0.5, p)
    precision, recall = precision[:-1], recall[:-1]
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def binary_metrics(
    y: Any, p: Any, threshold: float | None = None, n_bins: int = ECE_BINS, *,
    strategy: str = "quantile", min_count: int = MIN_BIN_COUNT,
) -> dict[str, Any]:
    """Ranking, probability and threshold metrics of riot probabilities.

    Args:
        y: 0/1 labels (NaN rows are dropped).
        p: predicted probabilities in [0, 1].
        threshold: decision threshold for F1 / precision / recall (``p >= threshold``);
            :data:`DEFAULT_THRESHOLD` when None.
        n_bins: the most reliability bins of the ECE.
        strategy, min_count: reliability bins (see :func:`reliability_bins`): equal-mass bins
            of at least ``min_count`` crops by default, ``"uniform"`` for equal-width bins.

    Returns:
        ``n``, ``n_pos``, ``prevalence``, ``auroc``, ``aupr`` (average precision), ``brier``,
        ``log_loss``, ``threshold``, ``f1``, ``precision``, ``recall``, ``ece`` (over the
        reliability bins), ``reliability`` (the bins, with Wilson 95 % intervals),
        ``n_dropped`` and ``note`` ("" or why a value is
        nan), plus ``n_flagged`` (rows at or above the threshold). With one class only,
        ``auroc`` and ``aupr`` are nan; ``precision`` is 0 when nothing is flagged; ``f1`` is
        nan when there are no positives and nothing is flagged.
    """
    y, p, dropped = _finite_pair(y, p)
    y = (y > 0.5).astype(np.float64)
    t = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    n, n_pos = int(y.size), int(y.sum())
    notes = []
    out: dict[str, Any] = {"n": n, "n_pos": n_pos, "prevalence": n_pos / n if n else math.nan}
    if n == 0:
        notes.append("no rows with a label and a prediction")
    if 0 < n_pos < n:
        out["auroc"] = float(roc_auc_score(y, p))
        out["aupr"] = float(average_precision_score(y, p))
    else:
        out["auroc"] = out["aupr"] = math.nan
        if n:
            notes.append(
                f"only one class in the labels ({n_pos} positives of {n}); AUROC and AUPR undefined"
            )
    if n:
        out["brier"] = float(brier_score_loss(y, p, labels=[0, 1]))
        out["log_loss"] = float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))
    else:
        out["brier"] = out["log_loss"] = math.nan
    pred = p >= t
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = n_pos - tp
    out["threshold"] = t
    out["precision"] = tp / (tp + fp) if tp + fp else 0.0
    out["recall"] = tp / n_pos if n_pos else math.nan
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else math.nan
    out["n_flagged"] = tp + fp
    bins = reliability_bins(y, p, n_bins, strategy, min_count)
    out["ece"] = ece_from_bins(bins)
    out["reliability"] = bins
    out["n_dropped"] = dropped
    out["note"] = "; ".join(notes)
    return out


def poisson_deviance(y: Any, mu: Any) -> float:
    """Mean Poisson deviance ``2 * [y log(y / mu) - (y - mu)]``, with ``0 log 0 = 0`` (scikit-learn's).

    ``mu`` is floored at 1e-12 so a zero prediction for a positive count is finite but large.
    """
    y, mu, _ = _finite_pair(y, mu)
    if y.size == 0:
        return math.nan
    return float(mean_poisson_deviance(y, np.maximum(mu, _EPS)))


def count_metrics(y: Any, mu: Any) -> dict[str, Any]:
    """Metrics of expected counts (a Poisson rate per crop).

    Returns:
        ``n``, ``mae``, ``rmse``, ``poisson_deviance`` (mean), ``d2`` (fraction of the deviance
        of the constant ``mean(y)`` that the predictions explain; nan when that is 0),
        ``crps`` (mean CRPS of Poisson(``mu``) forecasts, see
        :func:`~riotvit.train.forecast_metrics.crps_poisson`),
        ``mean_pred``, ``mean_obs``, ``n_dropped`` and ``note``.
    """
    y, mu, dropped = _finite_pair(y, mu)
    n = int(y.size)
    if n == 0:
        nan = math.nan
        return {
            "n": 0,
            "mae": nan,
            "rmse": nan,
            "poisson_deviance": nan,
            "d2": nan,
            "crps": nan,
            "mean_pred": nan,
            "mean_obs": nan,
            "n_dropped": dropped,
            "note": "no rows with a count and a prediction",
        }
    dev = poisson_deviance(y, mu)
    null = poisson_deviance(y, np.full_like(y, y.mean()))
    return {
        "n": n,
        "mae": float(np.mean(np.abs(y - mu))),
        "rmse": float(np.sqrt(np.mean((y - mu) ** 2))),
        "poisson_deviance": dev,
        "d2": 1.0 - dev / null if null > 0 else math.nan,
        "crps": float(np.nanmean(crps_poisson(np.maximum(y, 0), np.maximum(mu, 0)))),
        "mean_pred": float(mu.mean()),
        "mean_obs": float(y.mean()),
        "n_dropped": dropped,
        "note": "",
    }


def ordinal_metrics(y: Any, pred: Any, num_classes: int | None = None) -> dict[str, Any]:
    """Metrics of an ordinal class (``crowd_size``: 0..K-1).

    Args:
        y: true classes (NaN rows dropped).
        pred: predicted classes (N,) or class probabilities (N, K); with probabilities the
            predicted class is the arg-max and ``mae_expected`` uses the expected class.
        num_classes: K; inferred from the data when None.

    Returns:
        ``n``, ``accuracy``, ``mae`` (in classes), ``within_one`` (share off by at most one
        class), ``mae_expected`` (nan without probabilities), ``confusion`` (K x K, rows are
        true classes), ``n_dropped`` and ``note``.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64)
    probs = pred if pred.ndim == 2 else None
    if probs is not None:
        keep = np.isfinite(y) & np.isfinite(probs).all(axis=1)
        probs = probs[keep]
        cls = probs.argmax(axis=1).astype(np.int64)
        expected = probs @ np.arange(probs.shape[1], dtype=np.float64)
    else:
        keep = np.isfinite(y) & np.isfinite(pred.reshape(-1))
        cls = np.rint(pred.reshape(-1)[keep]).astype(np.int64)
        expected = None
    dropped = int(y.size - keep.sum())
    yi = np.rint(y[keep]).astype(np.int64)
    n = int(yi.size)
    k = num_classes or (
        probs.shape[1] if probs is not None else int(max(yi.max(initial=0), cls.max(initial=0)) + 1)
    )
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.clip(yi, 0, k - 1), np.clip(cls, 0, k - 1)), 1)
    if n == 0:
        nan = math.nan
        return {
            "n": 0,
            "accuracy": nan,
            "mae": nan,
            "within_one": nan,
            "mae_expected": nan,
            "confusion": confusion.tolist(),
            "n_dropped": dropped,
            "note": "no rows with a class and a prediction",
        }
    err = np.abs(yi - cls)
    return {
        "n": n,
        "accuracy": float(np.mean(err == 0)),
        "mae": float(err.mean()),
        "within_one": float(np.mean(err <= 1)),
        "mae_expected": float(np.mean(np.abs(yi - expected))) if expected is not None else math.nan,
        "confusion": confusion.tolist(),
        "n_dropped": dropped,
        "note": "",
    }


def evaluate_heads(
    targets: Mapping[str, Any],
    preds: Mapping[str, Any],
    threshold: float | None = None,
    n_bins: int = ECE_BINS,
    num_classes: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of every head that has both a target and a prediction.

    Args:
        targets: ``riot`` (0/1), ``crowd_size`` (class), any other key a count (``event_count``,
            ``fatalities``, ``count_<type>``).
        preds: same keys; ``riot`` a calibrated probability, counts an expected count (rate),
            ``crowd_size`` classes (N,) or class probabilities (N, K). Not raw logits.
        threshold: the riot decision threshold (chosen on validation data).
        n_bins: ECE bins.
        num_classes: crowd-size classes K.

    Returns:
        ``{head: metrics}`` in the order of ``preds``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, pred in preds.items():
        if name not in targets:
            continue
        if name == "riot":
            out[name] = binary_metrics(targets[name], pred, threshold, n_bins)
        elif name == "crowd_size":
            out[name] = ordinal_metrics(targets[name], pred, num_classes)
        else:
            out[name] = count_metrics(targets[name], pred)
    return out


def metrics_by_group(
    df: pd.DataFrame,
    group_col: str,
    y_col: str,
    p_col: str,
    threshold: float | None = None,
    count_col: str | None = None,
    mu_col: str | None = None,
    n_bins: int = ECE_BINS,
) -> dict[Any, dict[str, dict[str, Any]]]:
    """:func:`evaluate_heads` per value of ``group_col`` (a fold, a split, a region).

    Args:
        df: one row per crop with the labels and predictions.
        group_col: column to group by; rows where it is NaN are skipped.
        y_col: riot label column; p_col: riot probability column.
        threshold: riot decision threshold.
        count_col: optional observed count column; mu_col: its expected-count column.
        n_bins: ECE bins.

    Returns:
        ``{group value: {"riot": ..., "event_count": ...}}`` sorted by group value (keys are
        Python scalars). The count head is reported under ``count_col``'s name.
    """
    out: dict[Any, dict[str, dict[str, Any]]] = {}
    for key, part in df.groupby(group_col, sort=True, dropna=True):
        key = key.item() if hasattr(key, "item") else key
        targets: dict[str, Any] = {"riot": part[y_col].to_numpy()}
        preds: dict[str, Any] = {"riot": part[p_col].to_numpy()}
        if count_col is not None and mu_col is not None:
            targets[count_col] = part[count_col].to_numpy()
            preds[count_col] = part[mu_col].to_numpy()
        out[key] = evaluate_heads(targets, preds, threshold, n_bins)
    return out
