"""The words printed on every hand-out map: title, forecast window, data line, skill and disclaimer.

One place builds them from a prediction folder, so the QGIS print layout
(:mod:`riotvit.publish.layout`) and the picture without QGIS (:mod:`riotvit.publish.mapfig`)
say the same thing. The forecast window is read from ``run.json["window"]`` when present (the
shared contract of :mod:`riotvit.window`); older folders get it derived from ``run.json["date"]``
and the bundle's ``bundle.json`` (``targets.lead_days``/``horizon_days``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riotvit.errors import InputError
from riotvit.io import resolve_recorded
from riotvit.thin import assess_thin_data
from riotvit.window import run_window

DISCLAIMER = "Area-level risk for prevention and planning; not a prediction about individuals."
ACLED_CREDIT = "Events: ACLED, acleddata.com"


@dataclass(frozen=True)
class MapTexts:
    """The text blocks of a hand-out map.

    Attributes:
        title: the headline, e.g. ``Riot risk: Nairobi``.
        window: what the probability is of, e.g. ``P(≥ 1 riot), 2022-06-15 → 2024-06-14``.
        data_line: attribution of every source (ACLED's terms require it).
        skill_line: the model's skill in one line (from the model card).
        disclaimer: how the map may be used.
    """

    title: str
    window: str
    data_line: str
    skill_line: str = ""
    disclaimer: str = DISCLAIMER


def read_run(pred_dir: Path) -> dict[str, Any]:
    """A prediction folder's ``run.json`` (an empty dict when there is none)."""
    path = Path(pred_dir) / "run.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON ({exc}); rerun `riotvit predict` to rewrite it") from None


def _bundle_json(pred_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    rec = (run.get("model") or {}).get("path")
    if not rec:
        return {}
    path = resolve_recorded(rec, pred_dir) / "bundle.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_window(pred_dir: Path, run: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The forecast window of a prediction: ``run.json["window"]``, else derived; None when unknown.

    Derived windows start ``lead_days`` after ``run.json["date"]`` and end, inclusive,
    ``horizon_days - 1`` days later (labels count events in ``[t + lead, t + lead + horizon)``).
    """
    run = read_run(pred_dir) if run is None else run
    w = run_window(run, _bundle_json(pred_dir, run))
    return None if w is None else w.to_dict()


def data_line(run: dict[str, Any]) -> str:
    """``Events: ACLED, acleddata.com; imagery: s2 (2022-06-15); census: …`` from ``run.json``."""
    parts = [ACLED_CREDIT]
    imagery = [f"{i.get('id', '?')} ({i.get('date', '?')})" for i in run.get("imagery") or []]
    if imagery:
        parts.append("imagery: " + ", ".join(imagery))
    census = (run.get("metadata") or {}).get("census")
    if isinstance(census, dict) and census.get("path"):
        parts.append("census: " + Path(str(census["path"])).stem)
    return "; ".join(parts)


def skill_line(bundle: dict[str, Any]) -> str:
    """The model's skill in one line, from ``bundle.json`` metrics ('' when it has none).

    Forecast bundles: the shipped model's AUPR (against persistence's) and Brier skill against
    persistence at the test origin. Single-date bundles: the cross-validated AUPR of riotvit
    against the history + census baseline.
    """
    metrics = bundle.get("metrics") or {}
    fc = bundle.get("forecast") or {}
    for scope, models in (metrics.get("scores") or {}).items():
        m = (models or {}).get("riotvit") or {}  # the shipped forecast (the stack, or history + census alone)
        if isinstance(m.get("aupr"), (int, float)):
            ref = ((models or {}).get("persistence") or {}).get("aupr")
            vs = f" (persistence {ref:.2f})" if isinstance(ref, (int, float)) else ""
            bss = m.get("bss_persistence")
            extra = f"; Brier skill vs persistence {bss:+.2f}" if isinstance(bss, (int, float)) else ""
            origin = metrics.get("origin") or fc.get("origin") or "?"
            thin = assess_thin_data(int(m.get("positives", 0)), int(m.get("n", 0)))
            caveat = f" Too few riots to judge ({thin.positives} riot cells)." if thin.thin else ""
            return f"Skill at origin {origin} ({scope}): AUPR {m['aupr']:.2f}{vs}{extra}.{caveat} See model_card.md."

    def aupr(model: str) -> float | None:
        v = ((metrics.get(model) or {}).get("riot") or {}).get("aupr")
        return v.get("mean") if isinstance(v, dict) and isinstance(v.get("mean"), (int, float)) else None

    if aupr("riotvit") is not None:
        ref = aupr("history_census")
        vs = f" (history + census {ref:.2f})" if ref is not None else ""
        return f"Skill (spatial block cross-validation): AUPR {aupr('riotvit'):.2f}{vs}. See model_card.md."
    return ""


def map_texts(pred_dir: Path, *, title: str | None = None, skill: str | None = None) -> MapTexts:
    """The texts of a prediction folder's hand-out map.

    Args:
        pred_dir: the prediction folder (reads ``run.json`` and, through it, ``bundle.json``).
        title: the headline; default ``Riot risk: <region name>``.
        skill: the skill line; default from the bundle's metrics.
    """
    pred_dir = Path(pred_dir)
    run = read_run(pred_dir)
    w = read_window(pred_dir, run)
    region = (run.get("region") or {}).get("name") or pred_dir.name
    window = w["label"] if w else f"P(≥ 1 riot), window unknown (image date {run.get('date', '?')})"
    if skill is None:
        skill = skill_line(_bundle_json(pred_dir, run))
    return MapTexts(title=title or f"Riot risk: {region}", window=window, data_line=data_line(run),
                    skill_line=skill)
