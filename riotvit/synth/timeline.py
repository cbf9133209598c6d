"""How the synthetic city changes between its acquisition dates, and its land cover at each date.

Date index 0 is the first acquisition date; whatever is there at index 0 was also there during the
early event history before it. Between dates, deterministically from the seed:

- markets open (about 55% of them after the first date, spread evenly over the later dates; those
  at the junctions of the new road open with it or later) and about one in eight open markets
  closes at a later date;
- informal settlements appear (about half of them after the first date, smaller at first) and grow:
  a settlement's radius grows by 15-30% of its first radius per date step (half of the old ones
  by 5-15%);
- one cross-town road is built at a random later date, adding its junctions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from riotvit.synth.city import CityLayout, Patch

# land-cover classes
WATER, VEGETATION, BARE, FORMAL, INFORMAL, MARKET, INDUSTRIAL, ROAD = range(8)
CLASS_NAMES = ["water", "vegetation", "bare", "formal", "informal", "market", "industrial", "road"]


def window(x: float, y: float, r: float, gsd: float, h: int, w: int) -> tuple[slice, slice]:
    """Pixel window around a point (image frame), clipped to the image."""
    c0, c1 = max(int((x - r) / gsd), 0), min(int((x + r) / gsd) + 1, w)
    r0, r1 = max(int((y - r) / gsd), 0), min(int((y + r) / gsd) + 1, h)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


OLD_SHARE = 0.45       # share of markets and settlements already there before the first date
CLOSE_SHARE = 0.125    # share of markets open before the last date that close at a later date


def _later(rng: np.random.Generator, n: int, n_dates: int) -> np.ndarray:
    """Appearance index of ``n`` patches: ``OLD_SHARE`` at 0, the rest spread evenly over 1..n_dates-1."""
    if n_dates == 1:
        return np.zeros(n, dtype=int)
    appear = np.zeros(n, dtype=int)
    new = rng.permutation(np.flatnonzero(rng.random(n) >= OLD_SHARE))
    appear[new] = 1 + np.arange(new.size) % (n_dates - 1)
    return appear


def settlement_dates(rng: np.random.Generator, n: int, n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """(appear index, radius growth per date step) of ``n`` informal settlements."""
    appear = _later(rng, n, n_dates)
    old_growth = np.where(rng.random(n) < 0.5, rng.uniform(0.05, 0.15, n), 0.0)
    growth = np.where(appear > 0, rng.uniform(0.15, 0.30, n), old_growth)
    return appear, growth


def road_date(rng: np.random.Generator, n_dates: int) -> int | None:
    """Date index the new cross-town road opens; None when there is a single date."""
    k = int(rng.integers(1, max(n_dates, 2)))
    return k if n_dates > 1 else None


def market_dates(rng: np.random.Generator, earliest: list[int | None], n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """(appear index, close index or -1) of markets that cannot open before ``earliest`` (None: 0)."""
    n = len(earliest)
    first = np.array([e or 0 for e in earliest], dtype=int)
    appear = np.maximum(_later(rng, n, n_dates), first)
    u = rng.random(n)
    close_at = appear + 1 + (rng.integers(0, 1 << 30, n) % np.maximum(n_dates - 1 - appear, 1))
    close = np.where((u < CLOSE_SHARE) & (appear < n_dates - 1), close_at, -1)
    return appear, close


def landcover_at(layout: CityLayout, k: int) -> np.ndarray:
    """(H, W) uint8 land cover at date index ``k``: what is open then, settlements at their size then."""
    lc = layout.base.copy()
    h, w = lc.shape
    xm = (np.arange(w, dtype=np.float32) + 0.5) * layout.gsd
    ym = (np.arange(h, dtype=np.float32) + 0.5) * layout.gsd
    for p in active(layout, k, "informal"):
        rk = p.radius(k)
        win = window(p.x, p.y, 1.4 * rk, layout.gsd, h, w)
        d = np.sqrt((xm[None, win[1]] - p.x) ** 2 + (ym[win[0], None] - p.y) ** 2) / rk
        lc[win][(d + 0.35 * layout.blob_noise[win]) < 1.0] = INFORMAL
    flat = lc.reshape(-1)
    flat[layout.water] = WATER
    for p in active(layout, k, "market"):
        win = window(p.x, p.y, p.r, layout.gsd, h, w)
        m = (np.abs(xm[None, win[1]] - p.x) < p.r) & (np.abs(ym[win[0], None] - p.y) < p.r * 0.75)
        sub = lc[win]
        sub[m & (sub != WATER)] = MARKET
    flat[layout.roads] = ROAD
    if layout.road_index is not None and k >= layout.road_index:
        flat[layout.new_road] = ROAD
    return lc


def active(layout: CityLayout, k: int, kind: str) -> list[Patch]:
    """The patches of ``kind`` there at date index ``k``."""
    return [p for p in layout.patches if p.kind == kind and p.active(k)]


def junctions_at(layout: CityLayout, k: int) -> np.ndarray:
    """(K, 2) major road junctions at date index ``k``."""
    return layout.junctions[layout.junction_appear <= k]


def counts_at(layout: CityLayout, k: int) -> dict[str, int]:
    """What is there at date index ``k``, and what changed since the previous date."""
    prev = max(k - 1, 0)
    return {
        "markets": len(active(layout, k, "market")),
        "markets_opened": sum(p.kind == "market" and p.appear == k > 0 for p in layout.patches),
        "markets_closed": sum(p.kind == "market" and p.close == k for p in layout.patches),
        "settlements": len(active(layout, k, "informal")),
        "settlements_appeared": sum(p.kind == "informal" and p.appear == k > 0 for p in layout.patches),
        "settlements_grown": sum(p.kind == "informal" and p.active(prev) and p.growth > 0 and k > 0
                                 for p in layout.patches),
        "junctions": int((layout.junction_appear <= k).sum()),
        "new_road": bool(layout.road_index == k),
    }
