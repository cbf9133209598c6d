"""Calibration: temperature / Platt recovery, isotonic JSON round trip, ECE reduction, the
cross-fitted ``auto`` choice, fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riotvit.errors import BundleError, ConfigError
from riotvit.train.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureScaler,
    calibrator_from_dict,
    cross_fitted_log_loss,
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


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic", "auto"])
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


def test_platt_recovers_slope_and_intercept_and_round_trips():
    z, y = well_calibrated(20000, seed=6)
    # raw logits r with true logit z = 0.5 r - 1: Platt must find a = 0.5, b = -1
    raw = (z + 1.0) / 0.5
    cal = fit_calibrator("platt", raw, y)
    assert isinstance(cal, PlattCalibrator)
    assert (cal.a, cal.b) == (pytest.approx(0.5, rel=0.05), pytest.approx(-1.0, abs=0.07))
    d = json_round_trip(cal.to_dict())
    assert d == {"method": "platt", "a": cal.a, "b": cal.b, "note": ""}
    back = calibrator_from_dict(d)
    assert isinstance(back, PlattCalibrator)
    assert np.array_equal(back.transform(raw), sigmoid(cal.a * raw + cal.b))


def _log_loss(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def test_auto_picks_a_parametric_map_on_linear_miscalibration():
    z, y = well_calibrated(3000, seed=7)
    raw = 3.0 * z  # over-confident, but a rescaled logit fixes it exactly
    cal = fit_calibrator("auto", raw, y)
    d = cal.to_dict()
    assert d["method"] in ("temperature", "platt")
    assert d["chosen_by"] == "validation log-loss (5-fold cross-fitted)"
    cands = d["candidates"]
    assert set(cands) == {"temperature", "platt", "isotonic"}
    assert cands[d["method"]] == min(cands.values()) < cands["isotonic"]
    # the reason for cross-fitting: in-sample, isotonic always looks best
    in_sample = {m: _log_loss(y, fit_calibrator(m, raw, y).transform(raw)) for m in cands}
    assert in_sample["isotonic"] < min(in_sample["temperature"], in_sample["platt"])
    # the candidates' numbers are the out-of-fold log-losses, reproducibly
    assert cross_fitted_log_loss(raw, y) == cands


def test_auto_picks_isotonic_on_step_shaped_miscalibration():
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 2.0, size=3000)
    y = (rng.random(3000) < np.where(z > 1.0, 0.7, 0.05)).astype(np.float64)
    cal = fit_calibrator("auto", z, y)
    assert isinstance(cal, IsotonicCalibrator)
    cands = cal.to_dict()["candidates"]
    assert cands["isotonic"] < cands["platt"] < cands["temperature"]
    back = calibrator_from_dict(json_round_trip(cal.to_dict()))
    assert isinstance(back, IsotonicCalibrator) and back.to_dict() == cal.to_dict()
    test = np.linspace(-6, 6, 101)
    assert np.array_equal(back.transform(test), cal.transform(test))


def test_auto_on_degenerate_validation_sets():
    # no positives: identity, with the reason
    none = fit_calibrator("auto", np.linspace(-2, 2, 40), np.zeros(40))
    assert isinstance(none, IdentityCalibrator) and "0 positives of 40" in none.note
    # fewer than 10 crops: the one-parameter temperature, with a note
    few = fit_calibrator("auto", [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], [0, 0, 1, 0, 1, 1])
    assert isinstance(few, TemperatureScaler) and "only 6 validation crops" in few.note
    d = json_round_trip(few.to_dict())
    assert d["chosen_by"].startswith("fallback") and d["candidates"] == {}
    assert calibrator_from_dict(d).to_dict() == d
    # one positive among many: cannot cross-fit either
    one = fit_calibrator("auto", np.linspace(-3, 3, 50), np.r_[np.zeros(49), 1.0])
    assert isinstance(one, TemperatureScaler) and "1 positives" in one.note
