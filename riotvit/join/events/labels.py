"""Targets and history features per crop from ACLED events, vectorised and leakage-free.

For a crop acquired at date ``t`` the **label window** is ``[t + lead, t + lead + horizon)``. An
event counts for a crop when its date is in the window and its point lies inside the crop's
footprint grown by the event's positional radius (from ``geo_precision``). Targets:

- ``riot``: any event of the riot types; ``event_count``: how many; ``fatalities``: their
  summed fatalities; ``crowd_size``: their largest crowd class (0 none reported .. 3 large);
- ``count_<type>``: events of each ACLED event type (all types).

**History features** use only events that certainly happened before ``t``: an event dated ``d``
with a date uncertainty of ``u`` days (from ``time_precision``) is used only when
``d + u < t``. For each history window ``w`` (e.g. 90 and 365 days, so ``d >= t - w``) and each
event type: the count inside the crop and within each radius (2 km, 10 km) of the crop's centre;
and ``hist_days_since_riot_<r>``: days since the latest riot within the largest radius (capped at
``since_cap_days``, five years, when there is none).

Everything works on arrays: events are matched to crops by grid arithmetic (each event
enumerates the few crops it can touch), and neighbourhood counts are disc convolutions of event
histograms on a fine lattice (bins of about 168 m), so a million events against a hundred
thousand crops take seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage, signal

from riotvit.errors import ConfigError, clip, suggest
from riotvit.grid import CropGrid
from riotvit.join.events.vocab import EVENT_TYPES, SUB_EVENT_TYPES

TYPE_SLUGS = {
    "Battles": "battles",
    "Protests": "protests",
    "Riots": "riots",
    "Explosions/Remote violence": "explosions",
    "Violence against civilians": "vac",
    "Strategic developments": "strategic",
}


def type_slug(event_type: str) -> str:
    """Column-safe short name of an ACLED event type."""
    return TYPE_SLUGS.get(event_type, "other")


@dataclass(frozen=True)
class LabelSpec:
    """What the labels and history features are made of."""

    lead_days: int = 0
    horizon_days: int = 365
    history_days: tuple[int, ...] = (90, 365)
    radii_m: tuple[float, ...] = (2000.0, 10000.0)
    riot_types: tuple[str, ...] = ("Riots",)
    riot_sub_types: tuple[str, ...] = ()
    since_cap_days: int = 1825
    bin_m: float | None = None
    history_types: tuple[str, ...] | None = None  # ACLED event types with history features (None = all)

    def __post_init__(self) -> None:
        """Refuse settings that would silently give empty labels or features (one line, naming the key)."""
        if not self.history_days:
            raise ConfigError("history_days is empty: history features need at least one window in days, e.g. [90, 365]")
        if not self.radii_m:
            raise ConfigError("radii_m is empty: give at least one neighbourhood radius in metres, e.g. [2000, 10000]")
        for key, values, known in (("riot_event_types", self.riot_types, EVENT_TYPES),
                                   ("riot_sub_event_types", self.riot_sub_types, tuple(SUB_EVENT_TYPES))):
            for v in values:
                if v not in known:
                    raise ConfigError(f"{key}: {clip(v)!r} is not an ACLED {key.removeprefix('riot_').replace('_', ' ')[:-1]}"
                                      f"{suggest(v, known)}; choose from {', '.join(known) if len(known) < 10 else 'the ACLED codebook'}")

    def history_slugs(self) -> list[str]:
        allowed = None if self.history_types is None else {type_slug(t) for t in self.history_types}
        return [s for s in dict.fromkeys(TYPE_SLUGS.values()) if allowed is None or s in allowed]

    def history_columns(self) -> list[str]:
        cols = []
        for w in self.history_days:
            for slug in self.history_slugs():
                cols.append(f"hist_{slug}_{w}d_crop")
                cols += [f"hist_{slug}_{w}d_{_km(r)}" for r in self.radii_m]
        cols.append(f"hist_days_since_riot_{_km(max(self.radii_m))}")
        return cols

    def target_columns(self) -> list[str]:
        return ["riot", "event_count", "fatalities", "crowd_size", *[f"count_{s}" for s in dict.fromkeys(TYPE_SLUGS.values())]]


def _km(r: float) -> str:
    return f"{r / 1000:g}km"


def is_riot(events: pd.DataFrame, spec: LabelSpec) -> np.ndarray:
    """Events of the configured riot types (or riot sub-event types)."""
    m = events["event_type"].isin(spec.riot_types).to_numpy()
    if spec.riot_sub_types:
        m |= events["sub_event_type"].isin(spec.riot_sub_types).to_numpy()
    return m


def _day(d) -> np.ndarray:
    """Dates as integer days since the epoch."""
    return pd.to_datetime(d).to_numpy().astype("datetime64[D]").astype(np.int64)


def crop_pairs(
    grid: CropGrid, x: np.ndarray, y: np.ndarray, radius: np.ndarray, crop_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (event, crop) pairs where the event lies in the crop's footprint grown by its radius.

    Args:
        x, y: event coordinates in the grid CRS.
        radius: per-event growth radius in metres (0 = the footprint itself).
        crop_keys: sorted ``col * 2**32 + row`` keys of the crops to match against.

    Returns:
        ``(event_index, crop_position)`` arrays; ``crop_position`` indexes ``crop_keys``.
    """
    s, c = grid.stride_m, grid.crop_m
    # col*s - r <= x  and  col*s + c + r > x
    c0 = np.floor((x - c - radius) / s).astype(np.int64) + 1
    c1 = np.floor((x + radius) / s).astype(np.int64)
    r0 = np.floor((y - c - radius) / s).astype(np.int64) + 1
    r1 = np.floor((y + radius) / s).astype(np.int64)
    nc = np.maximum(c1 - c0 + 1, 0)
    nr = np.maximum(r1 - r0 + 1, 0)
    n = nc * nr
    ev = np.repeat(np.arange(x.size), n)
    if ev.size == 0:
        return ev, ev
    start = np.repeat(np.cumsum(n) - n, n)
    k = np.arange(ev.size) - start
    cols = c0[ev] + k % nc[ev]
    rows = r0[ev] + k // nc[ev]
    # round the grown square's corners: the point must be within radius of the footprint
    big = radius[ev] > 0
    if big.any():
        dx = np.maximum(np.maximum(cols * s - x[ev], x[ev] - (cols * s + c)), 0.0)
        dy = np.maximum(np.maximum(rows * s - y[ev], y[ev] - (rows * s + c)), 0.0)
        ok = ~big | (dx * dx + dy * dy <= radius[ev] ** 2)
        ev, cols, rows = ev[ok], cols[ok], rows[ok]
    keys = cols * (1 << 32) + rows
    pos = np.searchsorted(crop_keys, keys)
    pos = np.minimum(pos, crop_keys.size - 1)
    hit = crop_keys[pos] == keys
    return ev[hit], pos[hit]


