"""What QGIS's Identify panel and map tips show for a cell: one sentence, and readable field names.

``summary`` (a column of the cells layer) reads e.g. "P(≥ 1 riot, Jun 2022–Jun 2024) = 0.34
(± 0.05); drivers: 4 riots within 2 km in the year before (+0.27), youth share 38% (+0.11),
imagery (+0.09)". The field aliases come from :mod:`riotvit.labels`, so the panel, the plots and
the model card use the same words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riotvit.labels import driver_phrase, feature_label, label
from riotvit.window import ForecastWindow

#: The cells layer's display expression (the name of a feature in the Identify panel).
DISPLAY_EXPRESSION = '"summary"'
#: The map tip (hover text) of the cells layer.
MAP_TIP = '[% "summary" %]'


def summary_text(cells: pd.DataFrame, window: ForecastWindow, top_k: int = 3) -> list[str]:
    """One sentence per cell: the probability, its spread, expected riots, the drivers and a partial-cell note."""
    n = len(cells)
    head = f"P(≥ 1 {window.noun}, {window.short})"

    def col(name: str, fill: float = np.nan) -> np.ndarray:
        return cells[name].to_numpy(dtype=np.float64) if name in cells else np.full(n, fill)

    p, u, vf = col("riot_probability"), col("uncertainty"), col("valid_fraction", 1.0)
    ev, lo, hi = col("expected_events"), col("events_p10"), col("events_p90")
    interval = "events_p10" in cells
    players = {c.removeprefix("shap_") for c in cells.columns if c.startswith("shap_")}
    drivers = [(cells[f"driver_{k}"].to_numpy(dtype=object), col(f"driver_{k}_value"), col(f"driver_{k}_shap"))
               for k in range(1, top_k + 1) if f"driver_{k}" in cells]
    out = []
    for i in range(n):
        text = f"{head} = {p[i]:.2f}"
        if np.isfinite(u[i]) and u[i] > 0:  # a single model without test-time views measures no spread
            text += f" (± {u[i]:.2f})" if u[i] >= 0.005 else f" (± {u[i]:.1g})"
        if interval and np.isfinite(ev[i]):
            text += f"; expected riots {ev[i]:.1f} (10–90%: {lo[i]:.0f}–{hi[i]:.0f})"
        parts = []
        for names, vals, shaps in drivers:
            name = names[i]
            if not name:
                continue
            parts.append(driver_phrase(name, vals[i], shaps[i]) if name in players else str(name))  # "no clear driver"
        if parts:
            text += "; drivers: " + ", ".join(parts)
        if vf[i] < 0.99:
            text += f"; partial cell: {vf[i]:.0%} imagery"
        out.append(text)
    return out


def field_aliases(fields: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Field name -> alias with unit, e.g. ``hist_riots_365d_2km`` -> ``riots within 2 km in the year before``."""
    out = {}
    for f in fields:
        if f.startswith("driver_"):
            k, _, what = f.removeprefix("driver_").partition("_")
            out[f] = {"": f"driver {k}", "effect": f"driver {k}: effect", "value": f"driver {k}: value",
                      "shap": f"driver {k}: SHAP (log-odds)"}.get(what, f)
            continue
        fl = feature_label(f)
        out[f] = f"{label(f)} ({fl.unit})" if fl.unit and fl.unit not in ("events", "share") else label(f)
    return out
