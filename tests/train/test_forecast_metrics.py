"""Forecast scores checked against hand / brute-force values: Wilson, equal-mass bins, BSS, CRPS,
count intervals and forecast_metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from riotvit.train.forecast_metrics import (
    brier_skill_score,
    count_interval,
    crps_negbin,
    crps_poisson,
    expected_calibration_error,
    forecast_metrics,
    interval_coverage,
    pool_reliability,
    reliability_bins,
    wilson_interval,
)


def test_wilson_interval_known_values():
    # 5 of 10 at 95 %: the textbook 0.2366 - 0.7634; 0 of 10: 0 to (z^2/n) / (1 + z^2/n)
    assert wilson_interval(5, 10) == (pytest.approx(0.236589, abs=1e-6), pytest.approx(0.763411, abs=1e-6))
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.38416 / 1.38416, abs=1e-12)
    lo, hi = wilson_interval(np.array([1, 0]), np.array([4, 0]))
    # 1 of 4 by hand: centre 0.37247, half-width 0.32689
    assert lo[0] == pytest.approx(0.04559, abs=1e-5) and hi[0] == pytest.approx(0.69936, abs=1e-5)
    assert math.isnan(lo[1]) and math.isnan(hi[1])


def test_equal_mass_bins_hold_min_count_and_match_a_pandas_recount():
    import pandas as pd

    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 6, 1000)
    y = (rng.random(1000) < p).astype(float)
    b = reliability_bins(y, p)
    assert b["strategy"] == "quantile" and len(b["count"]) == 15
    assert min(b["count"]) >= 30 and sum(b["count"]) == 1000
    # every bin's numbers recomputed from its p range
    df = pd.DataFrame({"y": y, "p": p})
    for lo, hi, n, m, f, cl, ch in zip(*(b[k] for k in ("lower", "upper", "count", "mean_pred", "obs_freq", "ci_low", "ci_high"))):
        part = df[(df.p >= lo) & (df.p <= hi)]
        assert len(part) == n and part.p.mean() == pytest.approx(m) and part.y.mean() == pytest.approx(f)
        assert (cl, ch) == pytest.approx(wilson_interval(part.y.sum(), n))
    # small data: fewer bins, each still >= 30; fewer than 30 crops: one bin
    assert reliability_bins(y[:100], p[:100])["count"] == [34, 33, 33]
    assert reliability_bins(y[:20], p[:20])["count"] == [20]
    assert reliability_bins([], [])["count"] == []
    # ties stay together: a two-valued forecast gives (at most) two bins
    two = reliability_bins(y, np.where(p > 0.1, 0.3, 0.02))
    assert sorted(two["mean_pred"]) == [0.02, 0.3]
    # NaN rows are dropped
    assert sum(reliability_bins(np.r_[y, np.nan], np.r_[p, 0.5])["count"]) == 1000
    # ECE over the equal-mass bins by hand
    ece = sum(n * abs(f - m) for n, m, f in zip(b["count"], b["mean_pred"], b["obs_freq"])) / 1000
    assert expected_calibration_error(y, p) == pytest.approx(ece)


def test_pooled_equal_mass_bins_keep_min_count_and_totals():
    rng = np.random.default_rng(1)
    p = rng.random(900)
    y = (rng.random(900) < p).astype(float)
    parts = [reliability_bins(y[i::3], p[i::3]) for i in range(3)]
    pooled = pool_reliability(parts)
    assert sum(pooled["count"]) == 900 and min(pooled["count"]) >= 30 and len(pooled["count"]) <= 10
    assert np.dot(pooled["count"], pooled["obs_freq"]) == pytest.approx(y.sum())
    assert np.dot(pooled["count"], pooled["mean_pred"]) == pytest.approx(p.sum())
    assert np.all(np.diff(pooled["mean_pred"]) > 0)


def test_brier_skill_score():
    y = np.array([0, 1, 1, 0, 0, np.nan])
    p = np.array([0.1, 0.8, 0.6, 0.3, 0.0, 0.5])
    clim = 0.4
    assert brier_skill_score(y, y, clim) == 1.0  # perfect forecast
    assert brier_skill_score(y, np.full(6, clim), clim) == 0.0  # the reference itself
    bs = np.mean((p[:5] - y[:5]) ** 2)
    ref = np.mean((clim - y[:5]) ** 2)
    assert brier_skill_score(y, p, clim) == pytest.approx(1 - bs / ref)
    persistence = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    ref_p = np.mean((persistence[:5] - y[:5]) ** 2)
    assert brier_skill_score(y, p, persistence) == pytest.approx(1 - bs / ref_p)
    assert math.isnan(brier_skill_score([0, 1], [0.2, 0.7], [0.0, 1.0]))  # perfect reference
    assert math.isnan(brier_skill_score([], [], 0.3))


def _brute_crps(y, cdf):
    k = np.arange(0, 2000)
    return float(np.sum((cdf(k) - (y <= k)) ** 2))


def test_crps_poisson_and_negbin_equal_brute_force():
    rng = np.random.default_rng(2)
    mu = np.r_[rng.gamma(1.0, 4.0, 60), 0.0, 1e-6, 40.0]
    y = np.r_[rng.poisson(mu[:60] * 1.5), 0, 3, 0]
    got = crps_poisson(y, mu)
    want = [_brute_crps(v, lambda k, m=m: stats.poisson.cdf(k, m)) for v, m in zip(y, mu)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    for alpha in (0.3, 2.0):
        n = 1 / alpha
        got = crps_negbin(y, mu, alpha)
        want = [_brute_crps(v, lambda k, m=m, n=n: stats.nbinom.cdf(k, n, n / (n + m))) for v, m in zip(y, mu)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    # alpha 0 is the Poisson; hand value: mu = 0 (all mass at 0), y = 3: 1 + 1 + 1
    np.testing.assert_allclose(crps_negbin(y, mu, 0.0), crps_poisson(y, mu), atol=1e-12)
    assert crps_poisson([3], [0.0])[0] == 3.0
    # NaN or negative inputs give NaN rows, not errors
    out = crps_poisson([1, np.nan, 2, -1], [1.0, 1.0, np.nan, 1.0])
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    # a wild forecast far from the outcome: exact without a huge grid
    far = crps_poisson([0], [1e6])[0]
    k = np.arange(0, 1_010_000)
    assert far == pytest.approx(np.sum((stats.poisson.cdf(k, 1e6) - 1) ** 2), rel=1e-9)


def test_count_interval_and_coverage():
    lo, hi = count_interval([0.0, 2.0, 10.0])
    assert lo.tolist() == [0, stats.poisson.ppf(0.1, 2.0), stats.poisson.ppf(0.1, 10.0)]
    assert hi.tolist() == [0, stats.poisson.ppf(0.9, 2.0), stats.poisson.ppf(0.9, 10.0)]
    lo_nb, hi_nb = count_interval([10.0], 0.05, 0.95, alpha=1.0)
    assert (lo_nb[0], hi_nb[0]) == (stats.nbinom.ppf(0.05, 1.0, 1 / 11), stats.nbinom.ppf(0.95, 1.0, 1 / 11))
    assert hi_nb[0] > stats.poisson.ppf(0.95, 10.0)  # over-dispersed: wider
    assert interval_coverage([0, 3, 7, np.nan], [0, 1, 8, 0], [1, 3, 9, 5]) == pytest.approx(2 / 3)
    assert math.isnan(interval_coverage([np.nan], [0], [1]))
    # an 80 % Poisson interval covers at least 80 % of Poisson draws
    rng = np.random.default_rng(3)
    mu = rng.gamma(2.0, 2.0, 5000)
    lo, hi = count_interval(mu)
    assert 0.8 <= interval_coverage(rng.poisson(mu), lo, hi) < 0.95
    with pytest.raises(ValueError):
        count_interval([1.0], 0.9, 0.1)


def test_forecast_metrics():
    rng = np.random.default_rng(4)
    p = rng.beta(1, 6, 600)
    y = (rng.random(600) < p).astype(float)
    persistence = np.where(rng.random(600) < 0.5, p, 0.5)
    m = forecast_metrics(y, p, p_persistence=persistence, climatology=0.15)
    assert set(m) == {"aupr", "auroc", "brier", "log_loss", "ece", "bss_persistence",
                      "bss_climatology", "n", "positives", "note"}
    assert (m["n"], m["positives"], m["note"]) == (600, int(y.sum()), "")
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["bss_climatology"] == pytest.approx(brier_skill_score(y, p, 0.15))
    assert m["bss_persistence"] == pytest.approx(brier_skill_score(y, p, persistence))
    assert m["ece"] == pytest.approx(expected_calibration_error(y, p))
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    assert m["aupr"] == pytest.approx(average_precision_score(y, p))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    none = forecast_metrics(y, p)
    assert math.isnan(none["bss_persistence"]) and math.isnan(none["bss_climatology"])
    one = forecast_metrics([0, 0, np.nan], [0.1, 0.2, 0.3], climatology=0.1)
    assert one["n"] == 2 and math.isnan(one["auroc"]) and "one class" in one["note"]
    assert one["bss_climatology"] == pytest.approx(1 - (0.01 + 0.04) / 2 / 0.01)
    assert forecast_metrics([], [])["n"] == 0
