"""The forecast report: every model on the same crops, per origin and scope, and what it means.

Scopes at each test origin ``t``:

- ``held-out blocks``: each crop forecast by the member that never saw its block ("new place,
  later time"); baselines fitted on the same training rows;
- ``all blocks``: the ensemble mean of the members for every crop ("same places, later time");
- ``... / onset``: the same crops restricted to those with no riot in the 12 months before ``t``,
  where history has nothing to say and only the image can see a new market or settlement.

Models: ``riotvit`` (the shipped forecast: image stacked on history + census, calibrated),
``image only`` (the image model alone, calibrated), ``image-free riotvit`` (riotvit's metadata
branch and riot head without the image, :mod:`riotvit.train.metaonly`), ``history + census``,
``persistence`` and ``prevalence``. Where riotvit loses to a baseline, :meth:`ForecastReport.verdicts` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riotvit.io import atomic_file, write_json
from riotvit.thin import assess_thin_data
from riotvit.train.forecast import (
    OriginForecast,
    persistence_forecast,
    randomized_pit,
    uncertainty_check,
)
from riotvit.train.forecast_metrics import (
    count_interval,
    crps_negbin,
    crps_poisson,
    forecast_metrics,
    interval_coverage,
)
from riotvit.train.report import jsonable as to_jsonable

PROTOCOL = "rolling-origin x spatial blocks"
MODELS = ("riotvit", "image only", "image-free riotvit", "history + census", "persistence", "prevalence")
BASELINES = ("history + census", "image-free riotvit", "persistence", "prevalence")
COLUMNS = (("aupr", "AUPR"), ("auroc", "AUROC"), ("brier", "Brier"), ("bss_persistence", "BSS pers."),
           ("bss_climatology", "BSS clim."), ("ece", "ECE"), ("count_mae", "count MAE"), ("crps", "CRPS"))


def _scores(y: np.ndarray, p: np.ndarray, p_pers: np.ndarray, clim: float, count: np.ndarray, mu: np.ndarray,
            alpha: float | None) -> dict[str, float]:
    m = dict(forecast_metrics(y, p, p_persistence=p_pers, climatology=clim))
    m["count_mae"] = float(np.mean(np.abs(count - mu))) if count.size else math.nan
    crps = crps_negbin(count, mu, alpha) if alpha else crps_poisson(count, mu)
    m["crps"] = float(np.mean(crps)) if count.size else math.nan
    return m


@dataclass
class ForecastReport:
    """Scores per origin, scope and model; the protocol; the uncertainty check of the last origin."""

    lead_days: int
    horizon_days: int
    origins: list[dict[str, Any]] = field(default_factory=list)  # origin, train_origins, window, folds
    scores: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    uncertainty: dict[str, Any] = field(default_factory=dict)
    selected: dict[str, Any] = field(default_factory=dict)

    def add_origin(self, of: OriginForecast, df: pd.DataFrame) -> None:
        """Score one test origin's pooled forecasts and baselines on the same crops."""
        rows = of.rows
        at = df.iloc[rows]
        y = at["riot"].to_numpy().astype(np.float64)
        count = at["event_count"].to_numpy().astype(np.float64)
        onset = at["onset"].to_numpy() > 0 if "onset" in at.columns else np.zeros(rows.size, dtype=bool)
        # persistence and prevalence per crop from the training rows of the member that forecasts it
        pers_p, pers_mu, prev_p, prev_mu = (np.empty(rows.size) for _ in range(4))
        has_pers = "persist_riot" in df.columns
        for m in of.members:
            own = m.split.test[rows]
            tr = df[m.split.train]
            prev_p[own], prev_mu[own] = float(tr["riot"].mean()), float(tr["event_count"].mean())
            if has_pers:
                pp, pm = persistence_forecast(df, m.split.train, rows[own])
                pers_p[own], pers_mu[own] = pp, pm
        train_any = np.any([m.split.train for m in of.members], axis=0)
        all_prev_p, all_prev_mu = float(df[train_any]["riot"].mean()), float(df[train_any]["event_count"].mean())
        all_pers = persistence_forecast(df, train_any, rows) if has_pers else None
        scopes: dict[str, dict[str, dict[str, float]]] = {}
        for scope, src, pp, pmu, cp, cmu in (
            ("held-out blocks", of.heldout, pers_p, pers_mu, prev_p, prev_mu),
            ("all blocks", of.ensemble, *(all_pers or (None, None)), np.full(rows.size, all_prev_p),
             np.full(rows.size, all_prev_mu)),
        ):
            preds = {"riotvit": (src["p"], src["mu"], of.dispersion), "image only": (src["p_image"], src["mu"], of.dispersion),
                     "history + census": (src["p_base"], src["mu_base"], None), "prevalence": (cp, cmu, None)}
            if "p_meta" in src:
                preds["image-free riotvit"] = (src["p_meta"], src["mu_base"], None)
            if pp is not None:
                preds["persistence"] = (pp, pmu, None)
            for sub, mask in ((scope, np.ones(rows.size, dtype=bool)), (f"{scope} / onset", onset)):
                if not mask.any():
                    continue
                clim = float(np.mean(cp[mask]))
                ref = pp[mask] if pp is not None else None
                scopes[sub] = {name: _scores(y[mask], p[mask], ref, clim, count[mask], mu[mask], a)
                               for name, (p, mu, a) in preds.items()}
        self.scores[of.origin] = scopes
        self.origins.append({"origin": of.origin, "train_origins": list(of.train_origins),
                             "window": [of.origin, str(pd.Timestamp(of.origin) + pd.Timedelta(days=self.lead_days + self.horizon_days))],
                             "folds": [m.split.test_fold for m in of.members], "n_crops": int(rows.size),
                             "riots": int(y.sum()), "onset_crops": int(onset.sum()),
                             "selected": {m.name: m.stacker.selected for m in of.members}})
        lo, hi = count_interval(of.ensemble["mu"], 0.1, 0.9, alpha=of.dispersion or None)
        self.uncertainty = {"origin": of.origin, "members": len(of.members),
                            **uncertainty_check(y, of.ensemble["p"], of.spread),
                            "count_interval": "10-90% of the negative-binomial predictive distribution"
                                              if of.dispersion else "10-90% of the Poisson predictive distribution",
                            "dispersion": of.dispersion, "count_interval_coverage_80": float(interval_coverage(count, lo, hi)),
                            "count_coverage_80": float(np.mean(np.abs(randomized_pit(count, of.ensemble["mu"],
                                                                                      of.dispersion) - 0.5) <= 0.4)),
                            "count_coverage_note": "count_coverage_80: share of crops whose randomised PIT lies in "
                                                   "[0.1, 0.9] (exact 80% for a calibrated discrete forecast); "
                                                   "count_interval_coverage_80: share inside the integer 10-90% "
                                                   "interval, which covers at least 80% by construction"}

    @property
    def last(self) -> str:
        return self.origins[-1]["origin"]

    def value(self, origin: str, scope: str, model: str, metric: str) -> float:
        v = self.scores.get(origin, {}).get(scope, {}).get(model, {}).get(metric)
        return float(v) if v is not None and np.isfinite(v) else math.nan

    def verdicts(self) -> list[str]:
        """Plain statements: where riotvit wins or loses against each baseline, per origin and scope."""
        out = []
        for o in self.origins:
            t = o["origin"]
            for scope in self.scores[t]:
                m = self.scores[t][scope].get("riotvit", {})
                thin = assess_thin_data(int(m.get("positives", 0)), int(m.get("n", 0)))
                if thin.thin:  # beats / loses over a handful of positives would be noise
                    out.append(f"{t}, {scope}: {thin.sentence}")
                    continue
                r = self.value(t, scope, "riotvit", "aupr")
                for b in BASELINES:
                    v = self.value(t, scope, b, "aupr")
                    if math.isnan(r) or math.isnan(v):
                        continue
                    word = "beats" if r > v else ("ties" if r == v else "LOSES TO")
                    out.append(f"{t}, {scope}: riotvit {word} {b} in AUPR ({r:.3f} vs {v:.3f})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({
            "protocol": {"name": PROTOCOL, "lead_days": self.lead_days, "horizon_days": self.horizon_days,
                         "description": describe_protocol(self), "origins": self.origins,
                         "models": list(MODELS), "baselines": list(BASELINES)},
            "scores": self.scores, "uncertainty": self.uncertainty, "selected": self.selected,
            "verdicts": self.verdicts()})

    def rows(self) -> list[list[str]]:
        out = []
        for o in self.origins:
            t = o["origin"]
            for scope, models in self.scores[t].items():
                for model, m in models.items():
                    out.append([t, scope, model, *(_fmt(m.get(k)) for k, _ in COLUMNS), str(int(m.get("n", 0))),
                                str(int(m.get("positives", 0)))])
        return out

    def header(self) -> list[str]:
        return ["origin", "scope", "model", *(h for _, h in COLUMNS), "n", "riots"]

    def to_markdown(self) -> str:
        lines = [f"# Forecast evaluation: {PROTOCOL}", "", describe_protocol(self), "",
                 "| " + " | ".join(self.header()) + " |", "|" + "---|" * len(self.header())]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows()]
        u = self.uncertainty
        if u:
            lines += ["", f"## Uncertainty (origin {u['origin']}, {u['members']}-member ensemble)",
                      f"- mean |error| in the most uncertain fifth of crops {u['top_quintile_abs_error']:.3f}, in the least "
                      f"uncertain fifth {u['bottom_quintile_abs_error']:.3f} (ratio {u['ratio']:.2f})",
                      f"- 80% count forecasts ({u['count_interval']}): randomised-PIT coverage {u['count_coverage_80']:.1%}; "
                      f"the integer 10-90% interval holds {u['count_interval_coverage_80']:.1%} of crops (discrete "
                      "intervals cover at least 80% by construction)"]
        lines += ["", "## Verdicts", *(f"- {v}" for v in self.verdicts())]
        if self.selected:
            lines += ["", f"Shipped: {self.selected.get('model')} ({self.selected.get('why')})"]
        return "\n".join(lines) + "\n"

    def to_rich(self) -> Any:
        from rich.table import Table

        t = Table(title=f"riot forecasts: {PROTOCOL}, {self.horizon_days}-day window")
        for h in self.header():
            t.add_column(h, justify="left" if h in ("origin", "scope", "model") else "right")
        for r in self.rows():
            t.add_row(*r, style="bold" if r[2] == "riotvit" else None)
        return t

    def summary(self) -> dict[str, Any]:
        """What the bundle and the model card keep: the last origin's scores and the verdicts."""
        return to_jsonable({"protocol": PROTOCOL, "origin": self.last, "scores": self.scores[self.last],
                            "uncertainty": self.uncertainty, "verdicts": self.verdicts(), "selected": self.selected})

    def write(self, run_dir: Path) -> None:
        write_json(Path(run_dir) / "metrics.json", self.to_dict())
        with atomic_file(Path(run_dir) / "metrics.md") as tmp:
            tmp.write_text(self.to_markdown())


def describe_protocol(r: ForecastReport) -> str:
    """One paragraph: which origins were tested, on what they trained, and which crops were scored."""
    parts = [f"Rolling-origin evaluation crossed with spatial blocks: each test origin t forecasts P(>= 1 riot) in "
             f"[t + {r.lead_days} d, t + {r.lead_days + r.horizon_days} d). Models train only on origins whose label "
             "windows end by t, never on the held-out block fold or its buffer ring, and are calibrated on the "
             "validation fold of the latest training origin."]
    for o in r.origins:
        parts.append(f"Origin {o['origin']}: trained on {', '.join(o['train_origins'])}; {o['n_crops']} crops, "
                     f"{o['riots']} riot crops, {o['onset_crops']} onset crops; folds {o['folds']}.")
    return " ".join(parts)


def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if not np.isfinite(f) else f"{f:.3f}"
