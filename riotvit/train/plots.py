"""PNG plots of training and evaluation: reliability diagram, training curves, PR curves.

Figures are drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, so no global
pyplot state or backend is touched and nothing is ever shown. Each PNG is written atomically
at exactly ``figsize * dpi`` pixels (no tight bounding box).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riotvit.io import atomic_file
from riotvit.train.forecast_metrics import wilson_interval

DPI = 100
"""Pixels per inch of every PNG."""

_COLORS = ("#d62728", "#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd", "#ff7f0e")


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def reliability_diagram(
    bins_per_model: Mapping[str, Mapping[str, Sequence]],
    path: str | Path,
    title: str = "Reliability",
    size: tuple[float, float] = (6.0, 6.5),
) -> Path:
    """Observed riot frequency against mean predicted probability, one series per model.

    Each bin is a point at (mean prediction, observed frequency) with its Wilson 95 % interval
    as an error bar and its crop count written beside it; the diagonal is perfect calibration.
    Deterministic: the same bins give the same PNG bytes.

    Args:
        bins_per_model: ``{model: reliability bins}`` as returned by
            :func:`~riotvit.train.metrics.reliability_bins` (equal-mass by default; bins of
            older equal-width results without ``ci_low`` / ``ci_high`` get their Wilson interval
            computed here; empty bins are skipped).
        path: the PNG to write.
        title: what is shown, e.g. ``"test origin 2022-06-15, held-out blocks, calibrated"``;
            the bin rule is added below it.
        size: inches; the PNG is ``size * 100`` pixels.

    Returns:
        ``path``.
    """
    fig = _figure(size)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="black", lw=1, label="perfect calibration")
    rules = set()
    n_models = max(len(bins_per_model), 1)
    for i, (name, b) in enumerate(bins_per_model.items()):
        mean = np.asarray(b["mean_pred"], dtype=np.float64)
        obs = np.asarray(b["obs_freq"], dtype=np.float64)
        count = np.asarray(b["count"], dtype=np.float64)
        if "ci_low" in b and "ci_high" in b:
            lo = np.asarray(b["ci_low"], dtype=np.float64)
            hi = np.asarray(b["ci_high"], dtype=np.float64)
        else:
            lo, hi = wilson_interval(np.rint(np.nan_to_num(obs) * count), count)
        ok = (count > 0) & np.isfinite(mean) & np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
        rules.add(str(b.get("strategy", "uniform")))
        color = _COLORS[i % len(_COLORS)]
        yerr = np.vstack([np.maximum(obs[ok] - lo[ok], 0), np.maximum(hi[ok] - obs[ok], 0)])
        ax.errorbar(mean[ok], obs[ok], yerr=yerr, marker="o", ms=4, lw=1, capsize=2,
                    color=color, label=f"{name} ({int(count.sum()):,} crops)")
        for x, y, n in zip(mean[ok], obs[ok], count[ok]):
            ax.annotate(f"{int(n)}", (x, y), xytext=(4, 4 + 8 * (i - (n_models - 1) / 2)),
                        textcoords="offset points", fontsize=6, color=color)
    rule = {"quantile": "equal-mass bins", "uniform": "equal-width bins"}
    sub = " / ".join(rule.get(r, r) for r in sorted(rules)) or "no bins"
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted riot probability",
           ylabel="observed riot frequency")
    ax.set_title(f"{title}\n{sub}; bars: Wilson 95% interval; numbers: crops per bin", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def best_epoch_of(history: pd.DataFrame) -> int | None:
    """The epoch whose weights training keeps: the first with the highest validation AUPR."""
    if "val_aupr" not in history or not history["val_aupr"].notna().any():
        return None
    x = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    return int(x.iloc[int(np.nanargmax(history["val_aupr"].to_numpy(dtype=float)))])


def training_curves(
    history: pd.DataFrame, path: str | Path, size: tuple[float, float] = (10.0, 4.0),
    best_epoch: int | None = None, images_per_s: float | None = None,
) -> Path:
    """Two panels per epoch: losses (train, val) and validation AUPR / AUROC; the kept epoch marked.

    Args:
        history: one row per epoch with ``epoch`` and any of ``train_loss``, ``val_loss``,
            ``val_aupr``, ``val_auroc``; ``images_per_s`` and ``lr`` (dotted, right axis of the
            loss panel) are optional.
        path: the PNG to write.
        size: inches.
        best_epoch: the epoch whose weights were kept (default :func:`best_epoch_of`), drawn
            as a vertical line on both panels.
        images_per_s: the run's throughput as the model card states it (training images over
            the whole wall time, validation included); default: the epochs' mean training-step
            rate, labelled as such.
    """
    fig = _figure(size)
    ax_loss, ax_m = fig.subplots(1, 2)
    x = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    for col, color in (("train_loss", _COLORS[1]), ("val_loss", _COLORS[0])):
        if col in history:
            ax_loss.plot(x, history[col], marker=".", color=color, label=col.replace("_", " "))
    if "lr" in history and history["lr"].notna().any():
        ax_lr = ax_loss.twinx()
        ax_lr.plot(x, history["lr"], ls=":", color=_COLORS[2], label="lr")
        ax_lr.set_ylabel("learning rate", color=_COLORS[2])
    from matplotlib.ticker import MaxNLocator

    for a in (ax_loss, ax_m):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.grid(alpha=0.3)
    for col, label, color in (
        ("val_aupr", "val AUPR", _COLORS[0]),
        ("val_auroc", "val AUROC", _COLORS[1]),
    ):
        if col in history:
            ax_m.plot(x, history[col], marker=".", color=color, label=label)
    best = best_epoch if best_epoch is not None else best_epoch_of(history)
    if best is not None:
        for a in (ax_loss, ax_m):
            a.axvline(best, color=_COLORS[3], lw=1.2, ls="--", label=f"kept: epoch {best}")
        if "val_aupr" in history and (x == best).any():
            ax_m.plot([best], [float(history.loc[(x == best).to_numpy(), "val_aupr"].iloc[0])], marker="*",
                      ms=12, color=_COLORS[3], ls="none")
        ax_loss.legend(loc="upper right", fontsize=8)
    ax_m.set(xlabel="epoch", ylabel="score", ylim=(0, 1), title="Validation AUPR / AUROC")
    ax_m.legend(loc="lower right", fontsize=8)
    ax_m.grid(alpha=0.3)
    if images_per_s is not None:
        fig.suptitle(f"throughput {images_per_s:,.0f} images/s (training images / wall time, validation included)",
                     fontsize=9)
    elif "images_per_s" in history and history["images_per_s"].notna().any():
        fig.suptitle(f"training steps: {float(history['images_per_s'].mean()):,.0f} images/s (mean over epochs, "
                     "validation excluded)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def pr_curves(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | Path,
    title: str = "Precision-recall",
    size: tuple[float, float] = (6.0, 5.0),
) -> Path:
    """Precision-recall curves, one per model, with average precision in the legend.

    Args:
        curves: ``{model: (y, p)}`` labels and probabilities on the same test rows.
        path: the PNG to write.
        title: figure title.
        size: inches.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _figure(size)
    ax = fig.subplots()
    prevalence = None
    for i, (name, (y, p)) in enumerate(curves.items()):
        y = np.asarray(y, dtype=np.float64)
        p = np.asarray(p, dtype=np.float64)
        ok = np.isfinite(y) & np.isfinite(p)
        y, p = y[ok] > 0.5, p[ok]
        if y.size == 0 or y.all() or not y.any():
            continue
        prec, rec, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.step(
            rec, prec, where="post", color=_COLORS[i % len(_COLORS)], label=f"{name} (AP {ap:.3f})"
        )
        prevalence = float(y.mean())
    if prevalence is not None:
        ax.axhline(prevalence, ls="--", color="black", lw=1, label=f"prevalence {prevalence:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
