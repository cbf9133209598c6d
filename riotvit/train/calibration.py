"""Probability calibration of the riot head, fitted on validation data and stored as JSON.

Every calibrator takes the model's raw riot **logits** and returns probabilities:

- :class:`TemperatureScaler`: ``sigmoid(z / T)``; ``T`` minimises the validation negative
  log-likelihood (Guo et al. 2017). One float in ``bundle.json``.
- :class:`IsotonicCalibrator`: a monotone step-linear map of ``sigmoid(z)`` fitted with
  scikit-learn's ``IsotonicRegression``, stored as its threshold arrays and applied with
  ``np.interp`` (clipped outside the fitted range), so no pickle is ever needed.
- :class:`PlattCalibrator`: ``sigmoid(a z + b)`` (Platt 1999), fitted by logistic regression on
  the logit with a tiny L2 penalty. Two floats.
- :class:`IdentityCalibrator`: ``sigmoid(z)``; used for ``method="none"`` and as the fallback
  when the validation data cannot fit a calibrator (a single class).

``method="auto"`` fits temperature, Platt and isotonic and keeps the one with the lowest
validation log-loss, **cross-fitted**: each candidate is fitted on K-1 folds of the validation
crops and scored on the held-out fold (isotonic scored on its own fitting rows would always
win). The winner is refitted on all validation crops; its ``to_dict()`` records
``chosen_by`` and every candidate's cross-fitted log-loss under ``candidates``.

A calibrator serialises with ``to_dict()`` and is rebuilt with :func:`calibrator_from_dict`.
Callers that hold probabilities (the baselines) pass ``logit(p)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit

from riotvit.errors import BundleError, ConfigError, suggest

CALIBRATION_METHODS = ("temperature", "platt", "isotonic", "auto", "none")
"""Values of the calibration option."""

STORED_METHODS = ("temperature", "platt", "isotonic", "none")
"""Methods a stored calibrator can have (``auto`` stores the method it chose)."""

AUTO_CANDIDATES = ("temperature", "platt", "isotonic")
"""What ``method="auto"`` chooses among; on a tie the earlier (simpler) one wins."""

AUTO_FOLDS = 5
"""Cross-fitting folds of ``method="auto"`` (fewer when a class has fewer crops)."""

AUTO_MIN_ROWS = 10
"""Below this many validation crops ``auto`` uses the temperature without choosing."""

PLATT_C = 1e4
"""Inverse L2 strength of the Platt fit: tiny, only so separable validation data stay finite."""

LOG_T_BOUNDS = (math.log(1e-2), math.log(1e2))
"""Search range of log T for the temperature."""

_P_CLIP = 1e-7


def sigmoid(z: Any) -> np.ndarray:
    """Numerically safe logistic function."""
    return expit(np.asarray(z, dtype=np.float64))


def logit(p: Any) -> np.ndarray:
    """Inverse of :func:`sigmoid`; ``p`` is clipped to ``[1e-7, 1 - 1e-7]`` first."""
    p = np.clip(np.asarray(p, dtype=np.float64), _P_CLIP, 1 - _P_CLIP)
    return np.log(p) - np.log1p(-p)


def _clean(logits: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"logits and labels differ in length: {z.size} vs {y.size}")
    keep = np.isfinite(z) & np.isfinite(y)
    return z[keep], (y[keep] > 0.5).astype(np.float64)


class Calibrator(Protocol):
    """What every calibrator offers."""

    method: str
    note: str
    selection: dict[str, Any] | None

    def fit(self, logits: Any, y: Any) -> Calibrator:
        """Fit on validation logits and 0/1 labels; returns self."""
        ...

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities of raw logits."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters (see :func:`calibrator_from_dict`)."""
        ...


class _Stored:
    """Note and ``auto`` selection record shared by every calibrator."""

    method = ""
    note = ""
    selection: dict[str, Any] | None = None

    def _tail(self) -> dict[str, Any]:
        return {"note": self.note, **(self.selection or {})}


class IdentityCalibrator(_Stored):
    """No calibration: ``sigmoid(z)``."""

    method = "none"

    def __init__(self, note: str = ""):
        self.note = note

    def fit(self, logits: Any, y: Any) -> IdentityCalibrator:
        """Nothing to fit; returns self."""
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """``sigmoid(logits)``."""
        return sigmoid(logits)

    def to_dict(self) -> dict[str, Any]:
        """``{"method": "none", "note": ...}``."""
        return {"method": self.method, **self._tail()}


