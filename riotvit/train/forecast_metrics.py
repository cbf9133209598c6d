"""Forecast scores: reliability bins with Wilson intervals, skill scores, count CRPS and intervals.

Pure numpy / scipy / scikit-learn. Every function drops rows where a needed value is not finite
and copes with tiny samples (values that cannot be computed are ``nan``, never an exception).

- Reliability: :func:`reliability_bins` with equal-mass bins (``strategy="quantile"``, the
  default: quantiles of ``p``, merged until every bin holds ``min_count`` crops) or the old
  equal-width bins (``"uniform"``); every bin carries a Wilson 95 % interval of its observed
  frequency. :func:`expected_calibration_error` and :func:`pool_reliability` use them.
- :func:`brier_skill_score` against persistence or climatology; :func:`forecast_metrics` puts
  the probability forecast scores in one dict.
- Counts: exact ranked probability scores :func:`crps_poisson` / :func:`crps_negbin`,
  predictive intervals :func:`count_interval` and their :func:`interval_coverage`.

Size: ~400 lines; it holds the reliability machinery that used to live in metrics.py (kept
there as re-exports) so that metrics.py stays under its own limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

ECE_BINS = 15
"""Default number of probability bins for the ECE and the reliability diagram."""

MIN_BIN_COUNT = 30
"""Fewest crops in an equal-mass reliability bin (fewer bins when the data are small)."""

BIN_STRATEGIES = ("quantile", "uniform")
"""Reliability bin strategies: equal-mass (quantiles of p) or equal-width on [0, 1]."""

CDF_TAIL = 1e-9
"""CRPS sums stop where the predictive CDF reaches ``1 - CDF_TAIL``."""

_CDF_LOW = 1e-12  # below the first k with F(k) >= this, (F - 1{y<=k})^2 is 1{y<=k} to 2e-12
_CELLS = 2_000_000  # grid cells per CRPS chunk (memory bound)
_P_CLIP = 1e-7


def finite_pair(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Flatten two arrays to float64 and keep rows where both are finite (third: rows dropped)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"targets and predictions differ in length: {y.size} vs {p.size}")
    keep = np.isfinite(y) & np.isfinite(p)
    return y[keep], p[keep], int(y.size - keep.sum())


def wilson_interval(k: Any, n: Any, z: float = 1.96) -> tuple[Any, Any]:
    """Wilson score interval of a binomial proportion ``k / n`` (``z = 1.96``: 95 %).

    Works on scalars or arrays; ``n = 0`` gives ``(nan, nan)``. Returns floats for scalar input.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1.0 + z * z / n
        centre = (phat + z * z / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _bins_dict(
    count: np.ndarray, sum_p: np.ndarray, sum_y: np.ndarray, lower: Any, upper: Any, strategy: str
) -> dict[str, Any]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(count > 0, sum_p / np.maximum(count, 1), np.nan)
        obs_freq = np.where(count > 0, sum_y / np.maximum(count, 1), np.nan)
    lo, hi = wilson_interval(np.rint(sum_y), count)
    return {
        "lower": np.asarray(lower, dtype=np.float64).tolist(),
        "upper": np.asarray(upper, dtype=np.float64).tolist(),
        "mean_pred": mean_pred.tolist(),
        "obs_freq": obs_freq.tolist(),
        "count": np.asarray(count).astype(int).tolist(),
        "ci_low": np.atleast_1d(lo).tolist(),
        "ci_high": np.atleast_1d(hi).tolist(),
        "strategy": strategy,
    }


def _mass_groups(count: np.ndarray, n_bins: int, min_count: int) -> list[np.ndarray]:
    """Group consecutive items (sorted by p, each with a crop count) into equal-mass bins.

    An item goes to bin ``floor(k * crops_before_it / N)`` with ``k = min(n_bins, N //
    min_count)``; then bins short of ``min_count`` join the next bin (the last joins the one
    before), so every bin holds ``min_count`` crops unless all crops are fewer.
    """
    total = float(count.sum())
    k = max(1, min(int(n_bins), int(total) // max(int(min_count), 1)))
    before = np.cumsum(count) - count
    gid = np.minimum(np.floor(before * k / total).astype(np.int64), k - 1)
    groups: list[list[int]] = []
    cur: list[int] = []
    for g in range(k):
        cur.extend(np.flatnonzero(gid == g).tolist())
        if count[cur].sum() >= min_count:
            groups.append(cur)
            cur = []
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    return [np.asarray(g, dtype=np.int64) for g in groups]


def _merge(
    count: np.ndarray, sum_p: np.ndarray, sum_y: np.ndarray, lower: np.ndarray,
    upper: np.ndarray, n_bins: int, min_count: int,
) -> dict[str, Any]:
    groups = _mass_groups(count, n_bins, min_count)
    agg = [np.array([a[g].sum() for g in groups]) for a in (count, sum_p, sum_y)]
    lo = [lower[g].min() for g in groups]
    hi = [upper[g].max() for g in groups]
    return _bins_dict(*agg, lo, hi, "quantile")


def reliability_bins(
    y: Any, p: Any, n_bins: int = ECE_BINS, strategy: str = "quantile",
    min_count: int = MIN_BIN_COUNT,
) -> dict[str, Any]:
    """Reliability bins: per bin the crop count, mean prediction, observed frequency and its CI.

    Args:
        y: 0/1 labels; p: predicted probabilities (rows with a non-finite value are dropped).
        n_bins: the most bins.
        strategy: ``"quantile"`` (equal mass): at most ``min(n_bins, N // min_count)`` bins cut
            at quantiles of ``p``; tied probabilities stay in one bin and a bin left short of
            ``min_count`` crops by ties joins its neighbour, so every bin has at least
            ``min_count`` crops (one bin of all crops when there are fewer). ``"uniform"``:
            ``n_bins`` equal-width bins on [0, 1]; ``p`` goes to ``min(floor(p * n_bins),
            n_bins - 1)`` and empty bins have nan mean and frequency.
        min_count: fewest crops per equal-mass bin.

    Returns:
        ``lower`` / ``upper`` (bin edges; for equal-mass bins the smallest and largest ``p`` in
        the bin), ``mean_pred``, ``obs_freq``, ``count``, ``ci_low`` / ``ci_high`` (Wilson 95 %
        interval of ``obs_freq``), each a list, and ``strategy``.
    """
    if strategy not in BIN_STRATEGIES:
        raise ValueError(f"bin strategy must be one of {BIN_STRATEGIES}, got {strategy!r}")
    y, p, _ = finite_pair(y, p)
    y = (y > 0.5).astype(np.float64)
    if strategy == "uniform":
        idx = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
        count = np.bincount(idx, minlength=n_bins).astype(np.float64)
        sum_p = np.bincount(idx, weights=p, minlength=n_bins)
        sum_y = np.bincount(idx, weights=y, minlength=n_bins)
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        return _bins_dict(count, sum_p, sum_y, edges[:-1], edges[1:], "uniform")
    if p.size == 0:
        return _bins_dict(*(np.zeros(0),) * 5, "quantile")
    # one item per distinct p (ties stay together), then greedy equal-mass grouping
    vals, inv = np.unique(p, return_inverse=True)
    count = np.bincount(inv).astype(np.float64)
    sum_y = np.bincount(inv, weights=y)
    return _merge(count, count * vals, sum_y, vals, vals, n_bins, min_count)


def ece_from_bins(bins: Mapping[str, Sequence]) -> float:
    """Expected calibration error ``sum_b n_b / N * |obs_b - mean_b|`` of reliability bins."""
    count = np.asarray(bins["count"], dtype=np.float64)
    if count.sum() == 0:
        return math.nan
    mean_pred = np.nan_to_num(np.asarray(bins["mean_pred"], dtype=np.float64))
    obs = np.nan_to_num(np.asarray(bins["obs_freq"], dtype=np.float64))
    return float(np.sum(count * np.abs(obs - mean_pred)) / count.sum())


def expected_calibration_error(
    y: Any, p: Any, n_bins: int = ECE_BINS, strategy: str = "quantile",
    min_count: int = MIN_BIN_COUNT,
) -> float:
    """ECE over :func:`reliability_bins` (equal-mass by default; ``strategy="uniform"`` for the old)."""
    return ece_from_bins(reliability_bins(y, p, n_bins, strategy, min_count))


def pool_reliability(
    bins_list: Sequence[Mapping[str, Sequence]], min_count: int = MIN_BIN_COUNT
) -> dict[str, Any]:
    """Merge the reliability bins of several folds into one set of bins.

    Equal-width bins (same edges) are added bin by bin, so the result equals the bins of the
    pooled rows. Equal-mass bins differ per fold: they are sorted by mean prediction and merged
    into at most as many bins as the largest input has, each of at least ``min_count`` crops
    (the grouping rule of :func:`reliability_bins`, applied to bins instead of crops).
    """
    if not bins_list:
        raise ValueError("pool_reliability needs at least one set of bins")

    def arr(key: str) -> list[np.ndarray]:
        return [np.nan_to_num(np.asarray(b[key], dtype=np.float64)) for b in bins_list]

    counts, means, freqs = arr("count"), arr("mean_pred"), arr("obs_freq")
    if all(b.get("strategy", "uniform") == "uniform" for b in bins_list):
        total = np.sum(counts, axis=0)
        sum_p = np.sum([c * m for c, m in zip(counts, means)], axis=0)
        sum_y = np.sum([c * f for c, f in zip(counts, freqs)], axis=0)
        lower, upper = bins_list[0]["lower"], bins_list[0]["upper"]
        return _bins_dict(total, sum_p, sum_y, lower, upper, "uniform")
    count, mean, freq = (np.concatenate(a) for a in (counts, means, freqs))
    lower, upper = np.concatenate(arr("lower")), np.concatenate(arr("upper"))
    keep = count > 0
    order = np.argsort(mean[keep], kind="stable")
    count, mean, freq = count[keep][order], mean[keep][order], freq[keep][order]
    lower, upper = lower[keep][order], upper[keep][order]
    total = count.sum()
    if total == 0:
        return _bins_dict(*(np.zeros(0),) * 5, "quantile")
    n_bins = max(len(c) for c in counts)
    return _merge(count, count * mean, count * freq, lower, upper, n_bins, min_count)


def brier_skill_score(y: Any, p: Any, p_ref: Any) -> float:
    """``1 - Brier(p) / Brier(p_ref)``: 1 is perfect, 0 no better than the reference.

    Args:
        y: 0/1 labels; p: the forecast probabilities.
        p_ref: the reference forecast, an array like ``p`` or a scalar (climatology: the
            training prevalence).

    Returns:
        The skill on rows where ``y``, ``p`` and ``p_ref`` are finite; nan when there are none
        or the reference is perfect (Brier 0).
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    ref = np.broadcast_to(np.asarray(p_ref, dtype=np.float64), y.shape).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"targets and predictions differ in length: {y.size} vs {p.size}")
    keep = np.isfinite(y) & np.isfinite(p) & np.isfinite(ref)
    if not keep.any():
        return math.nan
    yb = (y[keep] > 0.5).astype(np.float64)
    ref_score = float(np.mean((ref[keep] - yb) ** 2))
    if ref_score <= 0:
        return math.nan
    return 1.0 - float(np.mean((p[keep] - yb) ** 2)) / ref_score


def forecast_metrics(
    y: Any, p: Any, *, p_persistence: Any = None, climatology: float | None = None,
    n_bins: int = ECE_BINS, min_count: int = MIN_BIN_COUNT,
) -> dict[str, Any]:
    """Scores of a probability forecast, with skill against persistence and climatology.

    Args:
        y: 0/1 labels; p: forecast probabilities (rows with a non-finite ``y`` or ``p`` are dropped).
        p_persistence: the persistence forecast on the same rows (None: ``bss_persistence`` nan).
        climatology: the training prevalence (None: ``bss_climatology`` nan).
        n_bins, min_count: equal-mass bins of the ECE.

    Returns:
        ``aupr``, ``auroc`` (nan with one class), ``brier``, ``log_loss`` (p clipped to
        [1e-7, 1 - 1e-7]), ``ece`` (equal-mass), ``bss_persistence``, ``bss_climatology``,
        ``n``, ``positives`` and ``note`` (why a value is nan, or "").
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"targets and predictions differ in length: {y.size} vs {p.size}")
    keep = np.isfinite(y) & np.isfinite(p)
    yk, pk = (y[keep] > 0.5).astype(np.float64), p[keep]
    n, pos = int(yk.size), int(yk.sum())
    nan, notes = math.nan, []
    out: dict[str, Any] = {"aupr": nan, "auroc": nan, "brier": nan, "log_loss": nan, "ece": nan}
    if 0 < pos < n:
        out["aupr"] = float(average_precision_score(yk, pk))
        out["auroc"] = float(roc_auc_score(yk, pk))
    elif n:
        notes.append(f"only one class ({pos} positives of {n}); AUROC and AUPR undefined")
    else:
        notes.append("no rows with a label and a prediction")
    if n:
        pc = np.clip(pk, _P_CLIP, 1 - _P_CLIP)
        out["brier"] = float(np.mean((pk - yk) ** 2))
        out["log_loss"] = float(-np.mean(yk * np.log(pc) + (1 - yk) * np.log1p(-pc)))
        out["ece"] = expected_calibration_error(yk, pk, n_bins, "quantile", min_count)
    out["bss_persistence"] = (
        brier_skill_score(yk, pk, np.asarray(p_persistence, dtype=np.float64).reshape(-1)[keep])
        if p_persistence is not None else nan
    )
    out["bss_climatology"] = brier_skill_score(yk, pk, climatology) if climatology is not None else nan
    out.update(n=n, positives=pos, note="; ".join(notes))
    return out


# --------------------------------------------------------------------------- count forecasts


def _count_rows(y: Any, mu: Any, alpha: Any = None) -> tuple[np.ndarray, ...]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), y.shape).reshape(-1)
    a = np.zeros_like(mu) if alpha is None else np.broadcast_to(
        np.asarray(alpha, dtype=np.float64), y.shape).reshape(-1)
    ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(a) & (y >= 0) & (mu >= 0) & (a >= 0)
    return y, mu, a, ok


