"""ACLED's vocabulary: export columns, event types, actor codes, and tolerant matching.

Values are matched on a *key*: lower case with everything but letters and digits removed, so
``"Explosions / remote violence"`` and ``"EXPLOSIONS/REMOTE VIOLENCE"`` are the same value. Typos
seen in real exports (``Demostrations``) are matched with ``difflib`` above a similarity cutoff.
Legacy (pre-2019) event types map to current ones by a fixed table. Matching runs once per
*distinct* value (``pd.factorize``), never once per row.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ACLED_COLUMNS: tuple[str, ...] = (
    "event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type",
    "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2",
    "interaction", "civilian_targeting", "iso", "region", "country", "admin1", "admin2", "admin3",
    "location", "latitude", "longitude", "geo_precision", "source", "source_scale", "notes",
    "fatalities", "tags", "timestamp",
)  # fmt: skip
"""The 31 columns of the current ACLED export, in export order."""

REQUIRED_COLUMNS: tuple[str, ...] = ("event_date", "event_type", "latitude", "longitude")
"""Columns without which a file cannot give labels."""

OPTIONAL_COLUMNS: tuple[str, ...] = (
    "actor2", "assoc_actor_2", "tags", "civilian_targeting", "disorder_type", "timestamp",
)  # fmt: skip
"""Columns that older or trimmed exports commonly lack (filled with NA; listed in the report)."""

COLUMN_ALIASES: dict[str, str] = {"allyactor1": "assoc_actor_1", "allyactor2": "assoc_actor_2"}
"""Pre-2019 names (by key) of current columns."""

EVENT_TYPES: tuple[str, ...] = (
    "Battles", "Protests", "Riots", "Explosions/Remote violence", "Violence against civilians",
    "Strategic developments",
)  # fmt: skip
"""The six current ACLED event types."""

SUB_EVENT_TYPES: dict[str, str] = {
    "Violent demonstration": "Riots", "Mob violence": "Riots",
    "Peaceful protest": "Protests", "Protest with intervention": "Protests",
    "Excessive force against protesters": "Protests",
    "Armed clash": "Battles", "Government regains territory": "Battles",
    "Non-state actor overtakes territory": "Battles",
    "Chemical weapon": "Explosions/Remote violence", "Air/drone strike": "Explosions/Remote violence",
    "Suicide bomb": "Explosions/Remote violence",
    "Shelling/artillery/missile attack": "Explosions/Remote violence",
    "Remote explosive/landmine/IED": "Explosions/Remote violence",
    "Grenade": "Explosions/Remote violence",
    "Sexual violence": "Violence against civilians", "Attack": "Violence against civilians",
    "Abduction/forced disappearance": "Violence against civilians",
    "Agreement": "Strategic developments", "Arrests": "Strategic developments",
    "Change to group/activity": "Strategic developments",
    "Disrupted weapons use": "Strategic developments",
    "Headquarters or base established": "Strategic developments",
    "Looting/property destruction": "Strategic developments",
    "Non-violent transfer of territory": "Strategic developments",
    "Other": "Strategic developments",
}  # fmt: skip
"""The 25 current sub-event types and the event type each belongs to."""

DISORDER_TYPES: tuple[str, ...] = ("Political violence", "Demonstrations", "Strategic developments")
"""Current disorder types; a value may combine several, separated by ``;``."""

UNKNOWN = "Other"
"""What an unrecognised event_type / sub_event_type / disorder_type becomes (row kept, counted)."""

RIOTS_PROTESTS = "Riots/Protests"
"""The one legacy type that splits in two; see :func:`split_riots_protests`."""

LEGACY_EVENT_TYPES: dict[str, tuple[str, str | None]] = {
    "Remote violence": ("Explosions/Remote violence", None),
    "Battle-No change of territory": ("Battles", "Armed clash"),
    "Battle-Government regains territory": ("Battles", "Government regains territory"),
    "Battle-Non-state actor overtakes territory": ("Battles", "Non-state actor overtakes territory"),
    "Strategic development": ("Strategic developments", None),
    "Non-violent transfer of territory": ("Strategic developments", "Non-violent transfer of territory"),
    "Headquarters or base established": ("Strategic developments", "Headquarters or base established"),
}  # fmt: skip
"""Pre-2019 event types that map unambiguously: legacy -> (event_type, implied sub_event_type)."""

INTER_CODES: dict[str, int] = {
    "State forces": 1, "Rebel groups": 2, "Political militias": 3, "Identity militias": 4,
    "Communal militias": 4, "Ethnic militias": 4, "Rioters": 5, "Protesters": 6, "Civilians": 7,
    "External/Other forces": 8, "Other forces": 8, "External forces": 8,
}  # fmt: skip
"""ACLED actor categories (inter1/inter2) by name; 0 means 'no second actor'."""


def to_numbers(s: pd.Series) -> pd.Series:
    """float64 from text cells (``5``, ``5.0``, `` 2022``), NaN where blank or not a number.

    Uses one Arrow cast when every cell is a clean number, else ``pd.to_numeric`` once per
    distinct value.
    """
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("float64")
    s = s.astype("str")
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pc.cast(pa.array(s.array), pa.float64())
        return pd.Series(arr.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
    except Exception:  # a value Arrow cannot cast (text, spaces): the tolerant path
        pass
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    vals = pd.to_numeric(pd.Series(np.asarray(uniques, dtype=object)), errors="coerce").to_numpy(
        dtype="float64"
    )
    return pd.Series(np.append(vals, np.nan)[codes], index=s.index, dtype="float64")


def key(value: object) -> str:
    """The matching key of a value: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", str(value).lower())


