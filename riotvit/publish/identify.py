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
    """One sentence per cell: the probability, its spread, the drivers and a partial-cell note."""
    head = f"P(≥ 1 {window.noun}, {window.short})"
    p = cells["riot_probability"].to_numpy(dtype=np.float64)
    u = cells["uncertainty"].to_numpy(dtype=np.float64) if "uncertainty" in cells else np.full(p.size, np.nan)
    vf = cells["valid_fraction"].to_numpy(dtype=np.float64) if "valid_fraction" in cells else np.ones(p.size)
    drivers = [k for k in range(1, top_k + 1) if f"driver_{k}" in cells]
    players = {c.removeprefix("shap_") for c in cells.columns if c.startswith("shap_")}
    out = []
    for i in range(p.size):
        text = f"{head} = {p[i]:.2f}"
        if np.isfinite(u[i]) and u[i] > 0:  # a single model without test-time views measures no spread
            text += f" (± {u[i]:.2f})" if u[i] >= 0.005 else f" (± {u[i]:.1g})"
        if "events_p10" in cells and np.isfinite(cells["expected_events"].iat[i]):
            text += (f"; expected riots {cells['expected_events'].iat[i]:.1f} (10–90%: "
                     f"{cells['events_p10'].iat[i]:.0f}–{cells['events_p90'].iat[i]:.0f})")
        parts = []
        for k in drivers:
            name = cells[f"driver_{k}"].iat[i]
            if not name:
                continue
            if name not in players:
                parts.append(str(name))  # "no clear driver"
                continue
            val = cells[f"driver_{k}_value"].iat[i] if f"driver_{k}_value" in cells else None
            shap = cells[f"driver_{k}_shap"].iat[i] if f"driver_{k}_shap" in cells else None
            parts.append(driver_phrase(name, val, shap))
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
