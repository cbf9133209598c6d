"""SHAP plots with the shap library: a beeswarm of the metadata features and a bar chart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from riotvit.io import atomic_file
from riotvit.labels import axis_label


@contextmanager
def _agg_figure() -> Iterator[object]:
    """A fresh pyplot figure drawn with Agg (headless), leaving the caller's backend and figures
    alone (in a notebook, inline plots keep working after an explanation)."""
    import matplotlib.pyplot as plt

    old = plt.get_backend()
    plt.switch_backend("Agg")
    fig = plt.figure()
    try:
        yield fig
    finally:
        plt.close(fig)
        plt.switch_backend(old)


def _save(fig, path: Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def shap_beeswarm(values: np.ndarray, data: np.ndarray, names: list[str], path: Path, base: float,
                  max_points: int = 5000, max_display: int = 15) -> Path:
    """``shap_summary.png``: one dot per cell and feature, coloured by the feature's value (human labels)."""
    import shap

    names = [axis_label(n) for n in names]
    if values.shape[0] > max_points:
        keep = np.linspace(0, values.shape[0] - 1, max_points).astype(int)
        values, data = values[keep], data[keep]
    exp = shap.Explanation(values=values, base_values=np.full(values.shape[0], base), data=data, feature_names=names)
    with _agg_figure() as fig:
        shap.plots.beeswarm(exp, max_display=max_display, show=False)
        fig.suptitle("SHAP of the riot log-odds per cell (metadata features)", fontsize=10)
        _save(fig, path)
    return path


def shap_bar(values: np.ndarray, names: list[str], path: Path, max_display: int = 15) -> Path:
    """``shap_bar.png``: mean |SHAP| per feature, the image included (human labels)."""
    import shap

    names = [axis_label(n) for n in names]
    exp = shap.Explanation(values=values, feature_names=names)
    with _agg_figure() as fig:
        shap.plots.bar(exp, max_display=max_display, show=False)
        fig.suptitle("mean |SHAP| of the riot log-odds (image = all pixels together)", fontsize=10)
        _save(fig, path)
    return path
