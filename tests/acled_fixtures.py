"""Synthetic ACLED-like exports in every variant users hold (seeded; fictional actors and places).

Nothing here comes from real ACLED rows: the countries (Freedonia, Sylvania, Genovia,
Zubrowka), actors, places, sources and notes are invented, and values are drawn from seeded
random generators. ``make_events`` builds a current-format table of text cells (as an export
holds them); ``write_variant`` writes it the way one kind of export looks on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from riotvit.join.events.acled import ACLED_COLUMNS

COUNTRIES = (  # name, iso3, numeric iso, region, centre lat, centre lon
    ("Freedonia", "FRD", 901, "Eastern Africa", 4.5, 31.0),
    ("Sylvania", "SYL", 902, "Europe", 46.0, 18.0),
    ("Genovia", "GNV", 903, "Europe", 43.7, 7.4),
    ("Zubrowka", "ZBK", 904, "Europe", 50.0, 22.0),
)
PLACES = (
    "Port Aster",
    "Velmora",
    "Kestrel Bay",
    "Old Dunmere",
    "Saint-Élise-sur-Mer",
    "Harrowgate",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip

# event type, sub-event type, disorder type, inter1, inter2, weight
EVENT_MIX = (
    ("Protests", "Peaceful protest", "Demonstrations", 6, 0, 40),
    ("Protests", "Protest with intervention", "Demonstrations", 6, 1, 4),
    (
        "Protests",
        "Excessive force against protesters",
        "Political violence; Demonstrations",
        1,
        6,
        1,
    ),
    ("Riots", "Violent demonstration", "Demonstrations", 5, 1, 3),
    ("Riots", "Mob violence", "Political violence", 5, 7, 3),
    ("Battles", "Armed clash", "Political violence", 1, 2, 10),
    (
        "Explosions/Remote violence",
        "Shelling/artillery/missile attack",
        "Political violence",
        1,
        2,
        8,
    ),
    ("Explosions/Remote violence", "Air/drone strike", "Political violence", 1, 2, 3),
    ("Violence against civilians", "Attack", "Political violence", 3, 7, 10),
    ("Violence against civilians", "Abduction/forced disappearance", "Political violence", 2, 7, 2),
    ("Strategic developments", "Looting/property destruction", "Strategic developments", 5, 0, 3),
    ("Strategic developments", "Arrests", "Strategic developments", 1, 6, 3),
)
ACTOR_NAMES = {1: "Military Forces of {c} (2019-)", 2: "{c} Liberation Front", 3: "Blue Scarf Militia ({c})",
               5: "Rioters ({c})", 6: "Protesters ({c})", 7: "Civilians ({c})"}  # fmt: skip

SIZE_TEXTS: dict[str, tuple[int, float]] = {
    "no report": (0, np.nan), "around 200": (2, 200.0), "dozens": (1, np.nan), "hundreds": (2, np.nan),
    "around 50": (1, 50.0), "between 200 and 300": (2, 250.0), "several thousand": (3, np.nan),
    "over 5000": (3, 5000.0), "1,500": (3, 1500.0), "a few": (1, np.nan), "tens of thousands": (3, np.nan),
}  # fmt: skip
"""Crowd-size texts the generator uses, with the class and number they must parse to."""

INTER_NAMES = {0: "", 1: "State forces", 2: "Rebel groups", 3: "Political militias", 4: "Identity militias",
               5: "Rioters", 6: "Protesters", 7: "Civilians", 8: "External/Other forces"}  # fmt: skip
LEGACY_TYPES = {"Protests": "Riots/Protests", "Riots": "Riots/Protests", "Battles": "Battle-No change of territory",
                "Explosions/Remote violence": "Remote violence", "Strategic developments": "Strategic development"}  # fmt: skip
DATE_VARIANTS = {
    "date_iso": "%Y-%m-%d",
    "date_long": "%d %B %Y",
    "date_dmy2": "%d-%m-%y",
    "date_slash": "%d/%m/%Y",
}
VARIANTS = (
    "current",
    "bom",
    "xlsx",
    "upper_old",
    *DATE_VARIANTS,
    "float_codes",
    "text_inter",
    "legacy",
    "excel_eu",
    "typos",
)


def make_events(
    n: int = 200, seed: int = 0, size_in: str = "tags", start: str = "2022-01-01", days: int = 181
) -> pd.DataFrame:
    """A current 31-column export as text cells, one row per synthetic event.

    Args:
        n: number of events.
        seed: random seed.
        size_in: where demonstrations state their crowd size: ``tags`` (current) or ``notes``
            (older ``[size=...]``).
        start: first event date.
        days: dates are drawn uniformly from ``days`` days after ``start``.
    """
    rng = np.random.default_rng(seed)
    mix = np.array([m[5] for m in EVENT_MIX], dtype=float)
    k = rng.choice(len(EVENT_MIX), size=n, p=mix / mix.sum())
    c = rng.integers(0, len(COUNTRIES), n)
    col = lambda j, idx: np.array([row[j] for row in EVENT_MIX], dtype=object)[idx]  # noqa: E731
    cty = lambda j: np.array([row[j] for row in COUNTRIES], dtype=object)[c]  # noqa: E731
    country = pd.Series(cty(0), dtype=object)
    dates = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    inter1, inter2 = col(3, k).astype(int), col(4, k).astype(int)
    interaction = np.where(
        inter2 == 0, inter1 * 10, np.minimum(inter1, inter2) * 10 + np.maximum(inter1, inter2)
    )

    def actor(codes: np.ndarray) -> pd.Series:
        names = pd.Series([ACTOR_NAMES.get(int(x), "") for x in codes], dtype=object)
        return pd.Series(
            [t.format(c=cn) if t else "" for t, cn in zip(names, country, strict=True)],
            dtype=object,
        )

    demo = np.isin(col(0, k), ["Protests", "Riots"])
    size = np.array(list(SIZE_TEXTS), dtype=object)[rng.integers(0, len(SIZE_TEXTS), n)]
    place = np.array(PLACES, dtype=object)[rng.integers(0, len(PLACES), n)]
    day_txt = (
        pd.Series(dates.day.astype(str))
        + " "
        + pd.Series(np.array(MONTHS, dtype=object)[dates.month - 1])
        + " "
        + pd.Series(dates.year.astype(str))
    )
    notes = (
        "On "
        + day_txt
        + ", an invented group met in "
        + pd.Series(place)
        + " ("
        + country
        + ") over a fictional dispute."
    )
    size_note = pd.Series(np.where(demo, " [size=" + pd.Series(size) + "]", ""))
    df = pd.DataFrame({
        "event_id_cnty": pd.Series(cty(1)) + pd.Series(np.arange(1, n + 1).astype(str)),
        "event_date": dates.strftime("%Y-%m-%d"),
        "year": dates.year.astype(str),
        "time_precision": rng.choice([1, 2, 3], n, p=[0.9, 0.08, 0.02]).astype(str),
        "disorder_type": col(2, k), "event_type": col(0, k), "sub_event_type": col(1, k),
        "actor1": actor(inter1), "assoc_actor_1": np.where(rng.random(n) < 0.2, "Teachers (" + country + ")", ""),
        "inter1": inter1.astype(str), "actor2": actor(inter2), "assoc_actor_2": "",
        "inter2": inter2.astype(str), "interaction": interaction.astype(str),
        "civilian_targeting": np.where(inter2 == 7, "Civilian targeting", ""),
        "iso": cty(2).astype(str), "region": cty(3), "country": country,
        "admin1": "North " + country, "admin2": pd.Series(place) + " District", "admin3": "",
        "location": place,
        "latitude": np.round(cty(4).astype(float) + rng.uniform(-1, 1, n), 4).astype(str),
        "longitude": np.round(cty(5).astype(float) + rng.uniform(-1, 1, n), 4).astype(str),
        "geo_precision": rng.choice([1, 2, 3], n, p=[0.75, 0.2, 0.05]).astype(str),
        "source": "The " + country + " Herald", "source_scale": "National",
        "notes": notes + (size_note if size_in == "notes" else ""),
        "fatalities": np.where(np.isin(col(0, k), ["Battles", "Explosions/Remote violence"]), rng.poisson(2, n), 0).astype(str),
        "tags": np.where(demo & (size_in == "tags"), "crowd size=" + pd.Series(size), ""),
        "timestamp": (1_660_000_000 + rng.integers(0, 10_000_000, n)).astype(str),
    })  # fmt: skip
    return df[list(ACLED_COLUMNS)].astype(object).where(lambda d: d != "", None)


BAD_ROWS = {  # event id -> (column overrides, expected skip reason)
    "BAD-NULL": ({"latitude": "0", "longitude": "0"}, "null island (0, 0)"),
    "BAD-LAT": ({"latitude": "95.5"}, "latitude out of range"),
    "BAD-LON": ({"longitude": "-200"}, "longitude out of range"),
    "BAD-NOLAT": ({"latitude": None}, "missing coordinates"),
    "BAD-NOLON": ({"longitude": "unknown"}, "missing coordinates"),
    "BAD-NODATE": ({"event_date": None}, "missing date"),
    "BAD-DATE1": ({"event_date": "2022-02-31"}, "unparseable date"),
    "BAD-DATE2": ({"event_date": "sometime in spring"}, "unparseable date"),
}


def with_bad_rows(df: pd.DataFrame, duplicate: bool = True) -> pd.DataFrame:
    """Append one bad row per ``BAD_ROWS`` entry (and a duplicate id) to a text export."""
    rows = []
    for eid, (over, _) in BAD_ROWS.items():
        r = df.iloc[0].copy()
        r["event_id_cnty"] = eid
        for colname, value in over.items():
            r[colname] = value
        rows.append(r)
    if duplicate:
        rows.append(df.iloc[1].copy())
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers and dates as dates (what an Excel export holds)."""
    out = df.copy()
    for colname in (
        "year",
        "time_precision",
        "inter1",
        "inter2",
        "interaction",
        "iso",
        "geo_precision",
        "fatalities",
        "timestamp",
    ):
        out[colname] = pd.to_numeric(out[colname]).astype("Int64")
    for colname in ("latitude", "longitude"):
        out[colname] = pd.to_numeric(out[colname])
    out["event_date"] = pd.to_datetime(out["event_date"])
    return out


