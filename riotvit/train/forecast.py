"""Train and score forecasts forward in time: one model per (test origin, held-out block fold).

For each rolling-origin split (:mod:`riotvit.train.origins`) a *member* is trained on earlier,
complete origins, stacked on the history + census baseline fitted on the same rows
(:mod:`riotvit.train.stacking`), calibrated on the validation crops of the latest training origin
and used to predict every crop at the test origin. The members of the last test origin are the
bundle's **ensemble**: the forecast is their mean and the uncertainty their spread.

Size: one orchestration (member training, pooled predictions per origin, the ensemble check);
the tables live in :mod:`riotvit.train.forecast_report`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riotvit.device import DeviceChoice
from riotvit.io import json_sha256
from riotvit.join.features import MetaScaler
from riotvit.progress import Reporter
from riotvit.tile.tileset import TileSet
from riotvit.train import ddp
from riotvit.train.baselines import HistoryCensusBaseline
from riotvit.train.calibration import Calibrator, fit_calibrator
from riotvit.train.config import TrainConfig
from riotvit.train.data import ChipBatcher
from riotvit.train.loop import FitResult, fit, predict_outputs
from riotvit.train.meta import BUNDLE_FORMAT_VERSION
from riotvit.train.metaonly import fit_meta_only, meta_only_logits
from riotvit.train.metrics import choose_threshold
from riotvit.train.models import create_model
from riotvit.train.models.losses import MultiTaskLoss
from riotvit.train.origins import check_split
from riotvit.train.splits import Split
from riotvit.train.stacking import Stacker, fit_dispersion


def run_signature(cfg: TrainConfig, ts: TileSet, samples_sha: str, split_name: str) -> str:
    """A key of the training run: a checkpoint made under another one is not resumed."""
    payload = {"cfg": cfg.model_dump(mode="json"), "tileset": ts.info.signature, "samples": samples_sha,
               "split": split_name, "v": BUNDLE_FORMAT_VERSION}
    return json_sha256(payload, 16)


def background_samples(batcher: ChipBatcher, sp: Split, cfg: TrainConfig) -> dict[str, Any]:
    """Training crops kept in the bundle as the background of explanations."""
    import torch

    rng = np.random.default_rng(cfg.seed)
    rows = np.sort(rng.choice(np.flatnonzero(sp.train), min(cfg.eval.background_samples, int(sp.train.sum())),
                              replace=False))
    b = next(iter(batcher.iterate([rows], train=False)))
    return {"image": b.image.float().cpu(),
            "meta": (b.meta.float().cpu() if b.meta is not None else torch.zeros(rows.size, 0)),
            "rows": torch.from_numpy(rows)}


@dataclass
class Member:
    """One model of one rolling-origin split, with what turns its outputs into a forecast."""

    split: Split
    model: Any
    scaler: MetaScaler
    fit: FitResult | None
    baseline: HistoryCensusBaseline
    stacker: Stacker | None = None
    calibrator: Calibrator | None = None
    image_calibrator: Calibrator | None = None
    dispersion: float = 0.0
    threshold: float = 0.5
    rows: np.ndarray = field(default=None, repr=False)  # the rows predicted: every crop at the test origin
    pred: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # forecasts on ``rows`` (member_forecasts)
    background: dict[str, Any] | None = None
    raw: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # raw head outputs on ``rows``
    raw_val: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # ... on the validation rows

    @property
    def name(self) -> str:
        return f"fold{self.split.test_fold}"


def member_forecasts(raw: dict[str, np.ndarray], p_base: np.ndarray, mu_base: np.ndarray, stacker: Stacker,
                     calibrator: Calibrator, image_calibrator: Calibrator) -> dict[str, np.ndarray]:
    """Forecasts of one member from its raw head outputs and its baseline's predictions.

    Keys: ``p`` (the shipped probability: stacked, calibrated), ``p_image`` (the image model
    alone, calibrated), ``p_base`` (history + census), ``mu`` (expected riots, count head),
    ``mu_base``.
    """
    z = stacker.logit(raw["riot"], p_base)
    out = {"p": calibrator.transform(z), "p_image": image_calibrator.transform(raw["riot"]),
           "p_base": np.asarray(p_base, dtype=np.float64), "mu_base": np.asarray(mu_base, dtype=np.float64)}
    if "event_count" in raw:
        out["mu"] = np.exp(np.clip(raw["event_count"].astype(np.float64), -20, 20))
    else:
        out["mu"] = out["mu_base"]
    return out


def train_on_split(inp, split: Split, tag: str, save_dir: Path, cfg: TrainConfig, dc: DeviceChoice, rep: Reporter,
                   scaler: MetaScaler | None, then: Callable[[Any, ChipBatcher], Any]) -> tuple[Any, MetaScaler, FitResult, Any]:
    """Fit riotvit on ``split.train`` (early stopping on ``split.val``, resuming from ``save_dir``).

    ``then(model, batcher)`` runs before the chip batcher closes (predictions, background), on
    rank 0 only under DDP (the other ranks get None: they only help to fit).
    Returns ``(model, scaler, fit result, then's result)``.
    """
    import torch

    dev = torch.device(dc.device)
    df, features = inp.df, inp.features
    scaler = scaler or MetaScaler.fit(df[split.train], features)
    meta = scaler.transform(df) if features else None
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, inp.ts.bands, n_meta=len(features), n_types=len(inp.type_cols)).to(dev)
    loss_fn = MultiTaskLoss(cfg.model, cfg.loss, riot_labels=inp.riot[split.train]).to(dev)
    compiled = torch.compile(model) if dc.compile else None
    batcher = ChipBatcher(inp.ts, df["chip_index"].to_numpy(), meta, inp.targets, inp.norm, dev, cfg.model.img_size,
                          cfg.data.cache, temporal=cfg.model.temporal != "none")
    try:
        if ddp.is_main():
            save_dir.mkdir(parents=True, exist_ok=True)
        fr = fit(model, loss_fn, batcher, np.flatnonzero(split.train), np.flatnonzero(split.val), inp.riot, cfg,
                 save_dir, run_signature(cfg, inp.ts, inp.samples_sha, tag), bf16=dc.bf16, compiled=compiled, reporter=rep)
        return model, scaler, fr, then(model, batcher) if ddp.is_main() else None
    finally:
        batcher.close()


def train_member(inp, split: Split, tag: str, save_dir: Path, cfg: TrainConfig, dc: DeviceChoice, rep: Reporter,
                 lead_days: int, horizon_days: int, background: bool = False,
                 scaler: MetaScaler | None = None) -> Member:
    """Train one rolling-origin split and predict its validation rows and every crop at its test
    origin (``inp``: :class:`TrainInputs`); :func:`fit_forecasters` then stacks and calibrates.

    ``scaler``: the metadata scaler shared by the members of an origin (default: fitted on this
    split's training rows).
    """
    check_split(inp.df, split, lead_days, horizon_days)
    rows = np.flatnonzero(split.test_all)

    def predict(model, batcher):
        return (predict_outputs(model, batcher, np.flatnonzero(split.val), cfg.data.eval_batch_size, dc.bf16),
                predict_outputs(model, batcher, rows, cfg.data.eval_batch_size, dc.bf16),
                background_samples(batcher, split, cfg) if background and cfg.eval.background_samples else None)

    model, scaler, fr, out = train_on_split(inp, split, tag, save_dir, cfg, dc, rep, scaler, predict)
    if out is None:  # a DDP rank other than 0: it helped to fit; rank 0 forecasts
        return Member(split, model, scaler, fr, None)
    raw_val, raw, bg = out
    df, features = inp.df, inp.features
    base = HistoryCensusBaseline("logistic", features=features or None, random_state=cfg.seed).fit(df[split.train])
    return Member(split, model, scaler, fr, base, rows=rows, raw=raw, raw_val=raw_val, background=bg)


def fit_forecasters(members: list[Member], df: pd.DataFrame, cfg: TrainConfig, rep: Reporter | None = None) -> None:
    """One stacker, calibration, threshold and count dispersion for the members of an origin.

    They are fitted on the members' pooled validation crops: each member's validation fold at the
    latest training origin, which it never trained on. The folds differ between members, so the
    pool holds every crop of that origin once, predicted out of sample: a far steadier basis than
    one fold for deciding whether the image adds to history + census.
    """
    val = [df[m.split.val] for m in members]
    z = np.concatenate([m.raw_val["riot"] for m in members]).astype(np.float64)
    pb = np.concatenate([m.baseline.predict_proba(v) for m, v in zip(members, val)])
    y = np.concatenate([v["riot"].to_numpy() for v in val])
    stacker = Stacker.fit(z, pb, y, seed=cfg.seed)
    zs = stacker.logit(z, pb)
    cal = fit_calibrator(cfg.eval.calibration, zs, y)
    cal_img = fit_calibrator(cfg.eval.calibration, z, y)
    mu = np.concatenate([np.exp(np.clip(m.raw_val["event_count"], -20, 20)) if "event_count" in m.raw_val
                         else m.baseline.predict_count(v) for m, v in zip(members, val)])
    alpha = fit_dispersion(np.concatenate([v["event_count"].to_numpy() for v in val]), mu)
    thr = float(choose_threshold(y, cal.transform(zs), cfg.eval.threshold))
    for m in members:
        at = df.iloc[m.rows]
        m.stacker, m.calibrator, m.image_calibrator, m.dispersion, m.threshold = stacker, cal, cal_img, alpha, thr
        m.pred = member_forecasts(m.raw, m.baseline.predict_proba(at), m.baseline.predict_count(at), stacker, cal,
                                  cal_img)
    if rep is not None:
        rep.log(f"origin {members[0].split.origin}: {stacker.note} ({y.size} validation crops); calibration "
                f"{cal.to_dict().get('method')}")


@dataclass
class OriginForecast:
    """Every member of one test origin, and their predictions pooled over the origin's crops.

    ``heldout[k]``: each crop predicted by the member that held out its block ("new place, later
    time"); ``ensemble[k]``: the mean over members for every crop ("same places, later time");
    ``spread``: the members' standard deviation of ``p``.
    """

    origin: str
    members: list[Member]
    rows: np.ndarray
    heldout: dict[str, np.ndarray]
    ensemble: dict[str, np.ndarray]
    spread: np.ndarray
    dispersion: float
    train_origins: tuple[str, ...]

    @classmethod
    def pool(cls, members: list[Member]) -> OriginForecast:
        rows = members[0].rows
        keys = members[0].pred.keys()
        heldout = {k: np.full(rows.size, np.nan) for k in keys}
        for m in members:
            own = m.split.test[rows]
            for k in keys:
                heldout[k][own] = m.pred[k][own]
        ensemble = {k: np.mean([m.pred[k] for m in members], axis=0) for k in keys}
        spread = np.std([m.pred["p"] for m in members], axis=0)
        return cls(members[0].split.origin, members, rows, heldout, ensemble, spread,
                   float(np.mean([m.dispersion for m in members])), members[0].split.train_origins)


def persistence_forecast(df: pd.DataFrame, train: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Persistence as a probability and a count: the training riot rate (and mean count) of crops
    with and without a riot in the last window, applied to ``rows``."""
    tr = df[train]
    pers = df["persist_riot"].to_numpy()[rows] > 0
    out_p, out_mu = np.empty(rows.size), np.empty(rows.size)
    for flag in (False, True):
        grp = tr[(tr["persist_riot"].to_numpy() > 0) == flag]
        src = tr if grp.empty else grp
        out_p[pers == flag] = float(src["riot"].mean())
        out_mu[pers == flag] = float(src["event_count"].mean())
    return out_p, out_mu


def uncertainty_check(y: np.ndarray, p: np.ndarray, spread: np.ndarray) -> dict[str, float]:
    """Does the spread rank errors? Mean |y - p| in the most and least uncertain quintiles, and their ratio."""
    err = np.abs(np.asarray(y, dtype=np.float64) - p)
    lo, hi = np.quantile(spread, [0.2, 0.8])
    top, bottom = err[spread >= hi], err[spread <= lo]
    t, b = float(top.mean()), float(bottom.mean())
    return {"top_quintile_abs_error": t, "bottom_quintile_abs_error": b, "ratio": t / b if b > 0 else float("inf"),
            "spread_max": float(spread.max()), "spread_median": float(np.median(spread))}


def randomized_pit(y: np.ndarray, mu: np.ndarray, alpha: float = 0.0, seed: int = 0) -> np.ndarray:
    """Randomised probability integral transform of counts (Czado, Gneiting & Held 2009).

    ``u = F(y - 1) + v (F(y) - F(y - 1))`` with ``v ~ U(0, 1)``: uniform when the predictive
    distribution (Poisson, or negative binomial with dispersion ``alpha``) is calibrated, so the
    share of ``u`` in [0.1, 0.9] is the coverage of an 80% interval for a discrete forecast.
    """
    from scipy import stats

    y = np.asarray(y, dtype=np.float64)
    mu = np.clip(np.asarray(mu, dtype=np.float64), 1e-9, None)
    if alpha and alpha > 0:
        n = 1.0 / alpha
        dist = stats.nbinom(n, n / (n + mu))
    else:
        dist = stats.poisson(mu)
    hi, lo = dist.cdf(y), np.where(y > 0, dist.cdf(y - 1), 0.0)
    return lo + np.random.default_rng(seed).uniform(size=y.size) * (hi - lo)


def add_image_free(members: list[Member], df: pd.DataFrame, meta: np.ndarray | None, hidden: int, seed: int,
                   calibration: str) -> None:
    """Train the image-free riotvit on each member's rows and add its calibrated forecast as ``p_meta``.

    Calibrated like the others, on the members' pooled validation crops. Deterministic for a seed,
    so :func:`riotvit.train.evaluate.evaluate_forecast` retrains it rather than storing it.
    """
    if meta is None or meta.shape[1] == 0:
        return
    y = df["riot"].to_numpy().astype(np.float32)
    models = [fit_meta_only(meta, y, m.split.train, m.split.val, hidden, seed) for m in members]
    z_val = np.concatenate([meta_only_logits(mo, meta, np.flatnonzero(m.split.val)) for mo, m in zip(models, members)])
    y_val = np.concatenate([y[m.split.val] for m in members])
    cal = fit_calibrator(calibration, z_val, y_val)
    for mo, m in zip(models, members):
        m.pred["p_meta"] = cal.transform(meta_only_logits(mo, meta, m.rows))
