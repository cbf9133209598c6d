"""``riotvit score``: a prediction folder checked against the events that arrived later.

A forecast is only as good as what happens in its window. :func:`score_prediction` reads a
prediction folder (``cells.gpkg`` with ``riot_probability``, and ``run.json``), takes its forecast
window (``run.json["window"]``, else derived from ``run.json["date"]`` and the bundle's label
definition), reads a later ACLED export exactly as ``riotvit join`` does (same reader, same
precision radii and exclusions, same event types as the bundle's label) and counts, per cell, the
events inside the window. It scores the map with AUPR, AUROC, Brier and the Brier skill score
against **persistence** (a riot in the cell during the ``horizon`` days before the as-of date, from
the same export) and **climatology** (the share of cells with a riot in that earlier window), next
to persistence's own scores, and says when the data are too thin for a meaningful AUPR
(:mod:`riotvit.thin`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riotvit.errors import BundleError, EventsError, GridError, InputError, clip
from riotvit.grid import CropGrid
from riotvit.io import atomic_file, resolve_recorded, write_json
from riotvit.join.events.acled import AcledConfig, read_acled
from riotvit.join.events.labels import (
    LabelSpec,
    build_reference,
    build_targets,
    crop_key,
    crop_pairs,
    is_riot,
)
from riotvit.join.stage import JoinConfig, project_events
from riotvit.thin import ThinData, assess_thin_data
from riotvit.train.forecast_metrics import forecast_metrics
from riotvit.window import ForecastWindow as Window
from riotvit.window import run_window

SCORE_FILE = "score.json"
COVERAGE_SLACK_DAYS = 14
"""An export may start up to this many days after a window starts (or end this many before it ends)
and still cover it: exports are cut by date, but their first and last events rarely fall on the cut."""
LOCATION_DECIMALS = 4
"""Event coordinates are rounded to this many decimals (about 11 m) to count distinct locations."""


@dataclass
class ScoreReport:
    """What :func:`score_prediction` found: the window, the counts and the metrics."""

    prediction: Path
    acled: Path
    window: Window
    export_range: tuple[dt.date, dt.date]
    cells: int
    positive_cells: int
    event_locations: int
    events_in_window: int
    model: dict[str, float]
    persistence: dict[str, float]
    climatology: float
    thin: ThinData
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        clean = lambda d: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}  # noqa: E731
        return {"prediction": str(self.prediction), "acled": str(self.acled), "window": self.window.to_dict(),
                "export_range": [d.isoformat() for d in self.export_range], "cells": self.cells,
                "positive_cells": self.positive_cells, "event_locations": self.event_locations,
                "events_in_window": self.events_in_window, "climatology": self.climatology,
                "metrics": {"riotvit": clean(self.model), "persistence": clean(self.persistence)},
                "thin_data": self.thin.to_dict(), "warnings": self.warnings}


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read the {what} ({clip(str(e))}); rerun riotvit predict") from e


def _bundle_meta(pred: Path, run: dict, required: bool) -> dict | None:
    """The bundle's ``bundle.json`` as recorded by the prediction's ``run.json`` (None when it is
    gone and not ``required``: the window is in run.json, and the ACLED options fall back to the defaults)."""
    rec = (run.get("model") or {}).get("path")
    if not rec:
        if not required:
            return None
        raise InputError(f"{pred / 'run.json'}: names no model bundle (model.path); rerun riotvit predict")
    path = resolve_recorded(rec, pred) / "bundle.json"
    if not path.is_file() and not required:
        return None
    if not path.is_file():
        raise BundleError(f"{path}: the prediction's model bundle is gone; the window and label need it "
                          "(restore the bundle, or predict again with a riotvit that writes the window into run.json)")
    return _read_json(path, "model bundle")


def prediction_window(pred: Path, run: dict, bundle: dict | None) -> Window:
    """``run.json["window"]`` when present, else as-of ``run.json["date"]`` plus the bundle's label window."""
    w = run_window(run, bundle)
    if w is None:
        raise BundleError(f"{pred / 'run.json'}: no forecast window and no date plus bundle to derive it; "
                          "predict again with this riotvit (it writes the window into run.json)")
    return w