@dataclass
class MatchLog:
    """What tolerant matching did to one column (by distinct raw value).

    Attributes:
        corrected: raw value -> canonical value, for typos and legacy names (not mere case or
            spacing differences, which are only counted in ``n_respelled``).
        unknown: raw value -> number of rows, for values that matched nothing.
        n_respelled: distinct values that differed from the canonical one only in case/spacing.
    """

    corrected: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    n_respelled: int = 0


def _match_one(raw: str, table: Mapping[str, str], cutoff: float) -> tuple[str | None, bool]:
    """Match one distinct value by key, then by difflib; returns (canonical, was_typo)."""
    k = key(raw)
    if k in table:
        return table[k], False
    close = difflib.get_close_matches(k, list(table), n=1, cutoff=cutoff) if k else []
    return (table[close[0]], True) if close else (None, False)


def match_vocab(
    values: pd.Series,
    vocab: Sequence[str],
    *,
    aliases: Mapping[str, str] | None = None,
    cutoff: float = 0.85,
    multi: bool = False,
    max_fuzzy: int = 5000,
) -> tuple[pd.Series, MatchLog]:
    """Map raw values onto ``vocab``, tolerating case, spacing, punctuation and typos.

    Args:
        values: raw strings (NA allowed; NA stays NA).
        vocab: the canonical values.
        aliases: extra raw values (any spelling) -> canonical value, tried before fuzzy matching.
        cutoff: difflib similarity (0..1) a typo must reach to be accepted.
        multi: values may list several entries separated by ``;`` (disorder_type).
        max_fuzzy: distinct values beyond this many are not fuzzy-matched (keeps garbage fast).

    Returns:
        The canonical values (``UNKNOWN`` where nothing matched) and a :class:`MatchLog`.
    """
    table = {key(v): v for v in vocab}
    for raw, canon in (aliases or {}).items():
        table[key(raw)] = canon
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    log = MatchLog()
    out: list[str] = []
    for i, raw in enumerate(uniques):
        raw = str(raw).strip()
        parts = [p.strip() for p in raw.split(";") if p.strip()] if multi else [raw]
        canon_parts = []
        for part in parts or [raw]:
            if i >= max_fuzzy and key(part) not in table:
                canon, typo = None, False
            else:
                canon, typo = _match_one(part, table, cutoff)
            if canon is None:
                log.unknown[raw] = int(counts[i])
                canon = UNKNOWN
            elif typo or (key(part) != key(canon)):
                log.corrected[part] = canon
            elif part != canon:
                log.n_respelled += 1
            canon_parts.append(canon)
        out.append("; ".join(dict.fromkeys(canon_parts)))
    mapped = np.asarray(out + [None], dtype=object)[codes]  # code -1 (NA) -> None
    return pd.Series(mapped, index=values.index, dtype="str"), log


