"""The crop grid: one grid for every raster and every run (pure; no I/O).

Crops are squares of ``crop_m`` metres on the ground, laid out every ``stride_m`` metres in a
metric CRS and anchored at multiples of the stride: the crop at ``(col, row)`` covers
``[col*stride, col*stride + crop) x [row*stride, row*stride + crop)``. Because the anchor is the
CRS origin and not the raster, the same place gets the same crop id from any raster, on any run,
at train and predict time. Rows grow northwards (``row = floor(y / stride)``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from affine import Affine

from riotvit.errors import GridError

_ID_RE = re.compile(r"^e(?P<epsg>\d+)_s(?P<stride>[0-9.]+)_c(?P<col>-?\d+)_r(?P<row>-?\d+)$")
_EPS = 1e-6


@dataclass(frozen=True)
class CropGrid:
    """A ground-anchored crop grid.

    Attributes:
        epsg: EPSG code of the metric CRS the grid lives in.
        crop_m: crop side on the ground, metres.
        stride_m: distance between crop origins, metres (``crop_m`` means no overlap).
        crop_px: crop side in pixels; the GSD is ``crop_m / crop_px``.
    """

    epsg: int
    crop_m: float = 672.0
    stride_m: float = 672.0
    crop_px: int = 224

    def __post_init__(self) -> None:
        if self.crop_m <= 0 or self.stride_m <= 0 or self.crop_px <= 0:
            raise GridError(
                f"crop_m={self.crop_m}, stride_m={self.stride_m}, crop_px={self.crop_px}: "
                "all must be positive"
            )
        sp = self.stride_m / self.gsd
        if abs(sp - round(sp)) > 1e-6:
            good = self.crop_m * round(sp) / self.crop_px
            raise GridError(
                f"stride {self.stride_m:g} m is not a whole number of {self.gsd:g} m pixels "
                f"({sp:.3f} px); use a stride such as {good:g} m (or an overlap that gives one)"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        epsg: int,
        crop_m: float = 672.0,
        crop_px: int = 224,
        stride_m: float | None = None,
        overlap: float | None = None,
    ) -> CropGrid:
        """Build a grid from a stride or an overlap (``overlap = 1 - stride/crop``).

        The stride is snapped to whole pixels so that every crop starts on the pixel lattice.
        """
        if stride_m is not None and overlap is not None:
            raise GridError("give either --stride-m or --overlap, not both")
        if overlap is not None:
            if not 0.0 <= overlap < 1.0:
                raise GridError(f"overlap {overlap} must be in [0, 1); 0.5 means half-overlapping crops")
            gsd = crop_m / crop_px
            stride_px = max(1, round(crop_px * (1.0 - overlap)))
            stride_m = stride_px * gsd
        return cls(int(epsg), float(crop_m), float(stride_m if stride_m is not None else crop_m), int(crop_px))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CropGrid:
        return cls(int(d["epsg"]), float(d["crop_m"]), float(d["stride_m"]), int(d["crop_px"]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(gsd_m=self.gsd, stride_px=self.stride_px, overlap=self.overlap)
        return d

    # -- derived sizes --------------------------------------------------------------------------
    @property
    def gsd(self) -> float:
        """Ground sampling distance of the crops, metres per pixel."""
        return self.crop_m / self.crop_px

    @property
    def stride_px(self) -> int:
        return int(round(self.stride_m / self.gsd))

    @property
    def overlap(self) -> float:
        return max(0.0, 1.0 - self.stride_m / self.crop_m)

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    # -- ids ------------------------------------------------------------------------------------
    def crop_id(self, col: int, row: int) -> str:
        """Stable id of the crop at ``(col, row)``; encodes EPSG, stride, col and row."""
        return f"e{self.epsg}_s{self.stride_m:g}_c{int(col)}_r{int(row)}"

    def crop_ids(self, cols: np.ndarray, rows: np.ndarray) -> list[str]:
        prefix = f"e{self.epsg}_s{self.stride_m:g}_c"
        return [f"{prefix}{c}_r{r}" for c, r in zip(np.asarray(cols).tolist(), np.asarray(rows).tolist())]

    @staticmethod
    def parse_crop_id(crop_id: str) -> tuple[int, float, int, int]:
        """Return ``(epsg, stride_m, col, row)`` of a crop id."""
        m = _ID_RE.match(crop_id)
        if not m:
            raise GridError(f"'{crop_id}' is not a riotvit crop id (expected e<EPSG>_s<stride>_c<col>_r<row>)")
        return int(m["epsg"]), float(m["stride"]), int(m["col"]), int(m["row"])

    # -- geometry -------------------------------------------------------------------------------
    def footprint(self, col: int, row: int) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of a crop in the grid CRS."""
        x0, y0 = col * self.stride_m, row * self.stride_m
        return (x0, y0, x0 + self.crop_m, y0 + self.crop_m)

    def footprints(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """An (N, 4) array of footprints."""
        x0 = np.asarray(cols, dtype=np.float64) * self.stride_m
        y0 = np.asarray(rows, dtype=np.float64) * self.stride_m
        return np.stack([x0, y0, x0 + self.crop_m, y0 + self.crop_m], axis=1)

    def crop_transform(self, col: int, row: int) -> Affine:
        """Affine transform of the crop's ``crop_px`` x ``crop_px`` pixel grid (north up)."""
        x0, _, _, y1 = self.footprint(col, row)
        return Affine(self.gsd, 0.0, x0, 0.0, -self.gsd, y1)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stride cell ``(col, row)`` that contains each point."""
        return (
            np.floor(np.asarray(x, dtype=np.float64) / self.stride_m).astype(np.int64),
            np.floor(np.asarray(y, dtype=np.float64) / self.stride_m).astype(np.int64),
        )

    def index_range(self, lo: float, hi: float) -> tuple[int, int]:
        """Inclusive index range of crops whose extent along one axis overlaps ``(lo, hi)``.

        A crop ``i`` spans ``[i*s, i*s + crop)``; it overlaps when ``i*s < hi`` and
        ``i*s + crop > lo``.
        """
        s = self.stride_m
        first = math.floor((lo - self.crop_m) / s + _EPS) + 1
        last = math.ceil(hi / s - _EPS) - 1
        return first, last

    def cells_in_bounds(self, bounds: tuple[float, float, float, float]) -> tuple[range, range]:
        """Column and row ranges of every crop that overlaps ``bounds`` (grid CRS)."""
        xmin, ymin, xmax, ymax = bounds
        c0, c1 = self.index_range(xmin, xmax)
        r0, r1 = self.index_range(ymin, ymax)
        return range(c0, c1 + 1), range(r0, r1 + 1)

    def count_in_bounds(self, bounds: tuple[float, float, float, float]) -> int:
        cols, rows = self.cells_in_bounds(bounds)
        return max(0, len(cols)) * max(0, len(rows))

    def is_aligned(self, transform: Affine, tol: float = 1e-6) -> bool:
        """True when a raster's pixel lattice coincides with this grid's (no resampling needed)."""
        if abs(transform.b) > tol or abs(transform.d) > tol:
            return False
        if abs(transform.a - self.gsd) > tol * self.gsd or abs(-transform.e - self.gsd) > tol * self.gsd:
            return False
        fx = transform.c / self.gsd
        fy = transform.f / self.gsd
        return abs(fx - round(fx)) < 1e-4 and abs(fy - round(fy)) < 1e-4


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone that contains ``(lon, lat)``."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GridError(f"({lon}, {lat}) is not a longitude/latitude; cannot pick a UTM zone")
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def blocks(cols: range, rows: range, block_cols: int) -> list[tuple[range, range]]:
    """Split a crop rectangle into column chunks (each a full-height strip of crops).

    Each chunk's work depends on nothing else, so chunks can be processed independently (and
    later by separate workers).
    """
    out = []
    for c in range(cols.start, cols.stop, block_cols):
        out.append((range(c, min(c + block_cols, cols.stop)), rows))
    return out
