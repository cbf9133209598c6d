"""Synthetic ACLED events for the synthetic city, in the current 31-column export format.

Events are drawn per 672 m cell as Poisson counts from the planted rates (``truth.py``), for
several years before the first and after the last image date, each stretch between two dates at
the earlier date's rates, placed near the cell's markets and junctions (or anywhere in the cell), and written with ACLED's real vocabulary, precision codes, actors,
interaction codes, crowd-size tags and notes.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from pyproj import Transformer

import riotvit.synth.timeline as timeline
from riotvit.join.events.vocab import ACLED_COLUMNS
from riotvit.synth.city import CityLayout

COUNTRY, ISO, REGION = "Synthland", 999, "Eastern Africa"
PRE_REPORTED = 0.4  # share of riots before the first image date that made it into the record

# event_type -> (sub types with probabilities, disorder_type, actor1, inter1, actor2, inter2)
_TYPES = {
    "Riots": ([("Violent demonstration", 0.55), ("Mob violence", 0.45)], "Political violence", f"Rioters ({COUNTRY})", 5, "", 0),
    "Protests": ([("Peaceful protest", 0.88), ("Protest with intervention", 0.09), ("Excessive force against protesters", 0.03)],
                 "Demonstrations", f"Protesters ({COUNTRY})", 6, "", 0),
    "Violence against civilians": ([("Attack", 0.8), ("Abduction/forced disappearance", 0.2)], "Political violence",
                                   f"Unidentified Armed Group ({COUNTRY})", 3, f"Civilians ({COUNTRY})", 7),
    "Battles": ([("Armed clash", 1.0)], "Political violence", f"Military Forces of {COUNTRY} (2019-)", 1,
                f"Unidentified Armed Group ({COUNTRY})", 3),
    "Explosions/Remote violence": ([("Remote explosive/landmine/IED", 0.7), ("Grenade", 0.3)], "Political violence",
                                   f"Unidentified Armed Group ({COUNTRY})", 3, f"Civilians ({COUNTRY})", 7),
    "Strategic developments": ([("Arrests", 0.5), ("Looting/property destruction", 0.3), ("Other", 0.2)],
                               "Strategic developments", f"Police Forces of {COUNTRY} (2019-)", 1, "", 0),
}


def type_log_rates(truth: pd.DataFrame) -> dict[str, np.ndarray]:
    """Yearly log-rates per cell of every event type but riots (one date's ``truth`` rows)."""
    return {
        "Protests": -2.0 + 1.2 * truth["market_score"] + 1.5 * truth["centrality"] + 0.4 * truth["junction_score"],
        "Violence against civilians": -3.6 + 1.6 * truth["informal_score"],
        "Battles": np.full(len(truth), -7.0),
        "Explosions/Remote violence": np.full(len(truth), -7.5),
        "Strategic developments": -4.5 + 1.0 * truth["centrality"],
    }


def periods(dates: list[dt.date], start: dt.date, end: dt.date) -> list[tuple[int, float, dt.date, dt.date]]:
    """(date index whose state rules, share of riots recorded, from, to) of each stretch of the history."""
    out = [(0, PRE_REPORTED, start, dates[0])]
    bounds = [*dates, end]
    out += [(k, 1.0, bounds[k], bounds[k + 1]) for k in range(len(dates))]
    return out


def draw_events(
    rng: np.random.Generator,
    layout: CityLayout,
    truth: pd.DataFrame,
    wards_utm,  # GeoDataFrame in UTM
    dates: list[dt.date],
    start: dt.date,
    end: dt.date,
    cell_m: float,
    x0: float,
    y1: float,
    epsg: int,
) -> pd.DataFrame:
    """Draw events and return them as an ACLED export table (all 31 columns, in order).

    Each stretch of time between two dates (and before the first, after the last) is drawn from the
    city as it was at the stretch's start: its rates and its markets and junctions as hot spots.
    """
    rows = []
    n_cells = int((truth["date_index"] == 0).sum())
    by_date = [truth[truth["date_index"] == k].reset_index(drop=True) for k in range(len(dates))]
    rates = [{et: np.asarray(v, dtype=float) for et, v in type_log_rates(t).items()} for t in by_date]
    hot = []
    for k in range(len(dates)):
        markets = np.array([(p.x, p.y) for p in timeline.active(layout, k, "market")]).reshape(-1, 2)
        hot.append(np.vstack([markets, timeline.junctions_at(layout, k)]))
    for c in range(n_cells):
        cell = by_date[0].iloc[c]
        cx0, cy0 = cell.cell_col_img * cell_m, cell.cell_row_img * cell_m
        draws = []
        for k, reported, d0, d1 in periods(dates, start, end):
            years = (d1 - d0).days / 365.25
            h = hot[k]
            spots = h[(h[:, 0] >= cx0) & (h[:, 0] < cx0 + cell_m) & (h[:, 1] >= cy0) & (h[:, 1] < cy0 + cell_m)]
            # ACLED's coverage of the city was patchier before the first date: only PRE_REPORTED of
            # the riots that happened then were recorded (a planted reporting bias)
            draws.append(("Riots", by_date[k]["rate"].iat[c] * years * reported, d0, d1, spots))
            for et, lr in rates[k].items():
                draws.append((et, float(np.exp(lr[c])) * years, d0, d1, spots))
        for et, mean, d0, d1, spots in draws:
            n = rng.poisson(mean)
            if n == 0 or d1 <= d0:
                continue
            days = rng.integers(0, (d1 - d0).days, size=n)
            use_spot = (rng.random(n) < 0.6) & (len(spots) > 0) & (et in ("Riots", "Protests"))
            px = cx0 + rng.uniform(0, cell_m, n)
            py = cy0 + rng.uniform(0, cell_m, n)
            if use_spot.any():
                s = spots[rng.integers(0, len(spots), use_spot.sum())]
                px[use_spot] = np.clip(s[:, 0] + rng.normal(0, 40, len(s)), cx0, cx0 + cell_m - 1)
                py[use_spot] = np.clip(s[:, 1] + rng.normal(0, 40, len(s)), cy0, cy0 + cell_m - 1)
            for i in range(n):
                rows.append((et, d0 + dt.timedelta(days=int(days[i])), x0 + px[i], y1 - py[i]))
    ev = pd.DataFrame(rows, columns=["event_type", "date", "x", "y"]).sort_values(["date", "x"], kind="stable")
    ev = ev.reset_index(drop=True)
    return _to_acled(rng, ev, wards_utm, x0, y1, layout, epsg)


def _to_acled(rng, ev: pd.DataFrame, wards, x0, y1, layout, epsg) -> pd.DataFrame:
    n = len(ev)
    import geopandas as gpd
    import shapely

    pts = gpd.GeoDataFrame(geometry=shapely.points(ev["x"], ev["y"]), crs=f"EPSG:{epsg}")
    joined = gpd.sjoin(pts, wards[["ward_name", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    ward = joined["ward_name"].fillna("Ward 01").to_numpy()
    geo_p = rng.choice([1, 2, 3], size=n, p=[0.985, 0.01, 0.005])
    time_p = rng.choice([1, 2, 3], size=n, p=[0.88, 0.09, 0.03])
    x, y = ev["x"].to_numpy().copy(), ev["y"].to_numpy().copy()
    cent = wards.set_index("ward_name").geometry.representative_point()
    two = geo_p == 2
    x[two] = cent.loc[ward[two]].x.to_numpy()
    y[two] = cent.loc[ward[two]].y.to_numpy()
    three = geo_p == 3
    x[three] = x0 + layout.centre[0]
    y[three] = y1 - layout.centre[1]
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
    dates = pd.to_datetime(ev["date"])
    dates = dates.where(time_p != 2, dates - pd.to_timedelta(dates.dt.day_of_week, unit="D"))
    dates = dates.where(time_p != 3, dates.dt.to_period("M").dt.to_timestamp() + pd.Timedelta(days=14))
    et = ev["event_type"].to_numpy()
    sub, dis, a1, i1, a2, i2, fat, tags, notes = ([] for _ in range(9))
    for k in range(n):
        subs, disorder, actor1, inter1, actor2, inter2 = _TYPES[et[k]]
        names, probs = zip(*subs)
        s = names[rng.choice(len(names), p=probs)]
        sub.append(s)
        dis.append(disorder)
        a1.append(actor1)
        i1.append(inter1)
        a2.append(actor2)
        i2.append(inter2)
        f = {"Riots": rng.poisson(0.08), "Violence against civilians": 1 + rng.poisson(0.3),
             "Battles": rng.poisson(1.5), "Explosions/Remote violence": rng.poisson(0.8)}.get(et[k], 0)
        fat.append(int(f))
        crowd = _crowd_tag(rng) if et[k] in ("Riots", "Protests") else ""
        tags.append(crowd)
        verb = {"Riots": "rioters clashed and damaged property", "Protests": "residents demonstrated peacefully"}.get(
            et[k], et[k].lower())
        notes.append(f"On {dates.iloc[k]:%d %B %Y}, in {ward[k]} (Synth City), {verb}. Synthetic event generated by riotvit.")
    inter = np.array([10 * min(a, b) + max(a, b) if b else 10 * a for a, b in zip(i1, i2)])
    ts = (dates + pd.Timedelta(days=3)).astype("int64") // 10**9
    out = pd.DataFrame(
        {
            "event_id_cnty": [f"SYN{k + 1}" for k in range(n)],
            "event_date": dates.dt.strftime("%Y-%m-%d"),
            "year": dates.dt.year,
            "time_precision": time_p,
            "disorder_type": dis,
            "event_type": et,
            "sub_event_type": sub,
            "actor1": a1,
            "assoc_actor_1": "",
            "inter1": i1,
            "actor2": a2,
            "assoc_actor_2": "",
            "inter2": i2,
            "interaction": inter,
            "civilian_targeting": np.where(np.array(i2) == 7, "Civilian targeting", ""),
            "iso": ISO,
            "region": REGION,
            "country": COUNTRY,
            "admin1": "Synth Province",
            "admin2": "Synth City",
            "admin3": ward,
            "location": ward,
            "latitude": np.round(lat, 4),
            "longitude": np.round(lon, 4),
            "geo_precision": geo_p,
            "source": "Synthetic Daily",
            "source_scale": "National",
            "notes": notes,
            "fatalities": fat,
            "tags": tags,
            "timestamp": ts,
        }
    )
    return out[list(ACLED_COLUMNS)]


def _crowd_tag(rng) -> str:
    u = rng.random()
    if u < 0.6:
        return "crowd size=no report"
    if u < 0.75:
        return f"crowd size=around {int(rng.choice([30, 50, 80, 150, 200, 300, 500]))}"
    if u < 0.85:
        return "crowd size=hundreds"
    if u < 0.93:
        return "crowd size=dozens"
    return "crowd size=several thousand"
