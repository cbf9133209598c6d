"""Human labels, units and value formats of riotvit's feature and output names: the one place.

``hist_riots_365d_2km`` reads "riots within 2 km in the year before", ``census_population``
reads "population" in "people". The plots (training history, SHAP), the cells layer's aliases
and identify sentence, and the model card all take their wording from here.

>>> feature_label("hist_riots_365d_2km").describe(4)
'4 riots within 2 km in the year before'
>>> feature_label("census_youth_share").format(0.38)
'38%'
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

#: ACLED event-type slugs (riotvit.join.events.labels.TYPE_SLUGS values) -> plural nouns.
EVENT_NOUNS: dict[str, str] = {
    "battles": "battles", "protests": "protests", "riots": "riots", "explosions": "explosions",
    "vac": "attacks on civilians", "strategic": "strategic developments", "other": "other events",
}
#: The nouns in the singular ("1 riot").
SINGULAR: dict[str, str] = {"battles": "battle", "protests": "protest", "riots": "riot", "explosions": "explosion",
                            "attacks on civilians": "attack on civilians",
                            "strategic developments": "strategic development", "other events": "other event"}
_PERIODS = {30: "in the month before", 90: "in the 3 months before", 180: "in the 6 months before",
            365: "in the year before", 730: "in the 2 years before", 1825: "in the 5 years before"}
#: Output columns of a prediction (cells layer) -> (label, unit).
OUTPUTS: dict[str, tuple[str, str]] = {
    "crop_id": ("crop id", ""), "cell_id": ("cell id", ""), "col": ("grid column", ""), "row": ("grid row", ""),
    "riot_probability": ("riot probability", "probability"), "risk_class": ("risk class", ""),
    "risk_rank": ("risk percentile in this map", "%"),
    "expected_events": ("expected riots", "events"), "events_p10": ("expected riots, 10th percentile", "events"),
    "events_p90": ("expected riots, 90th percentile", "events"),
    "uncertainty": ("uncertainty: spread of the probability", "probability"),
    "view_spread": ("spread over image views", "probability"), "acquisition_date": ("imagery date", ""),
    "valid_fraction": ("share of the cell with imagery", "share"), "crops": ("crops averaged", ""),
    "edge": ("partial cell at the imagery edge", ""), "window_start": ("forecast window start", ""),
    "window_end": ("forecast window end", ""), "summary": ("summary", ""),
    "drivers_reliable": ("drivers reliable", ""), "image": ("imagery", ""),
}


@dataclass(frozen=True)
class FeatureLabel:
    """How to name and print one feature.

    Attributes:
        name: the column name (``hist_riots_365d_2km``).
        label: the human label (``riots within 2 km in the year before``).
        unit: the unit (``events``, ``people``, ``share``, ``days``; ``""`` when none).
        count_noun: for counts, the noun printed after the number (``riots``).
    """

    name: str
    label: str
    unit: str = ""
    count_noun: str = ""

    @property
    def axis(self) -> str:
        """A plot axis / legend label: the label with its unit in brackets."""
        return f"{self.label} ({self.unit})" if self.unit and self.unit not in ("share", "events") else self.label

    def format(self, value: float | None) -> str:
        """The value with its unit: ``38%``, ``51,068 people``, ``4``, ``n/a`` when missing."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        v = float(value)
        if self.unit == "share":
            return f"{100 * v:.0f}%" if abs(v) <= 1.5 else f"{v:.0f}%"  # a share, or already in percent
        if self.unit in ("events", "days"):
            return f"{v:,.0f}" if abs(v - round(v)) < 1e-6 else f"{v:,.1f}"
        if self.unit == "probability":
            return f"{v:.2f}"
        text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"
        return f"{text} {self.unit}".strip()

    def describe(self, value: float | None) -> str:
        """The feature and its value as a phrase: ``4 riots within 2 km in the year before``."""
        if self.name == "image":
            return "imagery"
        if value is None or not math.isfinite(float(value)):
            return f"{self.count_noun} {self.label}".strip()
        if self.count_noun:
            noun = SINGULAR.get(self.count_noun, self.count_noun) if float(value) == 1 else self.count_noun
            return f"{self.format(value)} {noun} {self.label}"
        return f"{self.label} {self.format(value)}"


def _km(text: str) -> str:
    return text.removesuffix("km") + " km"


@functools.lru_cache(maxsize=4096)
def feature_label(name: str) -> FeatureLabel:
    """The label of a metadata feature, an output column or ``image`` (unknown names read as themselves)."""
    if name == "image":
        return FeatureLabel(name, "imagery")
    if name.startswith("shap_"):
        return FeatureLabel(name, f"effect of {label(name.removeprefix('shap_'))} (SHAP, log-odds)")
    if name in OUTPUTS:
        text, unit = OUTPUTS[name]
        return FeatureLabel(name, text, unit)
    m = re.fullmatch(r"hist_days_since_riot_(.+km)", name)
    if m:
        return FeatureLabel(name, f"days since the last riot within {_km(m.group(1))}", "days")
    m = re.fullmatch(r"hist_([a-z]+)_(\d+)d_(crop|.+km)", name)
    if m:
        slug, days, where = m.group(1), int(m.group(2)), m.group(3)
        noun = EVENT_NOUNS.get(slug, slug)
        place = "in the cell" if where == "crop" else f"within {_km(where)}"
        return FeatureLabel(name, f"{place} {_PERIODS.get(days, f'in the {days} days before')}", "events", noun)
    if name.startswith("census_"):
        var = name.removeprefix("census_")
        if var == "pop_density_km2":
            return FeatureLabel(name, "population density", "people/km²")
        if var == "coverage":
            return FeatureLabel(name, "census coverage", "share")
        words = var.replace("_", " ")
        if re.search(r"(share|pct|percent|rate|frac|ratio|prop)", var):
            return FeatureLabel(name, re.sub(r"\s*(pct|percent|frac)$", " share", words), "share")
        if var in ("population", "pop", "total_population"):
            return FeatureLabel(name, "population", "people")
        return FeatureLabel(name, words)
    return FeatureLabel(name, name.replace("_", " "))


def label(name: str) -> str:
    """Shorthand for ``feature_label(name).label``; a count's label includes its noun."""
    f = feature_label(name)
    return f"{f.count_noun} {f.label}".strip()


def axis_label(name: str) -> str:
    """A plot label: the feature's label with its unit."""
    f = feature_label(name)
    return f"{f.count_noun} {f.axis}".strip()


def driver_phrase(name: str, value: float | None, shap: float | None) -> str:
    """One driver in a sentence: ``4 riots within 2 km in the year before (+0.27)``."""
    text = feature_label(name).describe(value)
    if shap is None or not math.isfinite(float(shap)):
        return text
    return f"{text} ({float(shap):+.2f})"
