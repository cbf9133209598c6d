"""Probability calibration of the riot head, fitted on validation data and stored as JSON.

Every calibrator takes the model's raw riot **logits** and returns probabilities:

- :class:`TemperatureScaler`: ``sigmoid(z / T)``; ``T`` minimises the validation negative
  log-likelihood (Guo et al. 2017). One float in ``bundle.json``.
- :class:`IsotonicCalibrator`: a monotone step-linear map of ``sigmoid(z)`` fitted with
  scikit-learn's ``IsotonicRegression``, stored as its threshold arrays and applied with
  ``np.interp`` (clipped outside the fitted range), so no pickle is ever needed.
- :class:`IdentityCalibrator`: ``sigmoid(z)``; used for ``method="none"`` and as the fallback
  when the validation data cannot fit a calibrator (a single class).

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

CALIBRATION_METHODS = ("temperature", "isotonic", "none")
"""Values of the calibration option."""

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

    def fit(self, logits: Any, y: Any) -> Calibrator:
        """Fit on validation logits and 0/1 labels; returns self."""
        ...

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities of raw logits."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters (see :func:`calibrator_from_dict`)."""
        ...


class IdentityCalibrator:
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
        return {"method": self.method, "note": self.note}


class TemperatureScaler:
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
        return {"method": self.method, "temperature": self.temperature, "note": self.note}


class IsotonicCalibrator:
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
            "note": self.note,
        }


def _check_method(method: str) -> None:
    if method not in CALIBRATION_METHODS:
        raise ConfigError(
            f"calibration method '{method}' is unknown{suggest(method, CALIBRATION_METHODS)}; "
            f"use one of {', '.join(CALIBRATION_METHODS)}"
        )


def fit_calibrator(method: str, logits: Any, y: Any) -> Calibrator:
    """Fit the named calibrator on validation logits and labels.

    Args:
        method: ``"temperature"``, ``"isotonic"`` or ``"none"``.
        logits: raw riot logits of the validation rows (use :func:`logit` for probabilities).
        y: their 0/1 labels (NaN rows ignored).

    Returns:
        The fitted calibrator. When the validation labels hold a single class (or none), an
        :class:`IdentityCalibrator` whose ``note`` says why calibration was skipped.

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
    cal: Calibrator = TemperatureScaler() if method == "temperature" else IsotonicCalibrator()
    return cal.fit(z, yy)


def calibrator_from_dict(d: Mapping[str, Any]) -> Calibrator:
    """Rebuild a calibrator from its ``to_dict()`` (as stored in ``bundle.json``).

    Raises:
        BundleError: unknown method or missing / invalid parameters.
    """
    method = d.get("method") if isinstance(d, Mapping) else None
    note = str(d.get("note", "")) if isinstance(d, Mapping) else ""
    try:
        if method == "none":
            return IdentityCalibrator(note=note)
        if method == "temperature":
            t = float(d["temperature"])
            if not (math.isfinite(t) and t > 0):
                raise ValueError(f"temperature must be a positive number, got {t}")
            return TemperatureScaler(t, note=note)
        if method == "isotonic":
            x = np.asarray(d["x"], dtype=np.float64)
            y = np.asarray(d["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0):
                raise ValueError("x and y must be equal-length lists with x non-decreasing")
            return IsotonicCalibrator(x, y, note=note)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(
            f"bundle.json calibration ({method}): invalid parameters ({e}); retrain or fix the "
            "bundle's calibration entry"
        ) from None
    raise BundleError(
        f"bundle.json calibration: unknown method {method!r}"
        f"{suggest(str(method), CALIBRATION_METHODS)}; expected one of {', '.join(CALIBRATION_METHODS)}"
    )
