"""Per-band statistics over valid pixels: mean, std, min, max, p2, p98.

Integer bands up to 16 bits are counted in exact histograms, so every statistic equals what
NumPy computes over the same pixels (percentiles with NumPy's default linear interpolation).
Float bands keep exact sums for mean and std and a deterministic strided subsample (at most
``max_samples`` values per band) for the percentiles.
"""

from __future__ import annotations

import numpy as np


class BandStats:
    """Streaming accumulator for C bands."""

    def __init__(self, band_names: list[str], dtype: np.dtype, max_samples: int = 2_000_000):
        self.names = list(band_names)
        self.dtype = np.dtype(dtype)
        c = len(self.names)
        self.exact = self.dtype.kind in "iu" and self.dtype.itemsize <= 2
        if self.exact:
            self.offset = -int(np.iinfo(self.dtype).min)
            self.hist = np.zeros((c, 1 << (8 * self.dtype.itemsize)), dtype=np.int64)
        else:
            self.sum = np.zeros(c, dtype=np.float64)
            self.sumsq = np.zeros(c, dtype=np.float64)
            self.count = np.zeros(c, dtype=np.int64)
            self.min = np.full(c, np.inf)
            self.max = np.full(c, -np.inf)
            self.samples: list[list[np.ndarray]] = [[] for _ in range(c)]
            self.max_samples = max_samples
            self.step = 1
            self._seen = 0

    def update(self, chips: np.ndarray, masks: np.ndarray | None) -> None:
        """Add (n, C, H, W) chips; ``masks`` (n, H, W) bool or None when all pixels are valid."""
        for b in range(len(self.names)):
            band = chips[:, b]
            vals = band.ravel() if masks is None else band[masks]
            if vals.size == 0:
                continue
            if self.exact:
                v = vals.astype(np.int64) + self.offset if self.offset else vals
                self.hist[b] += np.bincount(v, minlength=self.hist.shape[1])
            else:
                v = vals.astype(np.float64)
                self.sum[b] += v.sum()
                self.sumsq[b] += np.square(v).sum()
                self.count[b] += v.size
                self.min[b] = min(self.min[b], v.min())
                self.max[b] = max(self.max[b], v.max())
                self.samples[b].append(vals[:: self.step].astype(np.float32))
        if not self.exact:
            self._seen += chips.shape[0]
            total = sum(s.size for s in self.samples[0])
            if total > self.max_samples:  # thin the reservoir deterministically
                self.step *= 2
                self.samples = [[np.concatenate(s)[::2]] for s in self.samples]

    def result(self) -> dict[str, dict[str, float]]:
        """Statistics per band name."""
        out = {}
        for b, name in enumerate(self.names):
            if self.exact:
                out[name] = _hist_stats(self.hist[b], self.offset)
            else:
                n = int(self.count[b])
                if n == 0:
                    out[name] = _empty()
                    continue
                mean = self.sum[b] / n
                var = max(self.sumsq[b] / n - mean * mean, 0.0)
                s = np.concatenate(self.samples[b]) if self.samples[b] else np.zeros(1)
                p2, p98 = np.percentile(s, [2, 98])
                out[name] = dict(
                    mean=float(mean), std=float(np.sqrt(var)), min=float(self.min[b]),
                    max=float(self.max[b]), p2=float(p2), p98=float(p98), count=n,
                )
        return out


def _empty() -> dict[str, float]:
    return dict(mean=float("nan"), std=float("nan"), min=float("nan"), max=float("nan"),
                p2=float("nan"), p98=float("nan"), count=0)


def _hist_stats(h: np.ndarray, offset: int) -> dict[str, float]:
    n = int(h.sum())
    if n == 0:
        return _empty()
    values = np.arange(h.size, dtype=np.float64) - offset
    mean = float((h * values).sum() / n)
    var = float((h * (values - mean) ** 2).sum() / n)
    nz = np.flatnonzero(h)
    cdf = np.cumsum(h)

    def kth(k: int) -> float:  # the k-th smallest value (0-based)
        return float(values[np.searchsorted(cdf, k + 1)])

    def pct(q: float) -> float:  # numpy's default 'linear' method
        pos = (n - 1) * q / 100.0
        lo = int(np.floor(pos))
        frac = pos - lo
        a = kth(lo)
        return a if frac == 0 else a + frac * (kth(min(lo + 1, n - 1)) - a)

    return dict(
        mean=mean, std=float(np.sqrt(var)), min=float(values[nz[0]]), max=float(values[nz[-1]]),
        p2=pct(2), p98=pct(98), count=n,
    )
