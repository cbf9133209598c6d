"""Calibration: temperature recovery, isotonic JSON round trip, ECE reduction, fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riotvit.errors import BundleError, ConfigError
from riotvit.train.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    TemperatureScaler,
    calibrator_from_dict,
    fit_calibrator,
    logit,
    sigmoid,
)
from riotvit.train.metrics import expected_calibration_error


def well_calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from them (so sigmoid(z) is perfectly calibrated)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, size=n)
    y = (rng.random(n) < sigmoid(z)).astype(np.float64)
    return z, y


def json_round_trip(d: dict) -> dict:
    return json.loads(json.dumps(d))


def test_sigmoid_logit_inverse():
    p = np.array([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6])
    np.testing.assert_allclose(sigmoid(logit(p)), p, rtol=1e-9)
    assert sigmoid([0.0])[0] == 0.5
    assert np.isfinite(logit([0.0, 1.0])).all()


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_recovers_known_temperature(true_t):
    z, y = well_calibrated(20000, seed=1)
    scaler = fit_calibrator("temperature", z * true_t, y)
    assert isinstance(scaler, TemperatureScaler)
    assert scaler.temperature == pytest.approx(true_t, rel=0.05)
    # applying it undoes the distortion
    np.testing.assert_allclose(
        scaler.transform(z * true_t), sigmoid(z * true_t / scaler.temperature)
    )


def test_temperature_json_round_trip():
    z, y = well_calibrated(2000, seed=2)
    scaler = fit_calibrator("temperature", 3 * z, y)
    d = json_round_trip(scaler.to_dict())
    assert d["method"] == "temperature" and isinstance(d["temperature"], float)
    back = calibrator_from_dict(d)
    assert isinstance(back, TemperatureScaler) and back.temperature == scaler.temperature
    assert np.array_equal(back.transform(z), scaler.transform(z))


def test_isotonic_round_trips_exactly_and_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    z, y = well_calibrated(3000, seed=3)
    raw = 2.0 * z + 0.5
    iso = fit_calibrator("isotonic", raw, y)
    assert isinstance(iso, IsotonicCalibrator)
    back = calibrator_from_dict(json_round_trip(iso.to_dict()))
    assert isinstance(back, IsotonicCalibrator)
    test = np.linspace(-12, 12, 2001)
    assert np.array_equal(back.transform(test), iso.transform(test))
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(sigmoid(raw), y)
    np.testing.assert_allclose(iso.transform(test), ref.predict(sigmoid(test)), atol=1e-12)
    out = iso.transform(test)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibration_lowers_ece_on_held_out_data(method):
    z, y = well_calibrated(16000, seed=4)
    raw = 3.0 * z  # over-confident
    fit, held = slice(0, 8000), slice(8000, None)
    before = expected_calibration_error(y[held], sigmoid(raw[held]))
    cal = fit_calibrator(method, raw[fit], y[fit])
    after = expected_calibration_error(y[held], cal.transform(raw[held]))
    assert before > 0.08
    assert after < 0.3 * before
    assert after < 0.025


def test_one_class_validation_falls_back_to_identity():
    z = np.linspace(-2, 2, 50)
    cal = fit_calibrator("isotonic", z, np.zeros(50))
    assert isinstance(cal, IdentityCalibrator)
    assert "0 positives of 50" in cal.note
    np.testing.assert_allclose(cal.transform(z), sigmoid(z))
    back = calibrator_from_dict(json_round_trip(cal.to_dict()))
    assert back.method == "none" and back.note == cal.note


def test_nan_labels_are_ignored():
    z, y = well_calibrated(4000, seed=5)
    y_nan = y.copy()
    y_nan[:100] = np.nan
    a = fit_calibrator("temperature", 2 * z, y_nan)
    b = fit_calibrator("temperature", 2 * z[100:], y[100:])
    assert a.temperature == pytest.approx(b.temperature, rel=1e-6)


def test_errors_name_the_fix():
    with pytest.raises(ConfigError, match="did you mean: isotonic"):
        fit_calibrator("isotonc", [0.0, 1.0], [0, 1])
    with pytest.raises(BundleError, match="unknown method 'plat'.*did you mean: platt"):
        calibrator_from_dict({"method": "plat"})
    with pytest.raises(BundleError, match="invalid parameters"):
        calibrator_from_dict({"method": "platt", "a": 1.0})
    with pytest.raises(BundleError, match="positive number"):
        calibrator_from_dict({"method": "temperature", "temperature": -1.0})
    with pytest.raises(BundleError, match="invalid parameters"):
        calibrator_from_dict({"method": "isotonic", "x": [0.0, 1.0]})