def _dist(mu: np.ndarray, alpha: np.ndarray) -> Callable[[str, Any, np.ndarray], np.ndarray]:
    """``f(name, x, rows)``: Poisson (alpha 0) or NB2 (var = mu + alpha mu^2) cdf / pmf / ppf of rows."""

    def f(name: str, x: Any, rows: np.ndarray) -> np.ndarray:
        m, a = mu[rows], alpha[rows]
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 2:
            m, a = m[:, None], a[:, None]
        pois = getattr(stats.poisson, name)(x, m)
        if not np.any(a > 0):
            return pois
        n = 1.0 / np.where(a > 0, a, 1.0)
        nb = getattr(stats.nbinom, name)(x, n, n / (n + m))
        return np.where((a > 0) & (m > 0), nb, pois)

    return f


def _crps(y: np.ndarray, ok: np.ndarray, dist: Callable) -> np.ndarray:
    """Exact ``sum_k (F(k) - 1{y <= k})^2`` per row, over a window around the predictive mass."""
    out = np.full(y.shape, np.nan)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return out
    lo = np.maximum(dist("ppf", _CDF_LOW, rows) - 1, 0)  # F(k) < 1e-12 for k < lo
    hi = dist("ppf", 1.0 - CDF_TAIL, rows)  # F(k) >= 1 - 1e-9 from hi on
    yy = y[rows]
    # outside [lo, hi] each term is 1{y <= k} below and 1{y > k} above (to 1e-12 / 1e-9)
    below = np.maximum(lo - np.ceil(yy), 0)
    above = np.maximum(np.ceil(yy) - 1 - hi, 0)
    width = (hi - lo + 1).astype(np.int64)
    order = np.argsort(width, kind="stable")
    total = below + above
    start = 0
    while start < order.size:  # widths ascend, so a chunk's widest row is its last
        stop = min(start + max(_CELLS // int(width[order[start]]), 1), order.size)
        while stop - start > 1 and (stop - start) * int(width[order[stop - 1]]) > _CELLS:
            stop = start + max(_CELLS // int(width[order[stop - 1]]), 1)
        sel = order[start:stop]
        k = lo[sel, None] + np.arange(int(width[sel].max()))[None, :]
        # F(k) = F(lo) + cumulative pmf: ~10x faster than the incomplete gamma / beta per cell
        mass = np.concatenate([dist("cdf", lo[sel], rows[sel])[:, None],
                               dist("pmf", k[:, 1:], rows[sel])], axis=1)
        cdf = np.minimum(np.cumsum(mass, axis=1), 1.0)
        terms = (cdf - (yy[sel, None] <= k)) ** 2
        total[sel] += np.where(k <= hi[sel, None], terms, 0.0).sum(axis=1)
        start = stop
    out[rows] = total
    return out


def crps_poisson(y: Any, mu: Any) -> np.ndarray:
    """Per-row CRPS of a Poisson(``mu``) forecast of count ``y``: ``sum_k (F(k) - 1{y <= k})^2``.

    Exact up to the truncation where ``F(k) >= 1 - 1e-9``; vectorised in memory-bounded chunks.
    Rows with a non-finite or negative ``y`` or ``mu`` are nan.
    """
    y, mu, a, ok = _count_rows(y, mu)
    return _crps(y, ok, _dist(mu, a))


def crps_negbin(y: Any, mu: Any, alpha: Any) -> np.ndarray:
    """Per-row CRPS of a negative binomial forecast with mean ``mu`` and variance ``mu + alpha mu^2``.

    ``alpha = 0`` is the Poisson; ``alpha`` may be a scalar or one value per row.
    """
    y, mu, a, ok = _count_rows(y, mu, alpha)
    return _crps(y, ok, _dist(mu, a))


def count_interval(
    mu: Any, q_lo: float = 0.1, q_hi: float = 0.9, alpha: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval ``[ppf(q_lo), ppf(q_hi)]`` of a Poisson (``alpha`` None or 0)
    or negative binomial count forecast. Being discrete, it covers at least ``q_hi - q_lo``
    of the predictive mass. Non-finite or negative ``mu`` gives nan bounds."""
    if not 0.0 <= q_lo < q_hi <= 1.0:
        raise ValueError(f"need 0 <= q_lo < q_hi <= 1, got {q_lo}, {q_hi}")
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    _, mu, a, ok = _count_rows(np.zeros_like(mu), mu, alpha)
    lo, hi = np.full(mu.shape, np.nan), np.full(mu.shape, np.nan)
    rows = np.flatnonzero(ok)
    dist = _dist(mu, a)
    lo[rows], hi[rows] = dist("ppf", q_lo, rows), dist("ppf", q_hi, rows)
    return lo, hi


def interval_coverage(y: Any, lo: Any, hi: Any) -> float:
    """Share of rows with ``lo <= y <= hi`` among rows where all three are finite (nan if none)."""
    y, lo, hi = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (y, lo, hi))
    keep = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not keep.any():
        return math.nan
    return float(np.mean((lo[keep] <= y[keep]) & (y[keep] <= hi[keep])))
