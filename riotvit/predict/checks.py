"""Imagery checked against what the model was trained on: its data type and its value range.

A model trained on uint16 reflectance × 10000 and given float reflectance in 0..1 (or bands in
another order, or another sensor) still produces a map, and the map is meaningless. These checks
turn that into a warning the user sees next to the map: the data type against the training tile
set's, and the per-band mean of the first crops' valid pixels against the training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Z_WARN = 4.0
"""A band whose mean lies this many training standard deviations away is flagged."""
SCALE_WARN = 5.0
"""A band whose mean is this many times larger or smaller than in training is flagged (a scale error such
as reflectance 0..1 against reflectance x 10000, which a z-score misses when the training spread is wide)."""
VALUE_CHECK_CROPS = 16
"""The check looks at the run's first crops, at least this many (whole batches, in the order they were predicted)."""


def dtype_warnings(source_dtypes: Sequence[str], trained_dtype: str) -> list[str]:
    """A warning for imagery of another pixel type than the training tile set's."""
    other = sorted({str(d) for d in source_dtypes} - {str(trained_dtype)})
    if not other:
        return []
    return [f"imagery pixel type {', '.join(other)} differs from the training imagery's {trained_dtype}: check that "
            "the values use the same scale (e.g. reflectance x 10000) and bands"]


def value_sums(chips: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, float, int]:
    """A batch's share of the check: per-band sums of valid pixels, their number, the crops.

    Args:
        chips: (N, C, H, W).
        masks: (N, H, W) valid masks.
    """
    valid = masks.astype(bool)[:, None]
    return (np.where(valid, chips, 0).sum(axis=(0, 2, 3), dtype=np.float64), float(valid.sum()), int(chips.shape[0]))


class ValueRangeCheck:
    """Per-band means of the first crops' valid pixels, compared with the training statistics.

    Batches are added in the order they were predicted, whole, until ``min_crops`` crops were seen:
    as arrays (:meth:`add`) or, from a worker that summed them, as :func:`value_sums` (:meth:`add_partial`).
    """

    def __init__(self, bands: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 min_crops: int = VALUE_CHECK_CROPS):
        self.bands = list(bands)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.maximum(np.asarray(std, dtype=np.float64), 1e-12)
        self.min_crops = min_crops
        self._sum = np.zeros(len(self.bands))
        self._n = 0.0
        self._crops = 0

    @property
    def done(self) -> bool:
        return self._crops >= self.min_crops

    def add(self, chips: np.ndarray, masks: np.ndarray) -> None:
        """Accumulate (N, C, H, W) chips with (N, H, W) valid masks, until enough crops were seen."""
        if self.done or chips.size == 0:
            return
        self.add_partial(*value_sums(chips, masks))

    def add_partial(self, sums: np.ndarray, n_valid: float, n_crops: int) -> None:
        """Accumulate a batch summed elsewhere (:func:`value_sums`), until enough crops were seen."""
        if self.done or n_crops == 0:
            return
        self._sum += sums
        self._n += n_valid
        self._crops += n_crops

    def warnings(self) -> list[str]:
        """One warning per band whose mean is far from training: by ``Z_WARN`` standard deviations, or by a
        factor of ``SCALE_WARN`` when both means are positive."""
        if self._n == 0:
            return []
        got = self._sum / self._n
        z = np.abs(got - self.mean) / self.std
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((got > 0) & (self.mean > 0), np.maximum(got / self.mean, self.mean / got), 1.0)
        return [f"imagery band {b}: mean {g:.4g} over the first {self._crops} crops is {zz:.0f} standard deviations "
                f"(x{r:.3g}) from the training imagery's {m:.4g} ± {s:.4g}; check the band order, the reflectance "
                "scale and the sensor, or the map is not meaningful"
                for b, g, m, s, zz, r in zip(self.bands, got, self.mean, self.std, z, ratio)
                if zz > Z_WARN or r > SCALE_WARN or (g <= 0 < m and zz > 1)]