def _join_config(bundle: dict | None, event_types: list[str] | None, window: Window) -> JoinConfig:
    """The label definition and ACLED reading options of the bundle's join (event types overridable)."""
    raw = dict(((bundle or {}).get("provenance") or {}).get("join", {}).get("config") or {})
    known = set(JoinConfig.model_fields)
    cfg = JoinConfig.model_validate({k: v for k, v in raw.items() if k in known})
    upd: dict[str, Any] = {"lead_days": window.lead_days, "horizon_days": window.horizon_days,
                           "riot_event_types": list(event_types or window.event_types)}
    if event_types:
        upd["riot_sub_event_types"] = []
    return cfg.model_copy(update=upd)


def _read_cells(pred: Path) -> gpd.GeoDataFrame:
    """The folder's ``cells`` layer, with ``col`` and ``row`` parsed from each ``crop_id``."""
    path = pred / "cells.gpkg"
    if not path.is_file():
        raise InputError(f"{pred}: not a prediction folder (no cells.gpkg); give the folder riotvit predict wrote")
    cells = gpd.read_file(path, layer="cells")
    missing = [c for c in ("crop_id", "riot_probability") if c not in cells.columns]
    if missing:
        raise InputError(f"{path}: layer 'cells' lacks {', '.join(missing)}; predict again with this riotvit")
    try:
        ids = [CropGrid.parse_crop_id(str(c)) for c in cells["crop_id"]]
    except GridError as e:
        raise InputError(f"{path}: {e}; predict again with this riotvit") from e
    cells["col"], cells["row"] = [i[2] for i in ids], [i[3] for i in ids]
    return cells


def _check_coverage(acled: Path, window: Window, emin: dt.date, emax: dt.date) -> None:
    slack = dt.timedelta(days=COVERAGE_SLACK_DAYS)
    if emin > window.start + slack or emax < window.end - slack:
        raise EventsError(
            f"{acled}: the export's events run {emin}..{emax} but the forecast window is {window.start}..{window.end}; "
            f"give an export covering the whole window (to within {COVERAGE_SLACK_DAYS} days at each end), "
            "or wait until the window is over")