def split_riots_protests(
    legacy: pd.Series, sub_event_type: pd.Series, inter1: pd.Series, actor1: pd.Series
) -> pd.Series:
    """Resolve the legacy ``Riots/Protests`` type into ``Riots`` or ``Protests``.

    The rule, in order: a current sub_event_type decides (Violent demonstration / Mob violence ->
    Riots, protest sub-types -> Protests); else inter1 = 5 (Rioters) -> Riots and 6 (Protesters)
    -> Protests; else an actor1 starting with "Rioters" -> Riots; else Protests.

    Args:
        legacy: True where the raw event_type was ``Riots/Protests``.
        sub_event_type: canonical sub-event types (NA allowed).
        inter1: numeric actor codes (NA allowed).
        actor1: actor names (NA allowed).

    Returns:
        ``Riots`` / ``Protests`` where ``legacy`` is True, NA elsewhere.
    """
    parent = sub_event_type.map(SUB_EVENT_TYPES)
    riots = parent.eq("Riots").fillna(False)
    decided = parent.isin(["Riots", "Protests"])
    by_inter = inter1.isin([5, 6]) & ~decided
    riots |= by_inter & inter1.eq(5).fillna(False)
    rest = ~decided & ~by_inter
    riots |= rest & actor1.astype("str").str.strip().str.lower().str.startswith("rioters").fillna(
        False
    )
    out = pd.Series(np.where(riots, "Riots", "Protests"), index=legacy.index, dtype="str")
    return out.where(legacy)


def parse_inter(values: pd.Series) -> tuple[pd.Series, dict[str, int]]:
    """Actor category codes from numbers (``5``, ``5.0``) or names (``Rioters``).

    Returns:
        Int64 codes 0..8 (NA where blank or unrecognised) and raw value -> rows for unrecognised.
    """
    num = to_numbers(values)
    is_text = num.isna() & values.notna()
    codes, unknown = num, {}
    if is_text.any():
        names, log = match_vocab(values[is_text], list(INTER_CODES), cutoff=0.85)
        codes = num.copy()
        names = names.mask(values[is_text].str.strip().isin(list(log.unknown)))
        codes[is_text] = names.map(INTER_CODES).astype("float64")
        unknown = dict(log.unknown)
    bad = codes.notna() & ((codes % 1 != 0) | (codes < 0) | (codes > 8))
    for raw, n in values[bad].value_counts().head(20).items():
        unknown[str(raw)] = int(n)
    return codes.mask(bad).astype("Int64"), unknown


def parse_interaction(values: pd.Series) -> tuple[pd.Series, dict[str, int]]:
    """ACLED interaction codes from numbers (``57``) or text (``Rioters-Civilians``, ``Protesters only``).

    The numeric code is the two actor codes with the smaller first (``57``); a sole actor ``c``
    gives ``c*10`` (``60``), as in ACLED's numeric exports.
    """
    num = to_numbers(values)
    is_text = num.isna() & values.notna()
    if not is_text.any():
        bad = num.notna() & ((num % 1 != 0) | (num < 0) | (num > 88))
        return num.mask(bad).astype("Int64"), {
            str(k): int(n) for k, n in values[bad].value_counts().head(20).items()
        }
    codes, uniques = pd.factorize(values.where(is_text))
    table = {key(k): v for k, v in INTER_CODES.items()}
    decoded: list[float] = []
    unknown: dict[str, int] = {}
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    for i, raw in enumerate(uniques):
        text = re.sub(r"\bonly\b", "", str(raw), flags=re.I)
        parts = [key(p) for p in re.split(r"\s*[-–;,]\s*|\s+vs\.?\s+|\s+and\s+", text) if key(p)]
        found = [table.get(p) or table.get(p.rstrip("s")) or table.get(p + "s") for p in parts]
        if not parts or any(f is None for f in found) or len(found) > 2:
            unknown[str(raw)] = int(counts[i])
            decoded.append(np.nan)
            continue
        a, b = sorted(found) if len(found) == 2 else (found[0], 0)
        decoded.append(float(a * 10 + b) if b else float(a * 10))
    from_text = np.asarray(decoded + [np.nan])[codes]
    out = num.where(num.notna(), from_text)
    bad = out.notna() & ((out % 1 != 0) | (out < 0) | (out > 88))
    for raw, n in values[bad].value_counts().head(20).items():
        unknown[str(raw)] = int(n)
    return out.mask(bad).astype("Int64"), unknown