def write_variant(df: pd.DataFrame, path: str | Path, variant: str) -> Path:
    """Write ``df`` (from :func:`make_events`) as one kind of ACLED export.

    Variants: ``current`` (plain CSV), ``bom`` (UTF-8 BOM), ``xlsx`` (Excel with numeric and
    date cells), ``upper_old`` (upper-case names, no tags/civilian_targeting/disorder_type/
    timestamp, dates ``16 February 2023``), ``date_*`` (dates re-written in one format),
    ``float_codes`` (``2022.0``), ``text_inter`` (actor categories as names, interaction as
    ``Rioters-Civilians``), ``legacy`` (pre-2019: ALLY_ACTOR_1, legacy types, no sub_event_type
    and disorder_type, extra GWNO column), ``excel_eu`` (``;``, decimal commas, cp1252) and
    ``typos`` (case/spacing/typos in types, ``Demostrations``, one unknown type).
    """
    path = Path(path)
    d = df.copy()
    dates = pd.to_datetime(d["event_date"], format="%Y-%m-%d", errors="coerce")
    ok = dates.notna()
    if variant == "bom":
        d.to_csv(path, index=False, encoding="utf-8-sig")
    elif variant == "xlsx":
        _numeric(d).to_excel(path, index=False, engine="openpyxl")
    elif variant == "upper_old":
        d.loc[ok, "event_date"] = dates[ok].dt.strftime("%d %B %Y").str.lstrip("0")
        d = d.drop(columns=["tags", "civilian_targeting", "disorder_type", "timestamp"])
        d.columns = [c.upper() for c in d.columns]
        d.to_csv(path, index=False)
    elif variant in DATE_VARIANTS:
        d.loc[ok, "event_date"] = dates[ok].dt.strftime(DATE_VARIANTS[variant])
        d.to_csv(path, index=False)
    elif variant == "float_codes":
        for colname in (
            "year",
            "time_precision",
            "inter1",
            "inter2",
            "interaction",
            "iso",
            "geo_precision",
            "fatalities",
            "timestamp",
        ):
            d[colname] = d[colname].where(d[colname].isna(), d[colname].astype(str) + ".0")
        d.to_csv(path, index=False)
    elif variant == "text_inter":
        for colname in ("inter1", "inter2"):
            d[colname] = d[colname].map(lambda v: INTER_NAMES[int(v)] or None)
        d["interaction"] = [f"{INTER_NAMES[int(a)]}-{INTER_NAMES[int(b)]}" if int(b) else f"{INTER_NAMES[int(a)]} only"
                            for a, b in zip(df["inter1"], df["inter2"], strict=True)]  # fmt: skip
        d.to_csv(path, index=False)
    elif variant == "legacy":
        d["event_type"] = d["event_type"].map(lambda t: LEGACY_TYPES.get(t, t))
        d = d.drop(
            columns=[
                "sub_event_type",
                "disorder_type",
                "civilian_targeting",
                "tags",
                "timestamp",
                "iso",
                "region",
                "admin3",
                "source_scale",
            ]
        )
        d = d.rename(columns={"assoc_actor_1": "ally_actor_1", "assoc_actor_2": "ally_actor_2"})
        d.insert(0, "GWNO", "999")
        d.columns = [c.upper() for c in d.columns]
        d.to_csv(path, index=False)
    elif variant == "excel_eu":
        for colname in ("latitude", "longitude"):
            d[colname] = d[colname].str.replace(".", ",", regex=False)
        d.to_csv(path, index=False, sep=";", encoding="cp1252")
    elif variant == "typos":
        swap = {"Protests": "PROTESTS", "Explosions/Remote violence": "explosions / remote violence",
                "Violence against civilians": "Violence againts civilians", "Strategic developments": "Strategic development"}  # fmt: skip
        d["event_type"] = d["event_type"].map(lambda t: swap.get(t, t))
        d["disorder_type"] = d["disorder_type"].str.replace("Demonstrations", "Demostrations")
        d["sub_event_type"] = d["sub_event_type"].str.replace(
            "Peaceful protest", "peaceful  protest "
        )
        d.loc[d.index[:2], "event_type"] = "Flash mob"
        d.to_csv(path, index=False)
    elif variant == "current":
        d.to_csv(path, index=False)
    else:
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    return path


def write_all(folder: str | Path, n: int = 120, seed: int = 0) -> dict[str, Path]:
    """Every variant of one seeded table, as ``{variant: path}`` under ``folder``."""
    folder = Path(folder)
    out = {}
    for v in VARIANTS:
        df = make_events(n, seed, size_in="notes" if v in ("upper_old", "legacy") else "tags")
        out[v] = write_variant(df, folder / f"acled_{v}.{'xlsx' if v == 'xlsx' else 'csv'}", v)
    return out