def score_prediction(
    pred_dir: str | Path, acled_path: str | Path, *, event_types: list[str] | None = None,
    acled_config: AcledConfig | None = None, write: bool = True,
) -> ScoreReport:
    """Score a prediction folder against an ACLED export that covers its forecast window.

    Args:
        pred_dir: a folder written by ``riotvit predict`` (``run.json``, ``cells.gpkg``).
        acled_path: an ACLED export covering the window (any variant ``riotvit join`` reads).
        event_types: ACLED event types that count (default: the bundle's label, e.g. Riots).
        acled_config: how the export is read (default: the bundle's join options, so precision
            radii and exclusions match the training labels).
        write: write ``score.json`` into the prediction folder.

    Raises:
        InputError: the folder is not a prediction (no ``run.json`` or ``cells.gpkg``).
        BundleError: no window in ``run.json`` and the bundle it names is gone.
        EventsError: the export does not cover the window (its date range and the window are named).
    """
    pred, acled = Path(pred_dir), Path(acled_path)
    if not (pred / "run.json").is_file():
        raise InputError(f"{pred}: not a prediction folder (no run.json); give the folder riotvit predict wrote")
    run = _read_json(pred / "run.json", "prediction record (run.json)")
    bundle = _bundle_meta(pred, run, required=not run.get("window"))
    window = prediction_window(pred, run, bundle)
    cfg = _join_config(bundle, event_types, window)
    if event_types:  # the types scored are the window's: score.json and its label say what was counted
        window = replace(window, event_types=tuple(event_types))
    spec = cfg.label_spec()
    cells = _read_cells(pred)
    grid = CropGrid.from_dict(run["grid"])
    events, _ = read_acled(acled, acled_config or cfg.acled)
    if events.empty:
        raise EventsError(f"{acled}: no usable events; check the file with riotvit join -v")
    emin, emax = events["event_date"].min().date(), events["event_date"].max().date()
    _check_coverage(acled, window, emin, emax)
    events = project_events(events, grid.epsg)
    _check_area(acled, events, cells, grid)
    crops = pd.DataFrame({"col": cells["col"].to_numpy(), "row": cells["row"].to_numpy(),
                          "date": pd.Timestamp(window.as_of)})
    y = build_targets(crops, events, grid, spec)["riot"].to_numpy()
    persist = build_reference(crops, events, grid, spec)["persist_riot"].to_numpy().astype(np.float64)
    p = cells["riot_probability"].to_numpy(dtype=np.float64)
    clim = float(persist.mean()) if len(persist) else math.nan
    warnings = [] if bundle is not None else [
        "the model bundle is gone: the export was read with the default ACLED options, which may differ from the labels'"]
    if emin > window.as_of - dt.timedelta(days=window.horizon_days) + dt.timedelta(days=COVERAGE_SLACK_DAYS):
        warnings.append(f"the export starts {emin}, after the persistence window starts "
                        f"({window.as_of - dt.timedelta(days=window.horizon_days)}): persistence and climatology undercount")
    locations, n_events = _event_locations(crops, events, grid, spec, window)
    thin = assess_thin_data(int(y.sum()), len(y), locations)
    report = ScoreReport(
        pred, acled, window, (emin, emax), len(y), int(y.sum()), locations, n_events,
        forecast_metrics(y, p, p_persistence=persist, climatology=clim),
        forecast_metrics(y, persist, climatology=clim), clim, thin, warnings)
    if write:
        with atomic_file(pred / SCORE_FILE) as tmp:
            write_json(tmp, report.to_dict())
    return report


def _check_area(acled: Path, events: pd.DataFrame, cells: pd.DataFrame, grid: CropGrid) -> None:
    """Refuse an export with no event within 10 km of the prediction: it is another area's, and its
    all-negative score would mean nothing."""
    x0 = cells["col"].min() * grid.stride_m - 10_000
    x1 = (cells["col"].max() * grid.stride_m + grid.crop_m) + 10_000
    y0 = cells["row"].min() * grid.stride_m - 10_000
    y1 = (cells["row"].max() * grid.stride_m + grid.crop_m) + 10_000
    x, y = events["x"].to_numpy(), events["y"].to_numpy()
    if not ((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).any():
        raise EventsError(f"{acled}: no event within 10 km of the prediction's cells; is it the export of another "
                          "area? pass the export that covers the mapped region")


def _event_locations(crops: pd.DataFrame, events: pd.DataFrame, grid: CropGrid, spec: LabelSpec,
                     window: Window) -> tuple[int, int]:
    """Distinct locations (rounded lon/lat) and number of the label events that touch a scored cell."""
    ev = events[~events["label_excluded"].to_numpy() & is_riot(events, spec)]
    day = ev["event_date"].dt.date
    ev = ev[((day >= window.start) & (day <= window.end)).to_numpy()]
    keys = np.sort(crop_key(crops["col"].to_numpy(), crops["row"].to_numpy()))
    e_i, _ = crop_pairs(grid, ev["x"].to_numpy(), ev["y"].to_numpy(), ev["radius_m"].to_numpy(), keys)
    hit = ev.iloc[np.unique(e_i)]
    pts = set(zip(hit["longitude"].round(LOCATION_DECIMALS), hit["latitude"].round(LOCATION_DECIMALS)))
    return len(pts), len(hit)
