"""``riotvit train`` under the rolling-origin protocol: members per origin, the report, the ensemble bundle.

The bundle's ``model.safetensors`` is the first member of the last test origin; every member's
weights are in ``members/`` and ``bundle.json``'s ``forecast`` lists them with their stacker,
calibration, history + census baseline (as JSON, no pickle) and count dispersion, so
``riotvit predict`` forecasts with the ensemble mean and its spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from riotvit.device import DeviceChoice
from riotvit.io import file_sha256
from riotvit.join.features import MetaScaler
from riotvit.progress import Reporter
from riotvit.train import ddp
from riotvit.train.bundle import BACKGROUND, BUNDLE_FORMAT, WEIGHTS, save_tensors
from riotvit.train.config import TrainConfig
from riotvit.train.forecast import (
    Member,
    OriginForecast,
    add_image_free,
    fit_forecasters,
    train_member,
)
from riotvit.train.forecast_metrics import reliability_bins
from riotvit.train.forecast_report import PROTOCOL, ForecastReport
from riotvit.train.origins import forecast_origins, forward_origins, rolling_splits, row_dates
from riotvit.train.plots import reliability_diagram

MEMBERS_DIR = "members"


def use_rolling(inp, cfg: TrainConfig) -> bool:
    """The rolling protocol when asked, or (auto) when some origin can be tested forward."""
    if cfg.eval.protocol != "auto":
        return cfg.eval.protocol == "rolling"
    c = inp.smeta.config
    return bool(forward_origins(forecast_origins(inp.df), int(c["lead_days"]), int(c["horizon_days"])))


def run_forecast(inp, work: Path, cfg: TrainConfig, dc: DeviceChoice, rep: Reporter) -> tuple[ForecastReport, list[Member]]:
    """Train every member, score every test origin; returns the report and the last origin's members."""
    lead, horizon = int(inp.smeta.config["lead_days"]), int(inp.smeta.config["horizon_days"])
    folds = cfg.eval.cv_folds if isinstance(cfg.eval.cv_folds, list) else "all"
    splits = rolling_splits(inp.df, lead, horizon, cfg.eval.origins, folds)
    report = ForecastReport(lead, horizon)
    origins = list(dict.fromkeys(s.origin for s in splits))
    members: list[Member] = []
    for origin in origins:
        sps = [s for s in splits if s.origin == origin]
        last = origin == origins[-1]
        rep.log(f"origin {origin}: training on {', '.join(sps[0].train_origins)}, {len(sps)} block folds held out")
        # one metadata scaler per origin, shared by its members (so the ensemble scales inputs once): fitted on
        # the features, never the labels, of every crop at the training origins
        at_train = np.isin(row_dates(inp.df), np.array(sps[0].train_origins, dtype="datetime64[D]"))
        scaler = MetaScaler.fit(inp.df[at_train], inp.features)
        members = [train_member(inp, sp, f"{origin}-fold{sp.test_fold}", work / f"cv_{origin}_{sp.test_fold}", cfg, dc,
                                rep, lead, horizon, background=last and i == 0, scaler=scaler)
                   for i, sp in enumerate(sps)]
        if not ddp.is_main():  # under DDP the other ranks only help to fit the members
            continue
        fit_forecasters(members, inp.df, cfg, rep)
        add_image_free(members, inp.df, scaler.transform(inp.df) if inp.features else None, cfg.model.meta_hidden,
                       cfg.seed, cfg.eval.calibration)
        report.add_origin(OriginForecast.pool(members), inp.df)
    st = members[0].stacker
    if st is None:
        return report, members
    report.selected = {"model": st.selected, "why": st.note, "validation_log_loss": st.losses,
                       "weights": {"image": st.a, "history + census": st.b, "intercept": st.c}}
    return report, members


def ensemble_meta(members: list[Member], report: ForecastReport) -> dict[str, Any]:
    """The ``forecast`` entry of ``bundle.json``."""
    return {
        "protocol": PROTOCOL, "lead_days": report.lead_days, "horizon_days": report.horizon_days,
        "origin": report.last, "selected": report.selected["model"], "why": report.selected["why"],
        "members": [{"name": m.name, "weights": WEIGHTS if i == 0 else f"{MEMBERS_DIR}/{m.name}.safetensors",
                     "test_fold": m.split.test_fold, "val_fold": m.split.val_fold,
                     "train_origins": list(m.split.train_origins), "stacker": m.stacker.to_dict(),
                     "calibration": m.calibrator.to_dict(), "threshold": m.threshold,
                     "image_calibration": m.image_calibrator.to_dict(),
                     "baseline": m.baseline.to_dict(), "dispersion": m.dispersion}
                    for i, m in enumerate(members)],
    }


def write_members(work: Path, members: list[Member]) -> dict[str, str]:
    """Weights of every member (the first as ``model.safetensors``) and the background; their checksums."""
    (work / MEMBERS_DIR).mkdir(exist_ok=True)
    files = []
    for i, m in enumerate(members):
        f = WEIGHTS if i == 0 else f"{MEMBERS_DIR}/{m.name}.safetensors"
        save_tensors(work / f, m.model.state_dict(), metadata={"format": BUNDLE_FORMAT})
        files.append(f)
    bg = next((m.background for m in members if m.background is not None), None)
    if bg is not None:
        save_tensors(work / BACKGROUND, bg)
        files.append(BACKGROUND)
    return {f: file_sha256(work / f) for f in files}


def reliability_figure(work: Path, report: ForecastReport, members: list[Member], df) -> None:
    """``reliability.png``: the last origin's held-out forecasts of riotvit and history + census."""
    of = OriginForecast.pool(members)
    y = df["riot"].to_numpy()[of.rows]
    bins = {"riotvit": reliability_bins(y, of.heldout["p"], strategy="quantile", min_count=30),
            "history + census": reliability_bins(y, of.heldout["p_base"], strategy="quantile", min_count=30)}
    reliability_diagram(bins, work / "reliability.png",
                        f"test origin {report.last}, held-out blocks, calibrated ({len(y)} crops)")
