"""The synthetic city's layout: land cover and the features behind the planted riot relationships.

The layout is built at the image's 3 m resolution from a handful of vectorised fields:
an urban-intensity field around the centre, a river and a lake, arterial roads (radials, a ring
and cross-town lines) whose crossings are the city's major junctions, formal blocks on a
street grid, informal settlements of small metal roofs, market areas of colourful stalls,
industrial sheds and vegetation.

The city changes between its acquisition dates (``riotvit.synth.timeline``): every market and
informal settlement has the date index at which it appears (0: it existed during the whole early
event history) and markets may close; settlements grow; one cross-town road, with its junctions,
is built at a later date. What does not change is drawn once, so it renders identically at every
date (``riotvit.synth.render``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy import ndimage

from riotvit.synth.timeline import (  # the land-cover classes live with the timeline that changes them
    BARE as BARE,
)
from riotvit.synth.timeline import (
    CLASS_NAMES as CLASS_NAMES,
)
from riotvit.synth.timeline import (
    FORMAL as FORMAL,
)
from riotvit.synth.timeline import (
    INDUSTRIAL as INDUSTRIAL,
)
from riotvit.synth.timeline import (
    INFORMAL as INFORMAL,
)
from riotvit.synth.timeline import (
    MARKET as MARKET,
)
from riotvit.synth.timeline import (
    ROAD as ROAD,
)
from riotvit.synth.timeline import (
    VEGETATION as VEGETATION,
)
from riotvit.synth.timeline import (
    WATER as WATER,
)
from riotvit.synth.timeline import (
    market_dates,
    road_date,
    settlement_dates,
)
from riotvit.synth.timeline import (
    window as window,
)


@dataclass
class Patch:
    """A market or informal settlement: centre (m, image frame), radius, and when it is there.

    ``appear`` is the date index from which it is visible (0: it existed before the first date,
    during the early event history); ``close`` the date index from which it is gone (None: never);
    ``growth`` how much its radius grows per date step, as a share of ``r``.
    """

    kind: str
    x: float
    y: float
    r: float
    appear: int = 0
    close: int | None = None
    growth: float = 0.0

    def active(self, k: int) -> bool:
        return self.appear <= k and (self.close is None or k < self.close)

    def radius(self, k: int) -> float:
        return self.r * (1.0 + self.growth * max(k - self.appear, 0))


@dataclass
class CityLayout:
    """Everything that does not change between dates, plus the patches and the road that do."""

    base: np.ndarray                 # (H, W) uint8 classes without settlements, markets, water, roads
    water: np.ndarray                # flat indices of water pixels
    roads: np.ndarray                # flat indices of road pixels (not water) at every date
    new_road: np.ndarray             # flat indices of the road built at ``road_index`` (not water)
    road_index: int | None           # date index the new road opens (None: no new road)
    blob_noise: np.ndarray           # (H, W) float32: the settlements' ragged outlines
    junctions: np.ndarray            # (K, 2) x, y of major road junctions (m, image frame)
    junction_appear: np.ndarray      # (K,) date index each junction exists from
    gsd: float
    n_dates: int
    patches: list[Patch] = field(default_factory=list)
    centre: tuple[float, float] = (0.0, 0.0)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1] at full resolution from a ``cells`` x ``cells`` random lattice."""
    base = rng.uniform(-1, 1, size=(cells + 3, cells + 3)).astype(np.float32)
    # cubic to a quarter of the resolution, then linear to full: smooth and fast
    q = ((shape[0] + 3) // 4, (shape[1] + 3) // 4)
    z = ndimage.zoom(base, (q[0] / (cells + 3) * 1.0001, q[1] / (cells + 3) * 1.0001), order=3)[: q[0], : q[1]]
    z = ndimage.zoom(z, (shape[0] / q[0] * 1.0001, shape[1] / q[1] * 1.0001), order=1)
    return np.clip(z[: shape[0], : shape[1]], -1, 1)


def _lines_mask(lines: list[shapely.LineString], h: int, w: int, gsd: float, width_m: float) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    if not lines:
        return np.zeros((h, w), dtype=bool)
    polys = [ln.buffer(width_m / 2, cap_style="flat") for ln in lines]
    # image frame: x right, y down (metres from the top-left corner)
    t = Affine(gsd, 0, 0, 0, gsd, 0)
    return rasterize([(p, 1) for p in polys], out_shape=(h, w), transform=t, dtype=np.uint8).astype(bool)


def _cross_town(rng: np.random.Generator, cx: float, cy: float, radius: float) -> shapely.LineString:
    th = rng.uniform(0, np.pi)
    off = rng.uniform(-0.3, 0.3) * radius
    nx, ny = -np.sin(th), np.cos(th)
    p0 = (cx + off * nx - 2 * radius * np.cos(th), cy + off * ny - 2 * radius * np.sin(th))
    p1 = (cx + off * nx + 2 * radius * np.cos(th), cy + off * ny + 2 * radius * np.sin(th))
    return shapely.LineString([p0, p1])


def build_layout(rng: np.random.Generator, n_px: int, gsd: float, n_dates: int = 1) -> CityLayout:
    """Lay out the city on an ``n_px`` x ``n_px`` grid of ``gsd`` metre pixels, over ``n_dates`` dates."""
    h = w = n_px
    size = n_px * gsd
    cx, cy = size * rng.uniform(0.45, 0.55), size * rng.uniform(0.45, 0.55)
    yy, xx = np.ogrid[0:h, 0:w]
    xm = (xx.astype(np.float32) + 0.5) * gsd
    ym = (yy.astype(np.float32) + 0.5) * gsd
    r = np.sqrt((xm - cx) ** 2 + (ym - cy) ** 2)
    radius = 0.42 * size
    urban = np.exp(-((r / radius) ** 2)) + 0.22 * smooth_noise(rng, (h, w), 6)
    veg_noise = smooth_noise(rng, (h, w), 10)
    lc = np.where(veg_noise > -0.1, VEGETATION, BARE).astype(np.uint8)
    lc[urban > 0.33] = FORMAL

    # industrial sector at mid radius
    ang = np.arctan2(ym - cy, xm - cx)
    a0 = rng.uniform(-np.pi, np.pi)
    dang = np.angle(np.exp(1j * (ang - a0)))
    lc[(np.abs(dang) < 0.35) & (r > 0.35 * radius) & (r < 0.8 * radius) & (urban > 0.3)] = INDUSTRIAL

    # informal settlements: irregular blobs at the urban fringe, appearing and growing over the dates
    patches: list[Patch] = []
    n_inf = max(4, int(round(14 * (size / 12096) ** 2)))
    appear, growth = settlement_dates(rng, n_inf, n_dates)
    for i in range(n_inf):
        rr = radius * rng.uniform(0.3, 1.0)
        th = rng.uniform(-np.pi, np.pi)
        pr = rng.uniform(280, 650) * (0.75 if appear[i] else 1.0)
        patches.append(Patch("informal", cx + rr * np.cos(th), cy + rr * np.sin(th), pr, int(appear[i]),
                             growth=float(growth[i])))
    blob_noise = smooth_noise(rng, (h, w), 40)

    # river and lake
    t = np.linspace(-0.1, 1.1, 400)
    ry = size * (0.2 + 0.12 * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * (t * rng.uniform(0.8, 1.4) + rng.uniform(0, 1))))
    river = shapely.LineString(np.column_stack([t * size, ry + 0.55 * size * rng.uniform(0.0, 1.0)]))
    water = _lines_mask([river], h, w, gsd, rng.uniform(45, 75))
    lx, ly = size * rng.uniform(0.1, 0.3), size * rng.uniform(0.7, 0.9)
    water |= ((xm - lx) / 420) ** 2 + ((ym - ly) / 260) ** 2 < 1

    # arterial roads: radials, a ring and two cross-town lines; a third cross-town road is built later
    lines = []
    for th in rng.uniform(0, 2 * np.pi, 6):
        lines.append(shapely.LineString([(cx, cy), (cx + 1.6 * radius * np.cos(th), cy + 1.6 * radius * np.sin(th))]))
    lines.append(shapely.Point(cx, cy).buffer(0.55 * radius, quad_segs=32).exterior)
    lines += [_cross_town(rng, cx, cy, radius) for _ in range(2)]
    new_line = _cross_town(rng, cx, cy, radius)
    road_index = road_date(rng, n_dates)
    junctions = _junctions(lines, size)
    new_junctions = np.zeros((0, 2))
    if road_index is not None:
        new_junctions = _junctions(lines + [new_line], size, keep=list(junctions))[len(junctions):]

    # markets, sized 90-200 m: at most junctions, and along the arterials (the new road's from its date)
    order = rng.permutation(len(junctions))
    sites = [(junctions[j] + rng.uniform(-60, 60, 2), 0) for j in order[: int(0.7 * len(junctions))]]
    sites += [(p + rng.uniform(-60, 60, 2), road_index) for p in new_junctions if rng.random() < 0.8]
    n_road = max(3, int(round(24 * (size / 12096) ** 2)))
    roads_now = lines + ([new_line] if road_index is not None else [])
    for _ in range(n_road + 3):
        i = int(rng.integers(0, len(roads_now)))
        p = roads_now[i].interpolate(rng.uniform(0.1, 0.9), normalized=True)
        sites.append((np.array([p.x, p.y]) + rng.uniform(-40, 40, 2), road_index if i == len(lines) else 0))
    kept = [(s, k0) for s, k0 in sites if 0 < s[0] < size and 0 < s[1] < size and urban[int(s[1] / gsd), int(s[0] / gsd)] >= 0.3]
    m_appear, m_close = market_dates(rng, [k0 for _, k0 in kept], n_dates)
    for (s, _), a, c in zip(kept, m_appear, m_close):
        patches.append(Patch("market", float(s[0]), float(s[1]), rng.uniform(90, 200), int(a), None if c < 0 else int(c)))

    roads = _lines_mask(lines, h, w, gsd, 15.0) & ~water
    new_road = _lines_mask([new_line] if road_index is not None else [], h, w, gsd, 15.0) & ~water & ~roads
    lc[water] = WATER  # informative only: the land cover of every date repaints water over settlements
    return CityLayout(
        base=lc, water=np.flatnonzero(water), roads=np.flatnonzero(roads), new_road=np.flatnonzero(new_road),
        road_index=road_index, blob_noise=blob_noise, junctions=np.vstack([junctions, new_junctions]),
        junction_appear=np.r_[np.zeros(len(junctions), int), np.full(len(new_junctions), road_index or 0, int)],
        gsd=gsd, n_dates=n_dates, patches=patches, centre=(cx, cy))


def _junctions(lines: list[shapely.LineString], size: float, keep: list | None = None) -> np.ndarray:
    """Crossings of ``lines`` inside the image, merged when closer than 60 m (after those in ``keep``)."""
    pts = []
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            x = lines[i].intersection(lines[j])
            for g in getattr(x, "geoms", [x]):
                if isinstance(g, shapely.Point) and not g.is_empty:
                    pts.append((g.x, g.y))
    a = np.array(pts, dtype=np.float64).reshape(-1, 2)
    inside = (a[:, 0] > 0) & (a[:, 0] < size) & (a[:, 1] > 0) & (a[:, 1] < size)
    # merge junctions closer than 60 m (the radials all meet at the centre)
    keep = list(keep or [])
    for p in a[inside]:
        if all(np.hypot(*(p - q)) > 60 for q in keep):
            keep.append(p)
    return np.array(keep).reshape(-1, 2)
