"""The metrics table of a run: per fold and model, written as ``metrics.json`` and ``metrics.md``.

Input is one results dict, ``{split: {model: heads}}``, where ``heads`` is
:func:`~riotvit.train.metrics.evaluate_heads` output (``riot``, ``event_count`` ...) plus an
optional ``info`` dict. The model's results and
:func:`~riotvit.train.baselines.evaluate_baselines` share that shape, so they merge with
:func:`merge_results`. Split names are ``fold<k>`` (spatial block k) and ``temporal``.

Means and standard deviations (``ddof=1``) are over the spatial folds only, skipping folds
where a value is undefined. The AUPR lift over a baseline is ``model AUPR / baseline AUPR`` per
split; its summary is the mean of the per-fold ratios (also given: the ratio of the mean AUPRs
and the mean difference).

Size: the table's JSON, Markdown and rich renderings, lifts and the thin-data rule read the same per-split results; one class keeps them consistent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from riotvit.io import atomic_file, write_json
from riotvit.thin import assess_thin_data
from riotvit.train.baselines import BASELINE_NAMES
from riotvit.train.metrics import pool_reliability
from riotvit.train.plots import reliability_diagram

SCHEMA = "riotvit.metrics/1"
"""Value of ``schema`` in ``metrics.json``."""

COLUMNS = (
    "split",
    "model",
    "n",
    "positives",
    "AUROC",
    "AUPR",
    "Brier",
    "F1",
    "ECE",
    "count MAE",
    "Poisson dev.",
)
"""Columns of the Markdown and rich tables."""

_DASH = "–"


def _finite(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and math.isfinite(float(v))
    )


def _scalar(v: Any) -> bool:
    """A number (nan included) or None: something a mean over folds makes sense of."""
    return v is None or (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    )


def jsonable(obj: Any) -> Any:
    """Deep copy with numpy scalars and arrays made Python, and nan / inf made ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def merge_results(*parts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge ``{split: {model: heads}}`` dicts (later ones add models to the same splits)."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for split, models in part.items():
            out.setdefault(str(split), {}).update(models)
    return out


def _split_fold(name: str, models: Mapping[str, Any]) -> int | None:
    for heads in models.values():
        f = (heads.get("info") or {}).get("test_fold") if isinstance(heads, Mapping) else None
        if f is not None:
            return int(f)
    m = re.fullmatch(r"fold[_-]?(\d+)", name)
    return int(m.group(1)) if m else None


@dataclass
class MetricsTable:
    """Per-split, per-model metrics and what is needed to report them.

    Build it with :func:`build_metrics_table`.
    """

    results: dict[str, dict[str, dict[str, Any]]]
    primary: str
    models: list[str]
    baselines: list[str]
    kinds: dict[str, str]
    folds: dict[str, int | None]
    count_head: str | None = "event_count"
    calibration: Any = None
    threshold_method: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        """Split names in report order: spatial folds by id, then the others."""
        spatial = sorted(
            (s for s in self.results if self.kinds[s] == "spatial"),
            key=lambda s: (self.folds[s] is None, self.folds[s] or 0, s),
        )
        return spatial + [s for s in self.results if self.kinds[s] != "spatial"]

    @property
    def spatial_splits(self) -> list[str]:
        """Names of the spatial-fold splits."""
        return [s for s in self.splits if self.kinds[s] == "spatial"]

    def value(self, split: str, model: str, head: str, metric: str) -> float:
        """One metric, nan when absent or undefined."""
        v = self.results.get(split, {}).get(model, {}).get(head, {}).get(metric)
        return float(v) if _finite(v) else math.nan

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{model: {head: {metric: {"mean", "std", "n"}}}}`` over the spatial folds."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        splits = self.spatial_splits
        for model in self.models:
            heads: dict[str, dict[str, dict[str, float]]] = {}
            names: dict[str, list[str]] = {}
            for s in splits:
                for head, m in self.results[s].get(model, {}).items():
                    if head == "info" or not isinstance(m, Mapping):
                        continue
                    keys = names.setdefault(head, [])
                    keys += [k for k, v in m.items() if k not in keys and _scalar(v)]
            for head, keys in names.items():
                stats = {}
                for k in keys:
                    v = np.array([self.value(s, model, head, k) for s in splits])
                    v = v[np.isfinite(v)]
                    stats[k] = {
                        "mean": float(v.mean()) if v.size else math.nan,
                        "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                        "n": int(v.size),
                    }
                heads[head] = stats
            out[model] = heads
        return out

    def lift(self, metric: str = "aupr") -> dict[str, Any]:
        """The primary model's ``metric`` relative to each baseline, per split and on average."""
        per_split: dict[str, dict[str, dict[str, float]]] = {}
        for s in self.splits:
            m = self.value(s, self.primary, "riot", metric)
            per_split[s] = {}
            for b in self.baselines:
                bv = self.value(s, b, "riot", metric)
                per_split[s][b] = {"ratio": m / bv if bv > 0 else math.nan, "difference": m - bv}
        mean: dict[str, dict[str, float]] = {}
        spatial = self.spatial_splits
        m_vals = np.array([self.value(s, self.primary, "riot", metric) for s in spatial])
        for b in self.baselines:
            b_vals = np.array([self.value(s, b, "riot", metric) for s in spatial])
            ok = np.isfinite(m_vals) & np.isfinite(b_vals)
            b_mean = _nanmean(b_vals[ok])
            mean[b] = {
                "ratio_mean": _nanmean([per_split[s][b]["ratio"] for s in spatial]),
                "ratio_of_means": _nanmean(m_vals[ok]) / b_mean if b_mean > 0 else math.nan,
                "difference_mean": _nanmean([per_split[s][b]["difference"] for s in spatial]),
            }
        return {"metric": metric, "per_split": per_split, "mean": mean}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``metrics.json`` (nan written as null)."""
        return jsonable(
            {
                "schema": SCHEMA,
                "primary": self.primary,
                "models": self.models,
                "baselines": self.baselines,
                "folds": [self.folds[s] for s in self.spatial_splits],
                "temporal": [s for s in self.splits if self.kinds[s] != "spatial"],
                "calibration": self.calibration,
                "threshold_method": self.threshold_method,
                "thresholds": {
                    s: {m: self.value(s, m, "riot", "threshold") for m in self.models}
                    for s in self.splits
                },
                "splits": {
                    s: {
                        "kind": self.kinds[s],
                        "test_fold": self.folds[s],
                        "models": self.results[s],
                    }
                    for s in self.splits
                },
                "summary": {"spatial": self.summary()},
                "lift": {"aupr": self.lift("aupr")},
                "thin_data": self.thin_data().to_dict(),
                "meta": self.meta,
            }
        )

    def rows(self) -> list[list[str]]:
        """Table rows (strings) per split x model, then a ``mean`` block over spatial folds."""
        ch = self.count_head
        cells = [("riot", k) for k in ("auroc", "aupr", "brier", "f1", "ece")]
        cells += [(ch, "mae"), (ch, "poisson_deviance")] if ch else [("", ""), ("", "")]
        out = []
        for s in self.splits:
            for m in self.models:
                if m in self.results[s]:
                    n, npos = self.value(s, m, "riot", "n"), self.value(s, m, "riot", "n_pos")
                    vals = [_fmt(self.value(s, m, h, k)) for h, k in cells]
                    out.append([s, m, _fmt_int(n), _fmt_int(npos), *vals])
        spatial = self.spatial_splits
        summary = self.summary() if spatial else {}
        for m in self.models if spatial else []:
            n = np.nansum([self.value(s, m, "riot", "n") for s in spatial])
            npos = np.nansum([self.value(s, m, "riot", "n_pos") for s in spatial])
            vals = [_fmt_mean_std(summary.get(m, {}).get(h, {}).get(k)) for h, k in cells]
            out.append(["mean", m, _fmt_int(n), _fmt_int(npos), *vals])
        return out

    def to_markdown(self) -> str:
        """The ``metrics.md`` text: a header line, the table, and the AUPR lift lines."""
        lines = ["# riotvit metrics", ""]
        cal = self.calibration.get("method") if isinstance(self.calibration, Mapping) else self.calibration
        folds = ", ".join(str(self.folds[s]) for s in self.spatial_splits) or _DASH
        lines.append(
            f"Calibration: {cal or 'none'} · threshold: {self.threshold_method or 'given'} on "
            f"validation data · spatial test folds: {folds} · temporal split: "
            f"{'yes' if len(self.splits) > len(self.spatial_splits) else 'no'}"
        )
        lines += [
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join(["---"] * 2 + ["---:"] * (len(COLUMNS) - 2)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows()]
        lift = self.lift("aupr")
        lines.append("")
        thin = self.thin_data()
        if thin.thin:  # a lift over a handful of positives is noise: say so instead of printing it
            lines.append(f"- {thin.sentence}")
        for b in self.baselines if not thin.thin else ():
            r = lift["mean"][b]["ratio_mean"]
            per = ", ".join(_fmt(lift["per_split"][s][b]["ratio"], 2) for s in self.spatial_splits)
            lines.append(
                f"- AUPR lift of {self.primary} over {b}: {_fmt(r, 2)}× (mean over spatial folds; per fold {per or _DASH})"
            )
        lines += ["", "Mean rows: mean ± standard deviation over spatial folds; n and positives are totals. "
                  f"{_DASH} means undefined (e.g. a fold with one class)."]
        return "\n".join(lines) + "\n"

    def thin_data(self):
        """Whether the held-out labels are too few for a meaningful AUPR (:mod:`riotvit.thin`)."""

        splits = self.spatial_splits or self.splits
        n = np.nansum([self.value(s, self.primary, "riot", "n") for s in splits])
        npos = np.nansum([self.value(s, self.primary, "riot", "n_pos") for s in splits])
        return assess_thin_data(int(npos), int(n))

    def to_rich(self) -> Any:
        """A ``rich.table.Table`` of :meth:`rows` for printing."""
        from rich.table import Table

        thin = self.thin_data()
        table = Table(title=f"riotvit metrics ({self.primary} vs {', '.join(self.baselines)})",
                      caption=thin.sentence if thin.thin else None)
        for i, c in enumerate(COLUMNS):
            table.add_column(c, justify="left" if i < 2 else "right", no_wrap=i < 2)
        prev = None
        for r in self.rows():
            if prev is not None and r[0] != prev:
                table.add_section()
            prev = r[0]
            table.add_row(*r, style="bold" if r[1] == self.primary else None)
        return table


def _fmt(v: Any, digits: int = 3) -> str:
    return f"{float(v):.{digits}f}" if _finite(v) else _DASH


def _fmt_mean_std(stats: Mapping[str, Any] | None) -> str:
    if not stats or not _finite(stats["mean"]):
        return _DASH
    std = f" ± {_fmt(stats['std'])}" if _finite(stats["std"]) else ""
    return _fmt(stats["mean"]) + std


def _nanmean(values: Any) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _fmt_int(v: Any) -> str:
    return str(int(round(float(v)))) if _finite(v) else _DASH


def build_metrics_table(
    results: Mapping[str, Mapping[str, Mapping[str, Any]]],
    primary: str = "riotvit",
    baselines: Sequence[str] = BASELINE_NAMES,
    count_head: str | None = "event_count",
    calibration: Any = None,
    threshold_method: str | None = None,
    kinds: Mapping[str, str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> MetricsTable:
    """Assemble a :class:`MetricsTable`.

    Args:
        results: ``{split: {model: heads}}`` (see :func:`merge_results`).
        primary: the model being evaluated (listed first; lifts are computed for it).
        baselines: baseline model keys (those present are kept).
        count_head: the count head shown in the table columns (None: no count columns).
        calibration: the calibration used (a calibrator's ``to_dict()`` or a method name).
        threshold_method: how thresholds were chosen (``"f1"``...).
        kinds: ``{split: "spatial" | "temporal"}``; default: ``temporal*`` names are temporal.
        meta: extra JSON-friendly facts (run id, data provenance).
    """
    res = {str(s): {str(m): dict(h) for m, h in models.items()} for s, models in results.items()}
    present = {m for models in res.values() for m in models}
    models = [primary] if primary in present else []
    bases = [b for b in baselines if b in present and b != primary]
    models += bases + sorted(present - set(models) - set(bases))
    kinds = dict(kinds or {})
    kinds = {s: kinds.get(s, "temporal" if s.startswith("temporal") else "spatial") for s in res}
    folds = {s: (_split_fold(s, res[s]) if kinds[s] == "spatial" else None) for s in res}
    return MetricsTable(
        results=res,
        primary=primary,
        models=models,
        baselines=bases,
        kinds=kinds,
        folds=folds,
        count_head=count_head,
        calibration=calibration,
        threshold_method=threshold_method,
        meta=dict(meta or {}),
    )


def write_metrics(run_dir: str | Path, table: MetricsTable) -> dict[str, Path]:
    """Write ``metrics.json`` and ``metrics.md`` into ``run_dir`` (atomically)."""
    run_dir = Path(run_dir)
    paths = {"json": run_dir / "metrics.json", "md": run_dir / "metrics.md"}
    write_json(paths["json"], table.to_dict())  # to_dict has made nan / inf null already
    with atomic_file(paths["md"]) as tmp:
        tmp.write_text(table.to_markdown(), encoding="utf-8")
    return paths


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read a ``metrics.json`` (a file, or the run folder that holds it)."""
    p = Path(path)
    p = p / "metrics.json" if p.is_dir() else p
    return json.loads(p.read_text(encoding="utf-8"))


def write_reliability_plots(
    run_dir: str | Path, table: MetricsTable, per_split: bool = True
) -> list[Path]:
    """Reliability diagrams: ``reliability.png`` (spatial folds pooled) and one per split.

    Returns:
        The PNGs written (none when no model has reliability bins).
    """
    run_dir = Path(run_dir)
    bins = {
        s: {m: b for m in table.models if (b := table.results[s].get(m, {}).get("riot", {}).get("reliability"))}
        for s in table.splits
    }
    pooled = {
        m: pool_reliability(parts)
        for m in table.models
        if (parts := [bins[s][m] for s in table.spatial_splits if m in bins[s]])
    }
    written = []
    if pooled:
        title = "Reliability (spatial folds pooled)"
        written.append(reliability_diagram(pooled, run_dir / "reliability.png", title=title))
    if per_split:
        written += [reliability_diagram(b, run_dir / f"reliability_{s}.png", title=f"Reliability ({s})")
                    for s, b in bins.items() if b]
    return written
