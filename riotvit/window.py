"""The forecast window of a prediction: what its probabilities are the probability *of*.

An image date ``as_of`` is a forecast origin. The labels the model learnt count events of the
riot event types in ``[as_of + lead, as_of + lead + horizon)``, so a prediction at ``as_of`` is
``P(≥ 1 riot)`` in the days ``start`` to ``end`` (both inclusive). Every output of a prediction
states this window: the raster tags, ``run.json`` (key ``window``), layer names, cell
attributes, the model card and the project title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from riotvit.errors import InputError


@dataclass(frozen=True)
class ForecastWindow:
    """The days a prediction made at ``as_of`` is about.

    Attributes:
        as_of: the forecast origin (the imagery date).
        start: the first day of the window.
        end: the last day inside the window (inclusive).
        lead_days: days from ``as_of`` to ``start``.
        horizon_days: length of the window, days.
        event_types: the ACLED event types counted as riots.
    """

    as_of: date
    start: date
    end: date
    lead_days: int
    horizon_days: int
    event_types: tuple[str, ...]

    @classmethod
    def from_origin(cls, as_of: date, lead_days: int, horizon_days: int,
                    event_types: tuple[str, ...] | list[str] = ("Riots",)) -> ForecastWindow:
        """The window ``[as_of + lead, as_of + lead + horizon)``; ``end`` is its last day."""
        if horizon_days < 1 or lead_days < 0:
            raise InputError(f"forecast window: lead {lead_days} d, horizon {horizon_days} d; "
                             "the lead must be >= 0 and the horizon >= 1 day (check the bundle's bundle.json)")
        start = as_of + timedelta(days=int(lead_days))
        return cls(as_of, start, start + timedelta(days=int(horizon_days) - 1), int(lead_days), int(horizon_days),
                   tuple(event_types))

    @property
    def label(self) -> str:
        """``P(≥ 1 riot), 2022-06-15 → 2024-06-14``."""
        return f"P(≥ 1 {self.noun}), {self.start.isoformat()} → {self.end.isoformat()}"

    @property
    def short(self) -> str:
        """The window in months: ``Jun 2022–Jun 2024``."""
        return f"{self.start:%b %Y}–{self.end:%b %Y}"

    @property
    def noun(self) -> str:
        """What is counted: ``riot`` for the ACLED "Riots" type, else the types joined by "or"."""
        types = [t for t in self.event_types if t]
        if not types or types == ["Riots"]:
            return "riot"
        return " or ".join(t.lower().rstrip("s") if t.endswith("s") else t.lower() for t in types)

    @property
    def description(self) -> str:
        """A sentence for band descriptions and tags."""
        return (f"probability of at least one event of type {', '.join(self.event_types) or 'Riots'} from "
                f"{self.start.isoformat()} to {self.end.isoformat()} (as of {self.as_of.isoformat()}, "
                f"lead {self.lead_days} d, horizon {self.horizon_days} d)")

    def tags(self) -> dict[str, str]:
        """GeoTIFF dataset tags: ``window_start``, ``window_end``, ``as_of`` ...."""
        return {"as_of": self.as_of.isoformat(), "window_start": self.start.isoformat(),
                "window_end": self.end.isoformat(), "lead_days": str(self.lead_days),
                "horizon_days": str(self.horizon_days), "event_types": ",".join(self.event_types),
                "window": self.label}

    def to_dict(self) -> dict[str, Any]:
        """The ``run.json`` form (ISO dates, plus ``label``)."""
        return {"as_of": self.as_of.isoformat(), "start": self.start.isoformat(), "end": self.end.isoformat(),
                "lead_days": self.lead_days, "horizon_days": self.horizon_days,
                "event_types": list(self.event_types), "label": self.label}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastWindow:
        """Read :meth:`to_dict`'s form (``label`` is ignored: it is derived)."""
        try:
            return cls(date.fromisoformat(str(d["as_of"])), date.fromisoformat(str(d["start"])),
                       date.fromisoformat(str(d["end"])), int(d["lead_days"]), int(d["horizon_days"]),
                       tuple(d.get("event_types") or ("Riots",)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"run.json: the 'window' entry is incomplete or malformed ({exc}); "
                             "rerun riotvit predict to rewrite it") from None


def forecast_window(bundle_meta: Any, as_of: date) -> ForecastWindow:
    """The window of a prediction at ``as_of`` with a bundle (a ``BundleMeta`` or parsed ``bundle.json``).

    A rolling-origin bundle's ``forecast`` lead and horizon win over its ``targets``' (they agree
    in bundles riotvit writes).
    """
    d = bundle_meta if isinstance(bundle_meta, dict) else bundle_meta.to_dict()
    targets = d.get("targets") or {}
    fc = d.get("forecast") or {}
    lead = fc.get("lead_days", targets.get("lead_days"))
    horizon = fc.get("horizon_days", targets.get("horizon_days"))
    if lead is None or horizon is None:
        raise InputError("bundle.json: no lead_days/horizon_days under 'targets'; the bundle predates forecast "
                         "windows, retrain it with riotvit train")
    return ForecastWindow.from_origin(as_of, int(lead), int(horizon), tuple(targets.get("riot_event_types") or ("Riots",)))


def run_window(run: dict[str, Any], bundle: dict[str, Any] | None) -> ForecastWindow | None:
    """The window of a prediction from its ``run.json`` (key ``window``), else derived from
    ``run.json["date"]`` and its bundle's ``bundle.json``; None when neither says.

    ``riotvit score``, the STAC item and the map's texts all read a prediction folder's window here.
    """
    w = run.get("window")
    if isinstance(w, dict) and w.get("start") and w.get("end"):
        return ForecastWindow.from_dict(w)
    if not run.get("date") or not bundle:
        return None
    try:
        return forecast_window(bundle, date.fromisoformat(str(run["date"])[:10]))
    except InputError:
        return None
