"""The planted relationships: per 672 m cell and acquisition date, what drives riots in the synthetic city.

For every stride cell of the default grid (672 m, aligned with the image) and every date the
generator measures, from the land cover at that date:

- ``market_score``   = min(1, market share / 0.04)   (markets are 90-200 m stall areas at junctions)
- ``informal_score`` = min(1, informal share / 0.5)  (dense small metal roofs)
- ``junction_score`` = min(2, major road junctions in the cell) / 2
- ``unemployment_rate`` and ``youth_share`` of the census ward under the cell centre (one census).

Riots per year in the cell from that date on (``rate``, also ``rate_post``) are

    log rate_post = -4.0 + 3.5 market + 2.5 informal + 1.2 junction
                    + 7.0 (unemployment - 0.15) + 1.5 (youth - 0.30)

Riots between two dates are drawn at the earlier date's rate, riots after the last date at the last
date's rate. Before the first date the city looked as at the first date (what is there at date
index 0 existed then), but ACLED's coverage was patchier: only 40% of those riots were recorded.
``rate_pre`` is the rate before the date: the previous date's rate (at the first date, the rate
of the early history). A market that opens at date k raises its cell's rate from date k on: the
event history before date k does not show it, the image at date k does.

A cell is an *onset* at a date when its planted rate rose by more than 10% since the previous date
(``log_rate - log_rate_pre > 0.1``) and ACLED records no riot in the cell in the 365 days before the
date (counted from the written ``acled.csv``, as a user would). Onsets are what only the image can
foresee. Protests follow markets and the city centre, violence against civilians follows informal
settlements, and battles, explosions and strategic developments are rare background events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from riotvit.synth.city import INFORMAL, MARKET

COEF = {
    "intercept": -4.0,
    "market_score": 3.5,
    "informal_score": 2.5,
    "junction_score": 1.2,
    "unemployment_rate": 7.0,
    "youth_share": 1.5,
}
CENTRE = {"unemployment_rate": 0.15, "youth_share": 0.30}
ONSET_MIN_RISE = 0.1    # log-rate rise since the previous date that counts as "rose"
ONSET_QUIET_DAYS = 365  # no recorded riot in the cell this many days before the date


def cell_scores(lc: np.ndarray, junctions: np.ndarray, cell_px: int, gsd: float) -> pd.DataFrame:
    """Per-cell market, informal and junction measures of one date's land cover (row-major cells)."""
    n = lc.shape[0] // cell_px

    def frac(mask: np.ndarray) -> np.ndarray:
        return mask[: n * cell_px, : n * cell_px].reshape(n, cell_px, n, cell_px).mean(axis=(1, 3))

    jx = (junctions[:, 0] // (cell_px * gsd)).astype(int)
    jy = (junctions[:, 1] // (cell_px * gsd)).astype(int)
    ok = (jx >= 0) & (jx < n) & (jy >= 0) & (jy < n)
    junc = np.zeros((n, n), dtype=int)
    np.add.at(junc, (jy[ok], jx[ok]), 1)
    df = pd.DataFrame({"market_frac": frac(lc == MARKET).ravel(), "informal_frac": frac(lc == INFORMAL).ravel(),
                       "junctions": junc.ravel()})
    df["market_score"] = np.minimum(1.0, df["market_frac"] / 0.04)
    df["informal_score"] = np.minimum(1.0, df["informal_frac"] / 0.5)
    df["junction_score"] = np.minimum(df["junctions"], 2) / 2.0
    return df


def cell_truth(scores: list[pd.DataFrame], dates: list[dt.date], wards_px: np.ndarray, wards: pd.DataFrame,
               cell_px: int) -> pd.DataFrame:
    """One row per cell and date: drivers, ``log_rate``/``rate`` at the date and ``rate_pre`` before it.

    Args:
        scores: ``cell_scores`` of each date, in date order.
        wards_px: (H, W) ward index (0-based) per pixel.
        wards: the ward attribute table (row i = ward index i).
        cell_px: pixels per cell side (224 at the defaults).
    """
    n = wards_px.shape[0] // cell_px
    centre = cell_px // 2 + np.arange(n) * cell_px
    ward_idx = wards_px[np.ix_(centre, centre)].ravel()
    iy, ix = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    r = np.hypot(ix - (n - 1) / 2, iy - (n - 1) / 2).ravel() / max(n / 2, 1)
    cells = pd.DataFrame({
        "cell_row_img": iy.ravel(),  # 0 = top (north)
        "cell_col_img": ix.ravel(),
        "ward_id": wards["ward_id"].to_numpy()[ward_idx],
        "unemployment_rate": wards["unemployment_rate"].to_numpy()[ward_idx],
        "youth_share": wards["youth_share"].to_numpy()[ward_idx],
        "centrality": np.exp(-(r**2) * 2),
    })
    census = (COEF["unemployment_rate"] * (cells["unemployment_rate"] - CENTRE["unemployment_rate"])
              + COEF["youth_share"] * (cells["youth_share"] - CENTRE["youth_share"]))
    frames, prev = [], None
    for k, (d, s) in enumerate(zip(dates, scores)):
        df = pd.concat([cells.assign(date=d.isoformat(), date_index=k), s], axis=1)
        df["log_rate"] = (COEF["intercept"] + COEF["market_score"] * df["market_score"]
                          + COEF["informal_score"] * df["informal_score"]
                          + COEF["junction_score"] * df["junction_score"] + census)
        # before the first date the city looked as at the first date (see the module doc)
        df["log_rate_pre"] = df["log_rate"] if prev is None else prev
        prev = df["log_rate"].to_numpy()
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["rate"] = np.exp(out["log_rate"])
    out["log_rate_post"] = out["log_rate"]
    out["rate_post"] = out["rate"]
    out["rate_pre"] = np.exp(out["log_rate_pre"])
    return out


def mark_onsets(truth: pd.DataFrame, acled: pd.DataFrame, cell_m: float, epsg: int) -> pd.DataFrame:
    """Add ``riots_before`` (recorded riots in the cell in the ``ONSET_QUIET_DAYS`` before the date)
    and ``onset``, counted from the ACLED table as written (lon/lat, event_date)."""
    from pyproj import Transformer

    riots = acled[acled["event_type"] == "Riots"]
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(riots["longitude"].to_numpy(),
                                                                      riots["latitude"].to_numpy())
    ev = pd.DataFrame({"col": np.floor(np.asarray(x) / cell_m).astype(int), "row": np.floor(np.asarray(y) / cell_m).astype(int),
                       "date": pd.to_datetime(riots["event_date"]).to_numpy()})
    before = np.zeros(len(truth), dtype=int)
    for d in truth["date"].unique():
        t1 = pd.Timestamp(d)
        recent = ev[(ev["date"] >= t1 - pd.Timedelta(days=ONSET_QUIET_DAYS)) & (ev["date"] < t1)]
        counts = recent.groupby(["col", "row"]).size()
        sel = (truth["date"] == d).to_numpy()
        keys = pd.MultiIndex.from_arrays([truth.loc[sel, "col"], truth.loc[sel, "row"]])
        before[sel] = counts.reindex(keys, fill_value=0).to_numpy()
    truth = truth.copy()
    truth["riots_before"] = before
    truth["onset"] = (truth["log_rate"] - truth["log_rate_pre"] > ONSET_MIN_RISE) & (before == 0)
    return truth
