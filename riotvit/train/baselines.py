"""Baselines on the same folds as the model.

Three baselines frame the model's numbers:

- **prevalence**: the training base rate for every crop (and the mean training count). Its
  AUPR equals the test prevalence, so "AUPR lift over prevalence" reads as "times better than
  chance".
- **persistence**: "what happened recently happens again". Given a 0/1 column such as
  ``persist_riot`` (the crop had a riot in the ``horizon`` days before the forecast origin), the
  probability is the training riot rate of the crops with that value (two numbers), and the
  count the training mean count of that group. Scored only when the column is present.
- **history_census**: a scikit-learn model on the ``hist_*`` and ``census_*`` columns only (no
  imagery): logistic regression on median-imputed (+ missing indicators), range-clipped and
  standardised features, with an L2-penalised Poisson GLM for ``event_count`` whose
  predictions are clipped to ``[0, 2 x max training count]``; or gradient boosting (NaN
  native). The logistic kind exports to a JSON-safe dict (``to_dict`` / ``from_dict``).

All are scored on the splits of :mod:`riotvit.train.splits`, the rows the model is scored on.

Size: ~500 lines: three baselines, the numpy preprocessing that makes the logistic one storable
without pickle, its to_dict / from_dict validation, and evaluate_baselines; splitting them would
spread one evaluation contract over several modules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riotvit.errors import BundleError, ConfigError, suggest
from riotvit.train.calibration import fit_calibrator, logit, sigmoid
from riotvit.train.metrics import ECE_BINS, choose_threshold, evaluate_heads
from riotvit.train.splits import Split, make_splits, require_columns

FEATURE_PREFIXES = ("hist_", "census_")
"""Metadata columns the history-plus-census baseline uses."""

BASELINE_NAMES = ("prevalence", "persistence", "history_census")
"""Model keys of the baselines in every results dict (persistence only with its column)."""

BASELINE_KINDS = ("logistic", "gbm")
"""Estimators of the history-plus-census baseline."""

PERSISTENCE_COLUMN = "persist_riot"
"""Default persistence column: 1 when the crop had a riot in the horizon before the origin."""

POISSON_ALPHA = 1e-2
"""L2 penalty of the Poisson count GLM on standardised features (scikit-learn's ``alpha``)."""

COUNT_CLIP_FACTOR = 2.0
"""Expected counts are clipped to ``[0, COUNT_CLIP_FACTOR x the largest training count]``: an
outlying feature value must not turn a log-linear model into a forecast of thousands of events."""

SINGLE_THREAD_ROWS = 50_000
"""Below this many rows the baseline runs on one BLAS / OpenMP thread: thread start-up costs
more than it saves on small tables, and spinning OpenMP workers slow a busy machine down a lot."""

STORE_VERSION = 1
"""Format version of :meth:`HistoryCensusBaseline.to_dict`."""


class BaselineStoreError(ConfigError):
    """A baseline that cannot be stored without pickle was asked to be stored."""


def _threads(n_rows: int) -> contextlib.AbstractContextManager:
    if n_rows >= SINGLE_THREAD_ROWS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def feature_columns(samples: pd.DataFrame) -> list[str]:
    """The ``hist_*`` and ``census_*`` columns, in table order."""
    return [c for c in samples.columns if str(c).startswith(FEATURE_PREFIXES)]


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)


def prevalence_baseline(train_y: Any) -> float:
    """The training base rate (mean of the finite 0/1 labels); nan when there are none."""
    y = np.asarray(train_y, dtype=np.float64).reshape(-1)
    y = y[np.isfinite(y)]
    return float((y > 0.5).mean()) if y.size else math.nan


def mean_count(train_counts: Any) -> float:
    """The training mean count (finite, non-negative values); nan when there are none."""
    c = np.asarray(train_counts, dtype=np.float64).reshape(-1)
    c = c[np.isfinite(c) & (c >= 0)]
    return float(c.mean()) if c.size else math.nan


