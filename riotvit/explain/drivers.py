"""Per-cell drivers you can rely on: two independent runs, the ranking, and when it is noise.

The players are the metadata features (in the model's order) and ``image`` (all pixels
together), last. Every cell is estimated twice with different seeds (run A and run B); the
published values are their mean. A cell's ranking is **reliable** when

- the completeness gap is at most ``gap_tol`` (10%) of ``|f(x) - E f|``,
- run A and run B agree on the top driver, and
- the top two drivers are not near-tied: ``|phi1| - |phi2|`` exceeds the standard error of that
  difference, estimated from the independent units of both runs (antithetic permutation pairs,
  or the two runs themselves for expected gradients).

Unreliable cells say ``no clear driver`` instead of ranking noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riotvit.explain.gradients import Attributions
from riotvit.explain.shapley import PlayerValues

NO_CLEAR_DRIVER = "no clear driver"
GAP_TOL = 0.10  # completeness gap allowed, as a share of |f(x) - E f|
TIE_Z = 1.0  # the top two must differ by more than this many standard errors


def from_gradients(att: Attributions, nsamples: int) -> PlayerValues:
    """Expected-gradient attributions as player values (the image = the sum over its pixels)."""
    b = att.image.shape[0]
    values = np.column_stack([att.meta.astype(np.float64), att.image.reshape(b, -1).sum(1).astype(np.float64)])
    return PlayerValues(values, att.output.astype(np.float64), float(att.expected), None, "expected gradients", nsamples)


def combine(a: PlayerValues, b: PlayerValues) -> PlayerValues:
    """The mean of two independent runs; its units are the units of both (or the two runs themselves)."""
    if a.estimator == "exact":
        return a
    units = (np.concatenate([a.units, b.units], axis=1) if a.units is not None and b.units is not None
             else np.stack([a.values, b.values], axis=1))
    return PlayerValues((a.values + b.values) / 2, a.output, a.expected, units, a.estimator, a.samples + b.samples)


@dataclass
class Assessment:
    """The combined values and the reliability checks of every cell."""

    values: np.ndarray  # (B, P) mean of the two runs
    gap: np.ndarray  # (B,) completeness gap of the mean
    spread: np.ndarray  # (B,) f(x) - E f
    gap_ok: np.ndarray  # (B,) bool
    stable: np.ndarray  # (B,) bool: both runs name the same top driver
    separated: np.ndarray  # (B,) bool: top two not near-tied
    margin: np.ndarray  # (B,) |phi1| - |phi2|
    se_margin: np.ndarray  # (B,) its standard error (0 for exact values)

    @property
    def reliable(self) -> np.ndarray:
        return self.gap_ok & self.stable & self.separated

    @property
    def rel_gap(self) -> np.ndarray:
        return np.abs(self.gap) / np.maximum(np.abs(self.spread), 1e-12)


def _top(values: np.ndarray, cand: list[int], k: int) -> np.ndarray:
    """(B, k) indexes (into ``values``' columns) of the ``k`` largest |values| among ``cand``."""
    order = np.argsort(-np.abs(values[:, cand]), axis=1, kind="stable")[:, :k]
    return np.asarray(cand)[order]


def assess(a: PlayerValues, b: PlayerValues, cand: list[int], gap_tol: float = GAP_TOL,
           tie_z: float = TIE_Z) -> Assessment:
    """Reliability of each cell's ranking among the candidate players ``cand`` (column indexes)."""
    c = combine(a, b)
    n = c.values.shape[0]
    rows = np.arange(n)
    spread = c.output - c.expected
    gap = c.gap
    gap_ok = np.abs(gap) <= gap_tol * np.abs(spread) + 1e-6
    stable = _top(a.values, cand, 1)[:, 0] == _top(b.values, cand, 1)[:, 0]
    if len(cand) < 2:
        ones = np.ones(n, dtype=bool)
        return Assessment(c.values, gap, spread, gap_ok, stable, ones, np.abs(c.values[:, cand[0]]) if cand
                          else np.zeros(n), np.zeros(n))
    top = _top(c.values, cand, 2)
    p1, p2 = c.values[rows, top[:, 0]], c.values[rows, top[:, 1]]
    margin = np.abs(p1) - np.abs(p2)
    if c.units is None:
        se = np.zeros(n)
    else:
        u = c.units
        d = np.sign(p1)[:, None] * u[rows, :, top[:, 0]] - np.sign(p2)[:, None] * u[rows, :, top[:, 1]]
        se = d.std(axis=1, ddof=1) / np.sqrt(u.shape[1])
    tol = 1e-6 * np.maximum(1.0, np.abs(p1))
    separated = margin > tie_z * se + tol
    return Assessment(c.values, gap, spread, gap_ok, stable, separated, margin, se)


def driver_columns(values: np.ndarray, raw: np.ndarray, names: list[str], report: list[str], top_k: int, index,
                   reliable: np.ndarray | None = None) -> pd.DataFrame:
    """SHAP columns per player, ``drivers_reliable`` and the top ``top_k`` drivers (name, effect, value, shap).

    ``values`` is (B, F + 1): the metadata features in ``names`` order, then the image. A cell
    whose ranking is not reliable gets ``driver_1 = 'no clear driver'`` and empty further drivers.
    """
    n = values.shape[0]
    reliable = np.ones(n, dtype=bool) if reliable is None else np.asarray(reliable, dtype=bool)
    cols = {"shap_image": np.round(values[:, -1].astype(np.float64), 6)}
    for j, name in enumerate(names):
        cols[f"shap_{name}"] = np.round(values[:, j].astype(np.float64), 6)
    cols["drivers_reliable"] = reliable
    cand = [names.index(f) for f in report] + [len(names)]
    labels = np.array([*names, "image"], dtype=object)
    top = _top(values, cand, top_k)
    for k in range(top.shape[1]):
        sel = top[:, k]
        v = values[np.arange(n), sel].astype(np.float64)
        raw_v = np.array([raw[i, s] if s < len(names) else np.nan for i, s in enumerate(sel)], dtype=np.float64)
        label = labels[sel]
        effect = np.where(v >= 0, "raises risk", "lowers risk").astype(object)
        label[~reliable] = NO_CLEAR_DRIVER if k == 0 else ""
        effect[~reliable] = ""
        raw_v[~reliable] = np.nan
        v[~reliable] = np.nan
        cols[f"driver_{k + 1}"] = label
        cols[f"driver_{k + 1}_effect"] = effect
        cols[f"driver_{k + 1}_value"] = np.round(raw_v, 6)
        cols[f"driver_{k + 1}_shap"] = np.round(v, 6)
    return pd.DataFrame(cols, index=index)


def reliability_summary(rel_gap: np.ndarray, stable: np.ndarray, reliable: np.ndarray) -> dict:
    """The run.json figures: median relative gap, top-1 agreement between the runs, reliable share."""
    if rel_gap.size == 0:
        return {}
    return {
        "completeness_gap_median_rel": round(float(np.median(rel_gap)), 6),
        "top1_seed_agreement": round(float(np.mean(stable)), 4),
        "drivers_reliable_share": round(float(np.mean(reliable)), 4),
    }
