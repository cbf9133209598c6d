"""Baselines on the same folds as the model.

Two baselines frame the model's numbers:

- **prevalence**: the training base rate for every crop (and the mean training count). Its
  AUPR equals the test prevalence, so "AUPR lift over prevalence" reads as "times better than
  chance".
- **history_census**: a scikit-learn model on the ``hist_*`` and ``census_*`` columns only (no
  imagery): logistic regression (median imputation + missing indicators + scaling) or
  gradient boosting (which takes NaN natively), with a Poisson regressor for ``event_count``.

Both are scored on the splits of :mod:`riotvit.train.splits`, the rows the model is scored on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riotvit.errors import ConfigError, suggest
from riotvit.train.calibration import fit_calibrator, logit
from riotvit.train.metrics import ECE_BINS, choose_threshold, evaluate_heads
from riotvit.train.splits import Split, make_splits, require_columns

FEATURE_PREFIXES = ("hist_", "census_")
"""Metadata columns the history-plus-census baseline uses."""

BASELINE_NAMES = ("prevalence", "history_census")
"""Model keys of the two baselines in every results dict."""

BASELINE_KINDS = ("logistic", "gbm")
"""Estimators of the history-plus-census baseline."""

SINGLE_THREAD_ROWS = 50_000
"""Below this many rows the baseline runs on one BLAS / OpenMP thread: thread start-up costs
more than it saves on small tables, and spinning OpenMP workers slow a busy machine down a lot."""


def _threads(n_rows: int) -> contextlib.AbstractContextManager:
    if n_rows >= SINGLE_THREAD_ROWS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def feature_columns(samples: pd.DataFrame) -> list[str]:
    """The ``hist_*`` and ``census_*`` columns, in table order."""
    return [c for c in samples.columns if str(c).startswith(FEATURE_PREFIXES)]


def prevalence_baseline(train_y: Any) -> float:
    """The training base rate (mean of the finite 0/1 labels); nan when there are none."""
    y = np.asarray(train_y, dtype=np.float64).reshape(-1)
    y = y[np.isfinite(y)]
    return float((y > 0.5).mean()) if y.size else math.nan


class HistoryCensusBaseline:
    """Riot probability and expected event count from history and census columns only.

    Args:
        kind: ``"logistic"`` (median imputation + missing indicators + standard scaling +
            logistic regression / Poisson GLM) or ``"gbm"`` (histogram gradient boosting with
            log-loss / Poisson loss; NaN handled natively).
        features: columns to use (default: :func:`feature_columns` of the training table).
        random_state: seed of every estimator.

    When the training data has one class or no features, the classifier falls back to the
    training prevalence (and the regressor to the mean count) and ``note`` says so.
    """

    def __init__(
        self, kind: str = "logistic", features: Sequence[str] | None = None, random_state: int = 0
    ):
        if kind not in BASELINE_KINDS:
            raise ConfigError(
                f"baseline kind '{kind}' is unknown{suggest(kind, BASELINE_KINDS)}; use one of "
                f"{', '.join(BASELINE_KINDS)}"
            )
        self.kind = kind
        self.features = list(features) if features is not None else None
        self.random_state = random_state
        self.note = ""
        self.classifier_: Any = None
        self.regressor_: Any = None
        self.const_p_ = math.nan
        self.const_mu_ = math.nan

    def _estimators(self) -> tuple[Any, Any]:
        if self.kind == "gbm":
            from sklearn.ensemble import (
                HistGradientBoostingClassifier,
                HistGradientBoostingRegressor,
            )

            kw = dict(
                max_iter=150,
                learning_rate=0.05,
                max_leaf_nodes=15,
                min_samples_leaf=20,
                l2_regularization=1.0,
                early_stopping=False,
                random_state=self.random_state,
            )
            return HistGradientBoostingClassifier(**kw), HistGradientBoostingRegressor(
                loss="poisson", **kw
            )
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, PoissonRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        def prep() -> list[Any]:
            return [
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
            ]

        return (
            make_pipeline(*prep(), LogisticRegression(C=1.0, max_iter=2000)),
            make_pipeline(*prep(), PoissonRegressor(alpha=1e-4, max_iter=1000)),
        )

    def _x(self, df: pd.DataFrame) -> np.ndarray:
        require_columns(df, self.features or [])
        return df[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)

    def fit(
        self, df: pd.DataFrame, y_col: str = "riot", count_col: str | None = "event_count"
    ) -> HistoryCensusBaseline:
        """Fit on the training rows of ``df``; rows with a NaN target are skipped per target."""
        if self.features is None:
            self.features = feature_columns(df)
        require_columns(df, [y_col])
        y = pd.to_numeric(df[y_col], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(y)
        self.const_p_ = prevalence_baseline(y)
        notes = []
        clf, reg = self._estimators()
        x = self._x(df) if self.features else None
        n_pos = int((y[ok] > 0.5).sum())
        if x is None:
            notes.append("no hist_/census_ columns; predicting the training prevalence")
        elif n_pos in (0, int(ok.sum())):
            notes.append(
                f"training labels have one class ({n_pos} positives of {int(ok.sum())}); predicting the prevalence"
            )
        else:
            with _threads(len(df)):
                self.classifier_ = clf.fit(x[ok], (y[ok] > 0.5).astype(np.int64))
        if count_col is not None and count_col in df.columns:
            c = pd.to_numeric(df[count_col], errors="coerce").to_numpy(np.float64)
            okc = np.isfinite(c) & (c >= 0)
            self.const_mu_ = float(c[okc].mean()) if okc.any() else math.nan
            if x is not None and okc.any() and c[okc].sum() > 0:
                with _threads(len(df)):
                    self.regressor_ = reg.fit(x[okc], c[okc])
        self.note = "; ".join(notes)
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """P(riot) per row."""
        if self.classifier_ is None:
            return np.full(len(df), self.const_p_)
        with _threads(len(df)):
            return self.classifier_.predict_proba(self._x(df))[:, 1]

    def predict_count(self, df: pd.DataFrame) -> np.ndarray:
        """Expected event count per row (the training mean when no regressor was fitted)."""
        if self.regressor_ is None:
            return np.full(len(df), self.const_mu_)
        with _threads(len(df)):
            return np.maximum(self.regressor_.predict(self._x(df)), 0.0)


def _targets(part: pd.DataFrame, y_col: str, count_col: str | None) -> dict[str, np.ndarray]:
    t = {"riot": pd.to_numeric(part[y_col], errors="coerce").to_numpy(np.float64)}
    if count_col is not None and count_col in part.columns:
        t[count_col] = pd.to_numeric(part[count_col], errors="coerce").to_numpy(np.float64)
    return t


def evaluate_baselines(
    samples: pd.DataFrame,
    folds: Sequence[int] | None = None,
    *,
    splits: Sequence[Split] | None = None,
    kind: str = "logistic",
    temporal: bool = True,
    y_col: str = "riot",
    count_col: str | None = "event_count",
    threshold_method: str = "f1",
    calibration: str = "none",
    n_bins: int = ECE_BINS,
    random_state: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fit and score both baselines on every split.

    For each split the baselines train on ``split.train``, pick the F1 threshold (after the
    optional calibration) on ``split.val`` and are scored on ``split.test``.

    Args:
        samples: the samples table (``fold``, ``near_folds``, targets, ``hist_*``/``census_*``).
        folds: spatial test folds (default all); ignored when ``splits`` is given.
        splits: precomputed splits (e.g. the trainer's, so both use identical rows).
        kind: history-plus-census estimator, ``"logistic"`` or ``"gbm"``.
        temporal: add the temporal split when present (ignored with ``splits``).
        y_col: riot label column; count_col: count column for the count baseline (or None).
        threshold_method: see :func:`~riotvit.train.metrics.choose_threshold`.
        calibration: calibrate the history-plus-census probabilities on validation data
            (``"none"``, ``"temperature"``, ``"isotonic"``); pass the model's method for a
            like-for-like Brier / ECE comparison.
        n_bins: ECE bins.
        random_state: estimator seed.

    Returns:
        ``{split name: {"prevalence": heads, "history_census": heads}}`` where ``heads`` is
        :func:`~riotvit.train.metrics.evaluate_heads` output (``riot``, ``count_col``) plus
        ``info`` (sizes, folds, threshold method, calibration, kind, note).
    """
    require_columns(samples, [y_col])
    if splits is None:
        splits = make_splits(samples, folds, temporal=temporal)
    count_col = count_col if count_col is not None and count_col in samples.columns else None
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for sp in splits:
        train, val, test = samples[sp.train], samples[sp.val], samples[sp.test]
        t_val, t_test = _targets(val, y_col, count_col), _targets(test, y_col, count_col)
        base_info = {
            "split": sp.name,
            "kind_of_split": sp.kind,
            "test_fold": sp.test_fold,
            "val_fold": sp.val_fold,
            **sp.sizes(),
            "threshold_method": threshold_method,
        }

        prev = prevalence_baseline(train[y_col])
        preds: dict[str, np.ndarray] = {"riot": np.full(len(test), prev)}
        if count_col is not None:
            mu = pd.to_numeric(train[count_col], errors="coerce").mean()
            preds[count_col] = np.full(len(test), float(mu))
        thr = choose_threshold(t_val["riot"], np.full(len(val), prev), threshold_method)
        prev_res: dict[str, Any] = evaluate_heads(t_test, preds, thr, n_bins)
        prev_res["info"] = {**base_info, "calibration": "none", "note": ""}

        model = HistoryCensusBaseline(kind, random_state=random_state).fit(train, y_col, count_col)
        p_val, p_test = model.predict_proba(val), model.predict_proba(test)
        cal = fit_calibrator(calibration, logit(p_val), t_val["riot"])
        if calibration != "none":
            p_val, p_test = cal.transform(logit(p_val)), cal.transform(logit(p_test))
        preds = {"riot": p_test}
        if count_col is not None:
            preds[count_col] = model.predict_count(test)
        thr = choose_threshold(t_val["riot"], p_val, threshold_method)
        hc_res: dict[str, Any] = evaluate_heads(t_test, preds, thr, n_bins)
        note = "; ".join(n for n in (model.note, cal.note) if n)
        hc_res["info"] = {
            **base_info,
            "calibration": cal.method,
            "estimator": kind,
            "features": list(model.features or []),
            "note": note,
        }
        results[sp.name] = {"prevalence": prev_res, "history_census": hc_res}
    return results