class PersistenceBaseline:
    """Riot probability and count from one 0/1 persistence column (non-zero counts as 1).

    ``fit`` stores, for persistence 0 and 1, the training riot rate and mean count of the
    crops in that group. A group without training crops, and a crop whose persistence is
    missing, get the overall training rate / mean count (``note`` says so).
    """

    def __init__(self, column: str = PERSISTENCE_COLUMN):
        self.column = column
        self.rate_: dict[int, float] = {}
        self.count_: dict[int, float] = {}
        self.n_: dict[int, int] = {}
        self.const_p_ = self.const_mu_ = math.nan
        self.note = ""

    def fit(
        self, df: pd.DataFrame, y_col: str = "riot", count_col: str | None = "event_count"
    ) -> PersistenceBaseline:
        """Group the training rows by persistence; returns self."""
        require_columns(df, [self.column, y_col])
        pers, y = _numeric(df, self.column), _numeric(df, y_col)
        has_c = count_col is not None and count_col in df.columns
        c = _numeric(df, count_col) if has_c else np.full(len(df), np.nan)
        self.const_p_, self.const_mu_ = prevalence_baseline(y), mean_count(c)
        notes = []
        for g in (0, 1):
            rows = np.isfinite(pers) & ((pers > 0.5) == bool(g))
            self.n_[g] = int((rows & np.isfinite(y)).sum())
            self.rate_[g] = prevalence_baseline(y[rows]) if self.n_[g] else self.const_p_
            mu = mean_count(c[rows])
            self.count_[g] = mu if math.isfinite(mu) else self.const_mu_
            if not self.n_[g]:
                notes.append(f"no training crops with {self.column} = {g}; using the prevalence")
        self.note = "; ".join(notes)
        return self

    def _by_group(self, df: pd.DataFrame, values: dict[int, float], default: float) -> np.ndarray:
        pers = _numeric(df, self.column)
        return np.where(np.isfinite(pers), np.where(pers > 0.5, values[1], values[0]), default)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """P(riot) per row: the training rate of the row's persistence group."""
        return self._by_group(df, self.rate_, self.const_p_)

    def predict_count(self, df: pd.DataFrame) -> np.ndarray:
        """Expected count per row: the training mean count of the row's persistence group."""
        return self._by_group(df, self.count_, self.const_mu_)


class _Prep:
    """Median imputation + missing indicators + clipping to the training range + standardising.

    Plain arrays, so the fitted state is a JSON-safe dict. Indicators are added for features
    that had a missing value in training (scikit-learn's ``"missing-only"``).
    """

    def __init__(self, medians: Any = (), indicators: Any = (), low: Any = (), high: Any = (),
                 means: Any = (), scales: Any = ()):
        self.medians, self.low, self.high, self.means, self.scales = (
            np.asarray(v, dtype=np.float64) for v in (medians, low, high, means, scales)
        )
        self.indicators = np.asarray(indicators, dtype=np.int64)

    def fit(self, x: np.ndarray) -> _Prep:
        finite = np.isfinite(x)
        with np.errstate(all="ignore"):
            col = np.where(finite, x, np.nan)
            empty = ~finite.any(axis=0)
            safe = np.where(empty, 0.0, np.nanmedian(np.where(empty, 0.0, col), axis=0))
            self.medians = safe
            self.low = np.where(empty, 0.0, np.nanmin(np.where(empty, 0.0, col), axis=0))
            self.high = np.where(empty, 0.0, np.nanmax(np.where(empty, 0.0, col), axis=0))
        self.indicators = np.flatnonzero((~finite).any(axis=0))
        z = self._raw(x)
        self.means = z.mean(axis=0)
        sd = z.std(axis=0)
        self.scales = np.where(sd > 0, sd, 1.0)
        return self

    def _raw(self, x: np.ndarray) -> np.ndarray:
        missing = ~np.isfinite(x)
        filled = np.clip(np.where(missing, self.medians, x), self.low, self.high)
        return np.hstack([filled, missing[:, self.indicators].astype(np.float64)])

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (self._raw(x) - self.means) / self.scales

    def to_dict(self) -> dict[str, list]:
        return {k: getattr(self, k).tolist()
                for k in ("medians", "indicators", "low", "high", "means", "scales")}


