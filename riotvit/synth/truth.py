"""The planted relationships: per 672 m cell, what drives riots in the synthetic city.

For every stride cell of the default grid (672 m, aligned with the image) the generator
measures, from the land cover it drew:

- ``market_score``   = min(1, market share / 0.04)   (markets are 90-200 m stall areas at junctions)
- ``informal_score`` = min(1, informal share / 0.5)  (dense small metal roofs)
- ``junction_score`` = min(2, major road junctions in the cell) / 2
- ``unemployment_rate`` and ``youth_share`` of the census ward under the cell centre.

Riots per year in the cell after the image date (``rate_post``) are

    log rate_post = -4.0 + 3.5 market + 2.5 informal + 1.2 junction
                    + 7.0 (unemployment - 0.15) + 1.5 (youth - 0.30)

Before the image date (``rate_pre``) the same formula holds but only with the markets and
settlements that already existed then ("old" ones): about 40% of markets and settlements are
*new*, visible in the image but absent from the event history. So event history and census
explain part of the future riots; the image explains the rest. Protests follow markets and
the city centre, violence against civilians follows informal settlements, and battles,
explosions and strategic developments are rare background events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riotvit.synth.city import INFORMAL, MARKET, CityLayout

COEF = {
    "intercept": -4.0,
    "market_score": 3.5,
    "informal_score": 2.5,
    "junction_score": 1.2,
    "unemployment_rate": 7.0,
    "youth_share": 1.5,
}
CENTRE = {"unemployment_rate": 0.15, "youth_share": 0.30}


def cell_truth(layout: CityLayout, wards_px: np.ndarray, wards: pd.DataFrame, cell_px: int, gsd: float) -> pd.DataFrame:
    """Per-cell drivers and rates.

    Args:
        wards_px: (H, W) ward index (0-based) per pixel.
        wards: the ward attribute table (row i = ward index i).
        cell_px: pixels per cell side (224 at the defaults).
    """
    lc = layout.landcover
    n = lc.shape[0] // cell_px

    def frac(mask: np.ndarray) -> np.ndarray:
        return mask[: n * cell_px, : n * cell_px].reshape(n, cell_px, n, cell_px).mean(axis=(1, 3))

    market = lc == MARKET
    informal = lc == INFORMAL
    market_f, informal_f = frac(market), frac(informal)
    market_old_f, informal_old_f = frac(market & ~layout.new_mask), frac(informal & ~layout.new_mask)
    jx = (layout.junctions[:, 0] // (cell_px * gsd)).astype(int)
    jy = (layout.junctions[:, 1] // (cell_px * gsd)).astype(int)
    ok = (jx >= 0) & (jx < n) & (jy >= 0) & (jy < n)
    junc = np.zeros((n, n), dtype=int)
    np.add.at(junc, (jy[ok], jx[ok]), 1)
    centre = cell_px // 2 + np.arange(n) * cell_px
    ward_idx = wards_px[np.ix_(centre, centre)]
    iy, ix = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    df = pd.DataFrame(
        {
            "cell_row_img": iy.ravel(),  # 0 = top (north)
            "cell_col_img": ix.ravel(),
            "market_frac": market_f.ravel(),
            "market_old_frac": market_old_f.ravel(),
            "informal_frac": informal_f.ravel(),
            "informal_old_frac": informal_old_f.ravel(),
            "junctions": junc.ravel(),
            "ward_id": wards["ward_id"].to_numpy()[ward_idx.ravel()],
            "unemployment_rate": wards["unemployment_rate"].to_numpy()[ward_idx.ravel()],
            "youth_share": wards["youth_share"].to_numpy()[ward_idx.ravel()],
        }
    )
    df["market_score"] = np.minimum(1.0, df["market_frac"] / 0.04)
    df["informal_score"] = np.minimum(1.0, df["informal_frac"] / 0.5)
    df["junction_score"] = np.minimum(df["junctions"], 2) / 2.0
    df["market_old_score"] = np.minimum(1.0, df["market_old_frac"] / 0.04)
    df["informal_old_score"] = np.minimum(1.0, df["informal_old_frac"] / 0.5)
    census = COEF["unemployment_rate"] * (df["unemployment_rate"] - CENTRE["unemployment_rate"]) + COEF[
        "youth_share"
    ] * (df["youth_share"] - CENTRE["youth_share"])
    df["log_rate_post"] = (
        COEF["intercept"] + COEF["market_score"] * df["market_score"] + COEF["informal_score"] * df["informal_score"]
        + COEF["junction_score"] * df["junction_score"] + census
    )
    df["log_rate_pre"] = (
        COEF["intercept"] + COEF["market_score"] * df["market_old_score"]
        + COEF["informal_score"] * df["informal_old_score"] + COEF["junction_score"] * df["junction_score"] + census
    )
    df["rate_post"] = np.exp(df["log_rate_post"])
    df["rate_pre"] = np.exp(df["log_rate_pre"])
    r = np.hypot(ix - (n - 1) / 2, iy - (n - 1) / 2).ravel() / max(n / 2, 1)
    df["centrality"] = np.exp(-(r**2) * 2)
    return df