class TemperatureScaler(_Stored):
    """``sigmoid(z / T)`` with ``T > 0`` fitted by minimising the validation NLL over log T.

    ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one. The
    ranking (AUROC, AUPR) is unchanged.
    """

    method = "temperature"

    def __init__(self, temperature: float = 1.0, note: str = ""):
        self.temperature = float(temperature)
        self.note = note

    @staticmethod
    def nll(log_t: float, z: np.ndarray, y: np.ndarray) -> float:
        """Mean binary negative log-likelihood of ``sigmoid(z / exp(log_t))``."""
        s = z * math.exp(-log_t)
        return float(-np.mean(y * log_expit(s) + (1 - y) * log_expit(-s)))

    def fit(self, logits: Any, y: Any) -> TemperatureScaler:
        """Fit T (bounded Brent search over log T in :data:`LOG_T_BOUNDS`); returns self."""
        z, y = _clean(logits, y)
        if z.size == 0:
            raise ValueError("no finite logits with labels to fit a temperature on")
        res = minimize_scalar(
            self.nll, bounds=LOG_T_BOUNDS, args=(z, y), method="bounded", options={"xatol": 1e-6}
        )
        self.temperature = float(math.exp(res.x))
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """``sigmoid(logits / T)``."""
        return sigmoid(np.asarray(logits, dtype=np.float64) / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """``{"method": "temperature", "temperature": T, "note": ...}``."""
        return {"method": self.method, "temperature": self.temperature, **self._tail()}


class IsotonicCalibrator(_Stored):
    """Monotone map of ``sigmoid(z)`` to the observed frequency (isotonic regression).

    Stored as the fitted ``x`` (uncalibrated probabilities) and ``y`` (calibrated) knots;
    applied with ``np.interp``, which holds the end values outside the knots (the same as
    scikit-learn's ``out_of_bounds="clip"``).
    """

    method = "isotonic"

    def __init__(self, x: Any = (0.0, 1.0), y: Any = (0.0, 1.0), note: str = ""):
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.note = note

    def fit(self, logits: Any, y: Any) -> IsotonicCalibrator:
        """Fit the isotonic map on validation logits and labels; returns self."""
        from sklearn.isotonic import IsotonicRegression

        z, yy = _clean(logits, y)
        if z.size == 0:
            raise ValueError("no finite logits with labels to fit an isotonic map on")
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(sigmoid(z), yy)
        self.x = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.y = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities: ``np.interp(sigmoid(logits), x, y)``."""
        p = sigmoid(logits)
        return np.interp(p, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        """``{"method": "isotonic", "x": [...], "y": [...], "note": ...}``."""
        return {
            "method": self.method,
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            **self._tail(),
        }


class PlattCalibrator(_Stored):
    """``sigmoid(a z + b)``: a logistic regression of the label on the raw logit.

    ``a`` rescales like ``1 / T`` and ``b`` shifts the base rate, so Platt also fixes a
    prevalence that differs between training and validation. Monotone for ``a > 0``.
    """

    method = "platt"

    def __init__(self, a: float = 1.0, b: float = 0.0, note: str = ""):
        self.a, self.b = float(a), float(b)
        self.note = note

    def fit(self, logits: Any, y: Any) -> PlattCalibrator:
        """Fit ``a`` and ``b`` (L2 with ``C = PLATT_C``, lbfgs); returns self."""
        from sklearn.linear_model import LogisticRegression

        z, yy = _clean(logits, y)
        if z.size == 0 or yy.min() == yy.max():
            raise ValueError("Platt scaling needs validation rows of both classes")
        lr = LogisticRegression(C=PLATT_C, max_iter=1000).fit(z[:, None], yy.astype(np.int64))
        self.a, self.b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """``sigmoid(a * logits + b)``."""
        return sigmoid(self.a * np.asarray(logits, dtype=np.float64) + self.b)

    def to_dict(self) -> dict[str, Any]:
        """``{"method": "platt", "a": a, "b": b, "note": ...}``."""
        return {"method": self.method, "a": self.a, "b": self.b, **self._tail()}


def _check_method(method: str) -> None:
    if method not in CALIBRATION_METHODS:
        raise ConfigError(
            f"calibration method '{method}' is unknown{suggest(method, CALIBRATION_METHODS)}; "
            f"use one of {', '.join(CALIBRATION_METHODS)}"
        )


_FACTORIES = {"temperature": TemperatureScaler, "platt": PlattCalibrator, "isotonic": IsotonicCalibrator}


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def cross_fitted_log_loss(
    z: np.ndarray, y: np.ndarray, methods: tuple[str, ...] = AUTO_CANDIDATES,
    n_folds: int = AUTO_FOLDS, seed: int = 0,
) -> dict[str, float]:
    """Out-of-fold log-loss of each method: fit on K-1 stratified folds, score the held-out one.

    The folds are the same for every method (seeded), so the numbers compare like for like.
    A training part with one class uses the identity for that fold.
    """
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    oof = {m: np.empty_like(z) for m in methods}
    for fit_idx, held in folds.split(z[:, None], y):
        for m in methods:
            part = y[fit_idx]
            cal = _FACTORIES[m]().fit(z[fit_idx], part) if 0 < part.sum() < part.size else None
            oof[m][held] = cal.transform(z[held]) if cal is not None else sigmoid(z[held])
    return {m: _log_loss(y, oof[m]) for m in methods}


def _fit_auto(z: np.ndarray, y: np.ndarray) -> Calibrator:
    n, n_pos = int(y.size), int(y.sum())
    k = min(AUTO_FOLDS, n_pos, n - n_pos)
    if n < AUTO_MIN_ROWS or k < 2:
        cal = TemperatureScaler().fit(z, y)
        cal.note = (f"auto calibration: only {n} validation crops ({n_pos} positives), too few to "
                    "choose by cross-fitting; used temperature")
        cal.selection = {"chosen_by": "fallback (too few validation crops)", "candidates": {}}
        return cal
    losses = cross_fitted_log_loss(z, y, AUTO_CANDIDATES, k)
    best = min(AUTO_CANDIDATES, key=lambda m: (losses[m], AUTO_CANDIDATES.index(m)))
    cal = _FACTORIES[best]().fit(z, y)
    cal.selection = {
        "chosen_by": f"validation log-loss ({k}-fold cross-fitted)",
        "candidates": {m: losses[m] for m in AUTO_CANDIDATES},
    }
    return cal


def fit_calibrator(method: str, logits: Any, y: Any) -> Calibrator:
    """Fit the named calibrator on validation logits and labels.

    Args:
        method: ``"temperature"``, ``"platt"``, ``"isotonic"``, ``"auto"`` (the one of those
            three with the lowest cross-fitted validation log-loss, see the module docstring)
            or ``"none"``.
        logits: raw riot logits of the validation rows (use :func:`logit` for probabilities).
        y: their 0/1 labels (NaN rows ignored).

    Returns:
        The fitted calibrator. When the validation labels hold a single class (or none), an
        :class:`IdentityCalibrator` whose ``note`` says why calibration was skipped. ``auto``
        with fewer than :data:`AUTO_MIN_ROWS` crops or fewer than 2 of a class uses the
        temperature, with a note.

    Raises:
        ConfigError: unknown method.
    """
    _check_method(method)
    if method == "none":
        return IdentityCalibrator()
    z, yy = _clean(logits, y)
    n_pos = int(yy.sum())
    if n_pos == 0 or n_pos == yy.size:
        return IdentityCalibrator(
            note=f"{method} calibration skipped: the validation data has {n_pos} positives of "
            f"{yy.size} rows (needs both classes)"
        )
    if method == "auto":
        return _fit_auto(z, yy)
    return _FACTORIES[method]().fit(z, yy)


def _selection(d: Mapping[str, Any]) -> dict[str, Any] | None:
    if "chosen_by" not in d:
        return None
    cands = d.get("candidates") or {}
    if not isinstance(cands, Mapping):
        raise ValueError("candidates must be a mapping of method to log-loss")
    return {"chosen_by": str(d["chosen_by"]), "candidates": {str(k): float(v) for k, v in cands.items()}}


def _rebuild(method: Any, d: Mapping[str, Any], note: str) -> Calibrator | None:
    if method == "none":
        return IdentityCalibrator(note=note)
    if method == "temperature":
        t = float(d["temperature"])
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a positive number, got {t}")
        return TemperatureScaler(t, note=note)
    if method == "platt":
        a, b = float(d["a"]), float(d["b"])
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"a and b must be finite numbers, got {a}, {b}")
        return PlattCalibrator(a, b, note=note)
    if method == "isotonic":
        x = np.asarray(d["x"], dtype=np.float64)
        y = np.asarray(d["y"], dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0):
            raise ValueError("x and y must be equal-length lists with x non-decreasing")
        return IsotonicCalibrator(x, y, note=note)
    return None


def calibrator_from_dict(d: Mapping[str, Any]) -> Calibrator:
    """Rebuild a calibrator from its ``to_dict()`` (as stored in ``bundle.json``), with the
    ``auto`` selection record (``chosen_by``, ``candidates``) when there is one.

    Raises:
        BundleError: unknown method or missing / invalid parameters.
    """
    method = d.get("method") if isinstance(d, Mapping) else None
    note = str(d.get("note", "")) if isinstance(d, Mapping) else ""
    try:
        cal = _rebuild(method, d, note) if isinstance(d, Mapping) else None
        if cal is not None:
            cal.selection = _selection(d)
            return cal
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(
            f"bundle.json calibration ({method}): invalid parameters ({e}); retrain or fix the "
            "bundle's calibration entry"
        ) from None
    raise BundleError(
        f"bundle.json calibration: unknown method {method!r}"
        f"{suggest(str(method), STORED_METHODS)}; expected one of {', '.join(STORED_METHODS)}"
    )