def _glm(est: Any) -> dict[str, Any]:
    return {"coef": np.asarray(est.coef_, dtype=np.float64).reshape(-1).tolist(),
            "intercept": float(np.asarray(est.intercept_).reshape(-1)[0])}


def _linear(glm: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    return x @ np.asarray(glm["coef"], dtype=np.float64) + float(glm["intercept"])


def _num_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


class HistoryCensusBaseline:
    """Riot probability and expected event count from history and census columns only.

    Args:
        kind: ``"logistic"`` (median imputation + missing indicators + clipping to the training
            range + standardising, then logistic regression and a Poisson GLM with L2 penalty
            :data:`POISSON_ALPHA`) or ``"gbm"`` (histogram gradient boosting with log-loss /
            Poisson loss; NaN handled natively).
        features: columns to use (default: :func:`feature_columns` of the training table).
        random_state: seed of every estimator.

    When the training data has one class or no features, the classifier falls back to the
    training prevalence (and the regressor to the mean count) and ``note`` says so. Expected
    counts are clipped to ``[0, count_max_]`` (:data:`COUNT_CLIP_FACTOR` x the largest
    training count). The logistic kind predicts from its stored parameters alone, so
    ``from_dict(to_dict())`` predicts identically.
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
        self.prep_: _Prep | None = None
        self.classifier_: Any = None  # logistic: {"coef", "intercept"}; gbm: the estimator
        self.regressor_: Any = None
        self.const_p_ = math.nan
        self.const_mu_ = math.nan
        self.count_max_ = math.inf

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
        from sklearn.linear_model import LogisticRegression, PoissonRegressor

        return (
            LogisticRegression(C=1.0, max_iter=2000),
            PoissonRegressor(alpha=POISSON_ALPHA, max_iter=1000),
        )

    def _x(self, df: pd.DataFrame) -> np.ndarray:
        require_columns(df, self.features or [])
        x = df[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        return self.prep_.transform(x) if self.prep_ is not None else x

    def fit(
        self, df: pd.DataFrame, y_col: str = "riot", count_col: str | None = "event_count"
    ) -> HistoryCensusBaseline:
        """Fit on the training rows of ``df``; rows with a NaN target are skipped per target."""
        if self.features is None:
            self.features = feature_columns(df)
        require_columns(df, [y_col])
        y = _numeric(df, y_col)
        ok = np.isfinite(y)
        self.const_p_ = prevalence_baseline(y)
        notes = []
        clf, reg = self._estimators()
        self.prep_ = None  # _x gives raw features until the preprocessing is fitted
        if self.kind == "logistic" and self.features:
            self.prep_ = _Prep().fit(self._x(df))
        x = self._x(df) if self.features else None
        logistic = self.kind == "logistic"
        n_pos = int((y[ok] > 0.5).sum())
        if x is None:
            notes.append("no hist_/census_ columns; predicting the training prevalence")
        elif n_pos in (0, int(ok.sum())):
            notes.append(
                f"training labels have one class ({n_pos} positives of {int(ok.sum())}); predicting the prevalence"
            )
        else:
            with _threads(len(df)):
                clf = clf.fit(x[ok], (y[ok] > 0.5).astype(np.int64))
            self.classifier_ = _glm(clf) if logistic else clf
        if count_col is not None and count_col in df.columns:
            c = _numeric(df, count_col)
            okc = np.isfinite(c) & (c >= 0)
            self.const_mu_ = mean_count(c)
            if okc.any():
                self.count_max_ = COUNT_CLIP_FACTOR * float(c[okc].max())
            if x is not None and okc.any() and c[okc].sum() > 0:
                with _threads(len(df)):
                    reg = reg.fit(x[okc], c[okc])
                self.regressor_ = _glm(reg) if logistic else reg
        self.note = "; ".join(notes)
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """P(riot) per row."""
        if self.classifier_ is None:
            return np.full(len(df), self.const_p_)
        if self.kind == "logistic":
            return sigmoid(_linear(self.classifier_, self._x(df)))
        with _threads(len(df)):
            return self.classifier_.predict_proba(self._x(df))[:, 1]

    def predict_count(self, df: pd.DataFrame) -> np.ndarray:
        """Expected event count per row, in ``[0, count_max_]`` (the training mean when no
        regressor was fitted)."""
        if self.regressor_ is None:
            return np.full(len(df), self.const_mu_)
        if self.kind == "logistic":
            eta = _linear(self.regressor_, self._x(df))
            mu = np.exp(np.minimum(eta, math.log(max(self.count_max_, 1e-300))))
        else:
            with _threads(len(df)):
                mu = self.regressor_.predict(self._x(df))
        return np.clip(mu, 0.0, self.count_max_)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe parameters of the fitted logistic baseline (no pickle): feature names,
        imputation medians, missing indicators, clip range, scaler means / scales, and the
        coefficients and intercept of the classifier and of the Poisson count model.

        Raises:
            BaselineStoreError: the ``gbm`` kind (its trees are not stored).
        """
        if self.kind != "logistic":
            raise BaselineStoreError(
                f"baseline kind '{self.kind}' cannot be stored in a bundle: only the logistic "
                "history-plus-census baseline can; set eval.baseline to logistic"
            )
        return {
            "kind": self.kind,
            "version": STORE_VERSION,
            "features": list(self.features or []),
            "prep": self.prep_.to_dict() if self.prep_ is not None else None,
            "classifier": self.classifier_,
            "regressor": self.regressor_,
            "const_p": _num_or_none(self.const_p_),
            "const_mu": _num_or_none(self.const_mu_),
            "count_max": _num_or_none(self.count_max_),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HistoryCensusBaseline:
        """Rebuild a baseline from :meth:`to_dict`.

        Raises:
            BundleError: not a stored logistic baseline, or parameters missing / inconsistent.
        """
        try:
            if d.get("kind") != "logistic" or d.get("version") != STORE_VERSION:
                raise ValueError(f"kind {d.get('kind')!r} version {d.get('version')!r}")
            m = cls("logistic", features=[str(f) for f in d["features"]])
            m.prep_ = _Prep(**d["prep"]) if d["prep"] is not None else None
            width = len(m.features or []) + (m.prep_.indicators.size if m.prep_ is not None else 0)
            for key in ("classifier", "regressor"):
                glm = d[key]
                if glm is not None:
                    glm = {"coef": [float(v) for v in glm["coef"]], "intercept": float(glm["intercept"])}
                    if len(glm["coef"]) != width:
                        raise ValueError(f"{key} has {len(glm['coef'])} coefficients for {width} inputs")
                setattr(m, f"{key}_", glm)
            if m.prep_ is not None and {m.prep_.medians.size, m.prep_.means.size - m.prep_.indicators.size} != {len(m.features)}:
                raise ValueError("prep arrays do not match the features")
            nan = math.nan
            m.const_p_ = nan if d["const_p"] is None else float(d["const_p"])
            m.const_mu_ = nan if d["const_mu"] is None else float(d["const_mu"])
            m.count_max_ = math.inf if d["count_max"] is None else float(d["count_max"])
            m.note = str(d.get("note", ""))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise BundleError(
                f"stored history-plus-census baseline is invalid ({e}); retrain to store it again"
            ) from None
        return m


def _targets(part: pd.DataFrame, y_col: str, count_col: str | None) -> dict[str, np.ndarray]:
    t = {"riot": pd.to_numeric(part[y_col], errors="coerce").to_numpy(np.float64)}
    if count_col is not None and count_col in part.columns:
        t[count_col] = pd.to_numeric(part[count_col], errors="coerce").to_numpy(np.float64)
    return t


def _score(
    t_val: dict[str, np.ndarray], t_test: dict[str, np.ndarray], p_val: np.ndarray,
    preds: dict[str, np.ndarray], threshold_method: str, n_bins: int, info: dict[str, Any],
) -> dict[str, Any]:
    thr = choose_threshold(t_val["riot"], p_val, threshold_method)
    res: dict[str, Any] = evaluate_heads(t_test, preds, thr, n_bins)
    res["info"] = info
    return res


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
    persistence_column: str | None = PERSISTENCE_COLUMN,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fit and score the baselines on every split.

    For each split the baselines train on ``split.train``, pick the decision threshold (after
    the optional calibration) on ``split.val`` and are scored on ``split.test``.

    Args:
        samples: the samples table (``fold``, ``near_folds``, targets, ``hist_*``/``census_*``).
        folds: spatial test folds (default all); ignored when ``splits`` is given.
        splits: precomputed splits (e.g. the trainer's, so both use identical rows).
        kind: history-plus-census estimator, ``"logistic"`` or ``"gbm"``.
        temporal: add the temporal split when present (ignored with ``splits``).
        y_col: riot label column; count_col: count column for the count baselines (or None).
        threshold_method: see :func:`~riotvit.train.metrics.choose_threshold`.
        calibration: calibrate the history-plus-census probabilities on validation data
            (any :data:`~riotvit.train.calibration.CALIBRATION_METHODS`); pass the model's
            method for a like-for-like Brier / ECE comparison.
        n_bins: ECE bins.
        random_state: estimator seed.
        persistence_column: the 0/1 persistence column; the ``persistence`` baseline is scored
            when ``samples`` has it (None: never).

    Returns:
        ``{split name: {"prevalence": heads, ["persistence": heads,] "history_census": heads}}``
        where ``heads`` is :func:`~riotvit.train.metrics.evaluate_heads` output (``riot``,
        ``count_col``) plus ``info`` (sizes, folds, threshold method, calibration, kind, note).
    """
    require_columns(samples, [y_col])
    if splits is None:
        splits = make_splits(samples, folds, temporal=temporal)
    count_col = count_col if count_col is not None and count_col in samples.columns else None
    persist = persistence_column is not None and persistence_column in samples.columns
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
        out: dict[str, dict[str, Any]] = {}

        prev = prevalence_baseline(train[y_col])
        preds: dict[str, np.ndarray] = {"riot": np.full(len(test), prev)}
        if count_col is not None:
            preds[count_col] = np.full(len(test), mean_count(train[count_col]))
        out["prevalence"] = _score(t_val, t_test, np.full(len(val), prev), preds, threshold_method,
                                   n_bins, {**base_info, "calibration": "none", "note": ""})

        if persist:
            pb = PersistenceBaseline(persistence_column).fit(train, y_col, count_col)
            preds = {"riot": pb.predict_proba(test)}
            if count_col is not None:
                preds[count_col] = pb.predict_count(test)
            info = {**base_info, "calibration": "none", "column": persistence_column,
                    "rate": {str(g): pb.rate_[g] for g in (0, 1)},
                    "n_train_group": {str(g): pb.n_[g] for g in (0, 1)}, "note": pb.note}
            out["persistence"] = _score(t_val, t_test, pb.predict_proba(val), preds,
                                        threshold_method, n_bins, info)

        model = HistoryCensusBaseline(kind, random_state=random_state).fit(train, y_col, count_col)
        p_val, p_test = model.predict_proba(val), model.predict_proba(test)
        cal = fit_calibrator(calibration, logit(p_val), t_val["riot"])
        if calibration != "none":
            p_val, p_test = cal.transform(logit(p_val)), cal.transform(logit(p_test))
        preds = {"riot": p_test}
        if count_col is not None:
            preds[count_col] = model.predict_count(test)
        info = {
            **base_info,
            "calibration": cal.method,
            "estimator": kind,
            "features": list(model.features or []),
            "note": "; ".join(n for n in (model.note, cal.note) if n),
        }
        out["history_census"] = _score(t_val, t_test, p_val, preds, threshold_method, n_bins, info)
        results[sp.name] = out
    return results