def crop_key(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.asarray(cols, dtype=np.int64) * (1 << 32) + np.asarray(rows, dtype=np.int64)


def build_targets(
    crops: pd.DataFrame, events: pd.DataFrame, grid: CropGrid, spec: LabelSpec
) -> pd.DataFrame:
    """Targets for every crop row (``col``, ``row``, ``date``).

    ``events`` needs ``x``, ``y`` (grid CRS), ``event_date``, ``event_type``, ``fatalities``,
    ``crowd_class``, ``radius_m`` and ``label_excluded``.
    """
    n = len(crops)
    slugs = list(dict.fromkeys(TYPE_SLUGS.values()))
    out = {k: np.zeros(n, dtype=np.int64) for k in ("riot", "event_count", "fatalities", "crowd_size")}
    counts = np.zeros((n, len(slugs)), dtype=np.int64)
    ev = events[~events["label_excluded"].to_numpy()]
    eday = _day(ev["event_date"])
    riot = is_riot(ev, spec)
    tslot = np.array([slugs.index(type_slug(t)) if type_slug(t) in slugs else -1 for t in ev["event_type"]], dtype=np.int64)
    cday = _day(crops["date"])
    for t in np.unique(cday):
        rows_t = np.flatnonzero(cday == t)
        keys = crop_key(crops["col"].to_numpy()[rows_t], crops["row"].to_numpy()[rows_t])
        order = np.argsort(keys)
        keys = keys[order]
        lo, hi = t + spec.lead_days, t + spec.lead_days + spec.horizon_days
        inwin = np.flatnonzero((eday >= lo) & (eday < hi))
        e_i, pos = crop_pairs(grid, ev["x"].to_numpy()[inwin], ev["y"].to_numpy()[inwin],
                              ev["radius_m"].to_numpy()[inwin], keys)
        e = inwin[e_i]
        target = rows_t[order][pos]
        ok = tslot[e] >= 0
        np.add.at(counts, (target[ok], tslot[e][ok]), 1)
        r = riot[e]
        tr, er = target[r], e[r]
        out["event_count"] += np.bincount(tr, minlength=n)
        out["fatalities"] += np.bincount(tr, weights=ev["fatalities"].to_numpy()[er], minlength=n).astype(np.int64)
        np.maximum.at(out["crowd_size"], tr, ev["crowd_class"].to_numpy()[er].astype(np.int64))
    out["riot"] = (out["event_count"] > 0).astype(np.int64)
    df = pd.DataFrame(out, index=crops.index)
    for j, s in enumerate(slugs):
        df[f"count_{s}"] = counts[:, j]
    return df


@dataclass
class _Lattice:
    x0: float
    y1: float
    b: float
    nx: int
    ny: int

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ix = np.floor((x - self.x0) / self.b).astype(np.int64)
        iy = np.floor((self.y1 - y) / self.b).astype(np.int64)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return ix, iy, ok


def _disc(radius_m: float, b: float) -> np.ndarray:
    k = int(math.ceil(radius_m / b))
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    return ((xx * b) ** 2 + (yy * b) ** 2 <= radius_m**2).astype(np.float32)


def build_history(
    crops: pd.DataFrame, events: pd.DataFrame, grid: CropGrid, spec: LabelSpec
) -> pd.DataFrame:
    """History features for every crop row, using only events certainly before its date."""
    n = len(crops)
    slugs = spec.history_slugs()
    cols = spec.history_columns()
    out = pd.DataFrame(np.zeros((n, len(cols)), dtype=np.float32), columns=cols, index=crops.index)
    ev = events[~events["label_excluded"].to_numpy()]
    eday = _day(ev["event_date"])
    known = eday + ev["date_uncertainty_days"].to_numpy().astype(np.int64)  # latest possible date
    tslot = np.array([slugs.index(type_slug(t)) if type_slug(t) in slugs else -1 for t in ev["event_type"]], dtype=np.int64)
    riot = is_riot(ev, spec)
    ex, ey = ev["x"].to_numpy(), ev["y"].to_numpy()
    c_cols, c_rows = crops["col"].to_numpy(), crops["row"].to_numpy()
    cx = c_cols * grid.stride_m + grid.crop_m / 2
    cy = c_rows * grid.stride_m + grid.crop_m / 2
    b = spec.bin_m or min(grid.stride_m / max(1, round(grid.stride_m / 168.0)), 250.0)
    rmax = max(spec.radii_m)
    # the lattice is anchored on multiples of the stride in the grid CRS, not on the crops, so a
    # crop's features never depend on which other crops are computed with it
    s = grid.stride_m
    lx0 = math.floor((cx.min() - rmax - b) / s) * s
    ly1 = math.ceil((cy.max() + rmax + b) / s) * s
    lat = _Lattice(lx0, ly1, b, int(math.ceil((cx.max() + rmax + b - lx0) / b)) + 1,
                   int(math.ceil((ly1 - (cy.min() - rmax - b)) / b)) + 1)
    kernels = {r: _disc(r, b) for r in spec.radii_m}
    cix, ciy, _ = lat.index(cx, cy)
    eix, eiy, eok = lat.index(ex, ey)
    cday = _day(crops["date"])
    since_col = f"hist_days_since_riot_{_km(rmax)}"
    cap = spec.since_cap_days
    for t in np.unique(cday):
        rows_t = np.flatnonzero(cday == t)
        keys = crop_key(c_cols[rows_t], c_rows[rows_t])
        order = np.argsort(keys)
        for w in spec.history_days:
            use = np.flatnonzero((known < t) & (eday >= t - w) & (tslot >= 0))
            # inside the crop footprint (exact)
            e_i, pos = crop_pairs(grid, ex[use], ey[use], np.zeros(use.size), keys[order])
            cnt = np.zeros((rows_t.size, len(slugs)), dtype=np.float32)
            np.add.at(cnt, (order[pos], tslot[use[e_i]]), 1.0)
            for j, s in enumerate(slugs):
                out.iloc[rows_t, out.columns.get_loc(f"hist_{s}_{w}d_crop")] = cnt[:, j]
            # within each radius of the crop centre: disc convolutions of per-type histograms
            ok = use[eok[use]]
            hist = np.zeros((len(slugs), lat.ny, lat.nx), dtype=np.float32)
            np.add.at(hist, (tslot[ok], eiy[ok], eix[ok]), 1.0)
            for r, ker in kernels.items():
                conv = signal.fftconvolve(hist, ker[None], mode="same", axes=(1, 2))
                vals = np.rint(conv[:, ciy[rows_t], cix[rows_t]]).T
                for j, s in enumerate(slugs):
                    out.iloc[rows_t, out.columns.get_loc(f"hist_{s}_{w}d_{_km(r)}")] = vals[:, j]
        # days since the latest riot within the largest radius (any time before t, capped)
        rr = np.flatnonzero((known < t) & riot & eok & (eday >= t - cap))
        latest = np.full((lat.ny, lat.nx), -(1 << 40), dtype=np.int64)
        np.maximum.at(latest, (eiy[rr], eix[rr]), eday[rr])
        coarse = max(1, int(round(grid.stride_m / b)))
        ny2, nx2 = -(-lat.ny // coarse), -(-lat.nx // coarse)
        pad = np.full((ny2 * coarse, nx2 * coarse), -(1 << 40), dtype=np.int64)
        pad[: lat.ny, : lat.nx] = latest
        lc = pad.reshape(ny2, coarse, nx2, coarse).max(axis=(1, 3))
        fp = _disc(rmax, b * coarse) > 0
        mx = ndimage.maximum_filter(lc, footprint=fp, mode="constant", cval=-(1 << 40))
        last = mx[ciy[rows_t] // coarse, cix[rows_t] // coarse]
        since = np.where(last > -(1 << 39), t - last, cap).astype(np.float32)
        out.iloc[rows_t, out.columns.get_loc(since_col)] = np.minimum(since, cap)
    return out


REFERENCE_COLUMNS = ("persist_riot", "persist_count", "riots_prev_365d", "onset")
"""Columns of :func:`build_reference`: what the forecast is compared with, never model features."""


def build_reference(
    crops: pd.DataFrame, events: pd.DataFrame, grid: CropGrid, spec: LabelSpec, onset_days: int = 365
) -> pd.DataFrame:
    """Persistence and onset columns for every crop row: the label, looked at backwards.

    For a crop at origin ``t`` (its acquisition date):

    - ``persist_count`` / ``persist_riot``: riot events matched to the crop exactly as the label
      matches them (footprint grown by the positional radius), dated in ``[t - horizon, t)`` and
      certainly before ``t`` (date + uncertainty < t). Persistence forecasts "what happened in the
      last window happens again".
    - ``riots_prev_365d`` / ``onset``: the same count over the ``onset_days`` before ``t``;
      ``onset`` is 1 when it is zero: a riot there would be new, which history cannot foresee.
    """
    n = len(crops)
    persist = np.zeros(n, dtype=np.int64)
    prev = np.zeros(n, dtype=np.int64)
    ev = events[~events["label_excluded"].to_numpy() & is_riot(events, spec)]
    eday = _day(ev["event_date"])
    known = eday + ev["date_uncertainty_days"].to_numpy().astype(np.int64)
    cday = _day(crops["date"])
    for t in np.unique(cday):
        rows_t = np.flatnonzero(cday == t)
        keys = crop_key(crops["col"].to_numpy()[rows_t], crops["row"].to_numpy()[rows_t])
        order = np.argsort(keys)
        for out, days in ((persist, spec.horizon_days), (prev, onset_days)):
            use = np.flatnonzero((known < t) & (eday >= t - days))
            e_i, pos = crop_pairs(grid, ev["x"].to_numpy()[use], ev["y"].to_numpy()[use],
                                  ev["radius_m"].to_numpy()[use], keys[order])
            out += np.bincount(rows_t[order][pos], minlength=n)
    return pd.DataFrame({"persist_riot": (persist > 0).astype(np.int64), "persist_count": persist,
                         "riots_prev_365d": prev, "onset": (prev == 0).astype(np.int64)}, index=crops.index)
