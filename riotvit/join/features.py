"""Metadata features and targets as arrays: scaling fitted on training rows, stored as JSON.

Counts are heavy-tailed, so non-negative features with a long tail are ``log1p``-transformed
before standardisation. Missing values stay NaN (the model has learned missing-indicators).
Everything needed to reproduce the transform at predict time is a plain dict in ``bundle.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riotvit.errors import BundleError, SamplesError


@dataclass
class MetaScaler:
    """Per-feature ``log1p`` flag, mean and std, fitted on training rows."""

    names: list[str]
    log1p: list[bool]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, df: pd.DataFrame, names: list[str]) -> MetaScaler:
        logs, means, stds = [], [], []
        for n in names:
            v = df[n].to_numpy(dtype=np.float64)
            f = v[np.isfinite(v)]
            lg = bool(f.size and f.min() >= 0 and (f.max() > 10 or n.startswith(("hist_", "census_"))) and _skewed(f))
            t = np.log1p(f) if lg else f
            m = float(t.mean()) if t.size else 0.0
            s = float(t.std()) if t.size else 1.0
            logs.append(lg)
            means.append(m)
            stds.append(s if s > 1e-12 else 1.0)
        return cls(list(names), logs, means, stds)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """(N, F) float32 with NaN for missing values."""
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise SamplesError(
                f"metadata features {', '.join(missing[:5])} are missing from the table; "
                "rebuild it with the same join options the model was trained with"
            )
        x = df[self.names].to_numpy(dtype=np.float64, copy=True)
        lg = np.array(self.log1p)
        x[:, lg] = np.log1p(np.clip(x[:, lg], 0, None))
        x = (x - np.array(self.mean)) / np.array(self.std)
        return x.astype(np.float32)

    def to_dict(self) -> dict:
        return {"names": self.names, "log1p": self.log1p, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> MetaScaler:
        try:
            return cls(list(d["names"]), [bool(b) for b in d["log1p"]], [float(v) for v in d["mean"]],
                       [float(v) for v in d["std"]])
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"bundle.json: metadata scaler is malformed ({e}); retrain the model") from None


def _skewed(v: np.ndarray) -> bool:
    if v.size < 3:
        return False
    m, s = v.mean(), v.std()
    return bool(s > 0 and ((v - m) ** 3).mean() / s**3 > 1.0)


TARGETS = ("riot", "event_count", "fatalities", "crowd_size")


def target_arrays(df: pd.DataFrame, type_columns: list[str]) -> dict[str, np.ndarray]:
    """Targets as float32 arrays keyed by head name (NaN = unknown, masked in the loss)."""
    out = {k: df[k].to_numpy(dtype=np.float32) for k in TARGETS if k in df.columns}
    if type_columns:
        out["type_counts"] = df[type_columns].to_numpy(dtype=np.float32)
    return out


@dataclass(frozen=True)
class BandNorm:
    """Per-band normalisation ``(x - mean) / std`` from the tile set's valid-pixel statistics."""

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_stats(cls, bands: list[str], stats: dict[str, dict[str, float]]) -> BandNorm:
        return cls(tuple(bands), tuple(float(stats[b]["mean"]) for b in bands),
                   tuple(max(float(stats[b]["std"]), 1e-6) for b in bands))

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> BandNorm:
        return cls(tuple(d["bands"]), tuple(d["mean"]), tuple(d["std"]))
