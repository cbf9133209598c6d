"""The synthetic city's land cover and its 4-band image (blue, green, red, NIR).

The layout is built at the image's 3 m resolution from a handful of vectorised fields:
an urban-intensity field around the centre, a river and a lake, arterial roads (radials, a ring
and cross-town lines) whose crossings are the city's major junctions, formal blocks on a
street grid, informal settlements of small metal roofs, market areas of colourful stalls,
industrial sheds and vegetation. Each market and informal settlement is either *old* (it
existed during the whole event history) or *new* (it appeared shortly before the image date),
which is what lets imagery add information beyond event history (see ``riotvit.synth``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy import ndimage

# land-cover classes
WATER, VEGETATION, BARE, FORMAL, INFORMAL, MARKET, INDUSTRIAL, ROAD = range(8)
CLASS_NAMES = ["water", "vegetation", "bare", "formal", "informal", "market", "industrial", "road"]

# materials: surface reflectance x 10000 in (blue, green, red, nir)
MATERIALS = np.array(
    [
        [620, 540, 330, 160],      # 0 water
        [330, 640, 380, 3400],     # 1 grass / trees
        [880, 1150, 1550, 2150],   # 2 bare soil
        [720, 760, 800, 900],      # 3 asphalt
        [1750, 1850, 1950, 2150],  # 4 concrete
        [820, 930, 1750, 2000],    # 5 tile roof
        [2150, 2250, 2280, 2450],  # 6 new metal roof
        [900, 1000, 1450, 1800],   # 7 rusty metal roof
        [2700, 1750, 900, 1450],   # 8 blue tarp
        [700, 720, 2500, 1900],    # 9 red tarp
        [900, 1900, 2300, 2100],   # 10 yellow/orange tarp
        [1050, 1200, 1400, 1700],  # 11 dirt lane
        [2450, 2550, 2600, 2700],  # 12 industrial roof
        [450, 760, 520, 2600],     # 13 dense trees
    ],
    dtype=np.float32,
)


@dataclass
class Patch:
    """A market or informal settlement: centre (m, image frame), radius, old or new."""

    kind: str
    x: float
    y: float
    r: float
    new: bool


@dataclass
class CityLayout:
    """Land cover and the features behind the planted riot relationships."""

    landcover: np.ndarray            # (H, W) uint8 classes
    material: np.ndarray             # (H, W) uint8 materials
    new_mask: np.ndarray             # (H, W) bool: pixel belongs to a new market / settlement
    junctions: np.ndarray            # (K, 2) x, y of major road junctions (m, image frame)
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

    polys = [ln.buffer(width_m / 2, cap_style="flat") for ln in lines]
    # image frame: x right, y down (metres from the top-left corner)
    t = Affine(gsd, 0, 0, 0, gsd, 0)
    return rasterize([(p, 1) for p in polys], out_shape=(h, w), transform=t, dtype=np.uint8).astype(bool)


def build_layout(rng: np.random.Generator, n_px: int, gsd: float) -> CityLayout:
    """Lay out the city on an ``n_px`` x ``n_px`` grid of ``gsd`` metre pixels."""
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

    patches: list[Patch] = []
    new_mask = np.zeros((h, w), dtype=bool)
    # informal settlements: irregular blobs at the urban fringe; about 40% are new
    n_inf = max(4, int(round(14 * (size / 12096) ** 2)))
    for i in range(n_inf):
        rr = radius * rng.uniform(0.3, 1.0)
        th = rng.uniform(-np.pi, np.pi)
        px, py = cx + rr * np.cos(th), cy + rr * np.sin(th)
        pr = rng.uniform(280, 650)
        new = i % 2 == 1
        patches.append(Patch("informal", px, py, pr, new))
    blob_noise = smooth_noise(rng, (h, w), 40)
    for p in patches:
        win = _window(p.x, p.y, 1.4 * p.r, gsd, h, w)
        d = np.sqrt((xm[:, win[1]] - p.x) ** 2 + (ym[win[0]] - p.y) ** 2) / p.r
        m = (d + 0.35 * blob_noise[win]) < 1.0
        lc[win][m] = INFORMAL
        if p.new:
            new_mask[win] |= m

    # river and lake
    t = np.linspace(-0.1, 1.1, 400)
    ry = size * (0.2 + 0.12 * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * (t * rng.uniform(0.8, 1.4) + rng.uniform(0, 1))))
    river = shapely.LineString(np.column_stack([t * size, ry + 0.55 * size * rng.uniform(0.0, 1.0)]))
    water = _lines_mask([river], h, w, gsd, rng.uniform(45, 75))
    lx, ly = size * rng.uniform(0.1, 0.3), size * rng.uniform(0.7, 0.9)
    water |= ((xm - lx) / 420) ** 2 + ((ym - ly) / 260) ** 2 < 1
    lc[water] = WATER

    # arterial roads: radials, a ring and two cross-town lines
    lines = []
    for th in rng.uniform(0, 2 * np.pi, 6):
        lines.append(shapely.LineString([(cx, cy), (cx + 1.6 * radius * np.cos(th), cy + 1.6 * radius * np.sin(th))]))
    ring = shapely.Point(cx, cy).buffer(0.55 * radius, quad_segs=32).exterior
    lines.append(ring)
    for _ in range(2):
        th = rng.uniform(0, np.pi)
        off = rng.uniform(-0.3, 0.3) * radius
        nx, ny = -np.sin(th), np.cos(th)
        p0 = (cx + off * nx - 2 * radius * np.cos(th), cy + off * ny - 2 * radius * np.sin(th))
        p1 = (cx + off * nx + 2 * radius * np.cos(th), cy + off * ny + 2 * radius * np.sin(th))
        lines.append(shapely.LineString([p0, p1]))
    junctions = _junctions(lines, size)

    # markets (about 40% new), sized 90-200 m: at most junctions, and along the arterials
    order = rng.permutation(len(junctions))
    sites = [junctions[j] + rng.uniform(-60, 60, 2) for j in order[: int(0.7 * len(junctions))]]
    n_road = max(3, int(round(24 * (size / 12096) ** 2)))
    for _ in range(n_road):
        ln = lines[int(rng.integers(0, len(lines)))]
        p = ln.interpolate(rng.uniform(0.1, 0.9), normalized=True)
        sites.append(np.array([p.x, p.y]) + rng.uniform(-40, 40, 2))
    k = 0
    for jx, jy in sites:
        if not (0 < jx < size and 0 < jy < size) or urban[int(jy / gsd), int(jx / gsd)] < 0.3:
            continue
        patches.append(Patch("market", jx, jy, rng.uniform(90, 200), k % 2 == 1))
        k += 1
    for p in patches:
        if p.kind != "market":
            continue
        win = _window(p.x, p.y, p.r, gsd, h, w)
        m = (np.abs(xm[:, win[1]] - p.x) < p.r) & (np.abs(ym[win[0]] - p.y) < p.r * 0.75)
        sub = lc[win]
        sub[m & (sub != WATER)] = MARKET
        if p.new:
            new_mask[win] |= m
        else:
            new_mask[win] &= ~m

    roads = _lines_mask(lines, h, w, gsd, 15.0)
    lc[roads & (lc != WATER)] = ROAD
    material = _materials(rng, lc, xm, ym, h, w, gsd)
    return CityLayout(lc, material, new_mask, junctions, patches, (cx, cy))


def _window(x: float, y: float, r: float, gsd: float, h: int, w: int) -> tuple[slice, slice]:
    """Pixel window around a point (image frame), clipped to the image."""
    c0, c1 = max(int((x - r) / gsd), 0), min(int((x + r) / gsd) + 1, w)
    r0, r1 = max(int((y - r) / gsd), 0), min(int((y + r) / gsd) + 1, h)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


def _junctions(lines: list[shapely.LineString], size: float) -> np.ndarray:
    pts = []
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            x = lines[i].intersection(lines[j])
            for g in getattr(x, "geoms", [x]):
                if isinstance(g, shapely.Point) and not g.is_empty:
                    pts.append((g.x, g.y))
    a = np.array(pts, dtype=np.float64).reshape(-1, 2)
    inside = (a[:, 0] > 0) & (a[:, 0] < size) & (a[:, 1] > 0) & (a[:, 1] < size)
    a = a[inside]
    # merge junctions closer than 60 m (the radials all meet at the centre)
    keep: list[np.ndarray] = []
    for p in a:
        if all(np.hypot(*(p - q)) > 60 for q in keep):
            keep.append(p)
    return np.array(keep).reshape(-1, 2)


def _materials(rng, lc, xm, ym, h, w, gsd) -> np.ndarray:
    """Per-pixel material with the micro-structure of each land-cover class.

    Each class is computed only on its own pixels, with per-cell random values looked up in
    small arrays, so the cost is one pass over the image.
    """
    mat = np.zeros((h, w), dtype=np.uint8)
    flat = lc.ravel()
    out = mat.ravel()

    def cells(k: int) -> np.ndarray:
        return rng.random(((h + k - 1) // k, (w + k - 1) // k), dtype=np.float32)

    r4, r10a, r10b, r2a, r2b = cells(4), cells(10), cells(10), cells(2), cells(2)
    for cls in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(flat == cls)
        if idx.size == 0:
            continue
        py, px = np.divmod(idx, w)
        if cls == WATER:
            m = np.zeros(idx.size, np.uint8)
        elif cls == BARE:
            m = np.full(idx.size, 2, np.uint8)
        elif cls == VEGETATION:
            m = np.where(r4[py // 4, px // 4] < 0.25, 13, 1)
        elif cls == ROAD:
            m = np.full(idx.size, 3, np.uint8)
        elif cls == FORMAL:  # 30 m lots on a 90 m street grid; buildings with 3 m setbacks
            street = ((px % 30) < 2) | ((py % 30) < 2)
            lot = r10a[py // 10, px // 10]
            inner = ((px % 10) >= 1) & ((py % 10) >= 1) & ((px % 10) <= 8) & ((py % 10) <= 8)
            roof = np.where(r10b[py // 10, px // 10] < 0.55, 5, 4)
            m = np.where(street, 3, np.where(inner & (lot < 0.7), roof, np.where(lot < 0.85, 1, 2)))
        elif cls == INFORMAL:  # dense 6 m roofs of new and rusty metal, 3 m dirt lanes
            c = r2a[py // 2, px // 2]
            lane = ((px % 9) == 0) | ((py % 11) == 0)
            m = np.where(lane, 11, np.where(c < 0.55, 6, np.where(c < 0.92, 7, 11)))
        elif cls == MARKET:  # stalls of coloured tarps, narrow aisles
            c = r2b[py // 2, px // 2]
            aisle = ((px % 6) == 0) | ((py % 7) == 0)
            m = np.where(aisle, 4, np.where(c < 0.35, 8, np.where(c < 0.65, 9, np.where(c < 0.85, 10, 6))))
        else:  # INDUSTRIAL: sheds in yards
            m = np.where(((px % 17) >= 2) & ((py % 14) >= 2), 12, 4)
        out[idx] = m
    return mat


def render_image(rng: np.random.Generator, layout: CityLayout) -> np.ndarray:
    """Render the 4-band uint16 image (blue, green, red, nir) from the material map."""
    h, w = layout.material.shape
    shade = (1.0 + 0.06 * smooth_noise(rng, (h, w), 24)) * (1.0 + 0.05 * rng.standard_normal((h, w), dtype=np.float32))
    img = np.empty((4, h, w), dtype=np.uint16)
    for b in range(4):
        band = MATERIALS[:, b][layout.material] * shade
        band += 25.0 * rng.standard_normal((h, w), dtype=np.float32)
        np.clip(band, 1, 10000, out=band)
        img[b] = band
    return img
