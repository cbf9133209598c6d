"""When are labels too thin for a meaningful AUPR? One rule and one plain sentence for every report.

A ranking metric needs enough independent positives. Two things limit them:

- **Positive crops.** Average precision over ``k`` positives moves in steps of about ``1/k``, and
  its sampling spread is roughly ``sqrt(AP (1 - AP) / k)``: with ``k = 20`` and an AP near 0.5
  that is ±0.11 (one standard error), so two models would have to differ by more than 0.2 to be
  told apart. Below 20 positives the figure is mostly noise.
- **Distinct event locations.** ACLED geocodes most urban events to a handful of neighbourhood
  points, and every event at one point marks the same crops. The positives are then not
  independent: their effective number is closer to the number of distinct points than to the
  number of crops. Below 10 points a model can score a high AUPR by learning where those few
  points are.
- **Negatives.** AUROC and the AUPR baseline also need enough negatives (the same 20).

:func:`assess_thin_data` applies these thresholds and returns the sentence reports print instead of
(or next to) the figure. The training report and the model card use it the same way as
``riotvit score``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_POSITIVES = 20
"""Fewest positive crops for a meaningful AUPR (standard error about ±0.11 at 20)."""
MIN_LOCATIONS = 10
"""Fewest distinct event locations (geocoded points) behind the positives."""
MIN_NEGATIVES = 20
"""Fewest negative crops (AUROC and the AUPR's baseline need them too)."""


@dataclass(frozen=True)
class ThinData:
    """Whether labels suffice for a meaningful AUPR, and why not."""

    thin: bool
    positives: int
    locations: int | None
    crops: int
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sentence(self) -> str:
        """One plain sentence for a report: what was found and what it means."""
        loc = "" if self.locations is None else f" at {self.locations} distinct event location{'s' * (self.locations != 1)}"
        found = f"{self.positives} positive crop{'s' * (self.positives != 1)} of {self.crops}{loc}"
        if not self.thin:
            return f"Enough data for AUPR: {found}."
        return (f"Data too thin for a meaningful AUPR: {found} ({'; '.join(self.reasons)}); "
                "read its metrics as a record, not as evidence that the model works or fails.")

    def to_dict(self) -> dict:
        return {"thin": self.thin, "positives": self.positives, "locations": self.locations, "crops": self.crops,
                "reasons": list(self.reasons), "sentence": self.sentence,
                "thresholds": {"positives": MIN_POSITIVES, "locations": MIN_LOCATIONS, "negatives": MIN_NEGATIVES}}


def assess_thin_data(positives: int, crops: int, locations: int | None = None) -> ThinData:
    """Say whether ``positives`` of ``crops`` (from ``locations`` distinct event points) are too few.

    Args:
        positives: crops with a positive label.
        crops: all labelled crops scored.
        locations: distinct event locations (rounded coordinates) behind the positives; None when
            unknown (then only the crop counts are checked).

    Returns:
        A :class:`ThinData`; its ``sentence`` goes into reports and model cards.
    """
    positives, crops = int(positives), int(crops)
    negatives = crops - positives
    reasons = []
    if positives < MIN_POSITIVES:
        reasons.append(f"fewer than {MIN_POSITIVES} positive crops")
    if locations is not None and locations < MIN_LOCATIONS:
        reasons.append(f"fewer than {MIN_LOCATIONS} distinct event locations, so the positives are not independent")
    if negatives < MIN_NEGATIVES:
        reasons.append(f"only {negatives} negative crop{'s' * (negatives != 1)} (need {MIN_NEGATIVES})")
    return ThinData(bool(reasons), positives, None if locations is None else int(locations), crops, tuple(reasons))
