"""Typed, canonical columns from the text cells of an ACLED export.

Column names are matched by key (case, spaces, underscores ignored; legacy ``ALLY_ACTOR_1``
accepted); values are converted once per distinct value where they repeat (types, codes) and
with one vectorised cast where they do not (coordinates). What was interpreted goes into a
:class:`Findings` (the :class:`~riotvit.join.events.acled.AcledReport`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from riotvit.errors import EventsError
from riotvit.join.events.vocab import (
    ACLED_COLUMNS,
    COLUMN_ALIASES,
    DISORDER_TYPES,
    EVENT_TYPES,
    LEGACY_EVENT_TYPES,
    REQUIRED_COLUMNS,
    RIOTS_PROTESTS,
    SUB_EVENT_TYPES,
    UNKNOWN,
    key,
    match_vocab,
    parse_inter,
    parse_interaction,
    split_riots_protests,
    to_numbers,
)


class Findings(Protocol):
    """Where interpretations are recorded (an ``AcledReport``)."""

    assumptions: list[str]
    unknown: dict[str, int]
    examples: dict[str, list[str]]


def map_columns(p: Path, raw: list[str]) -> tuple[dict[str, str], list[str], list[str], str]:
    """Match the file's column names to ACLED's.

    Args:
        p: the file (for messages).
        raw: its column names as read.

    Returns:
        ``{file name: ACLED name}``, the ACLED columns missing, the file columns that are not
        ACLED's (or repeat one), and the variant in words.

    Raises:
        EventsError: a required column is missing; names the closest file columns (difflib).
    """
    table = {key(c): c for c in ACLED_COLUMNS} | COLUMN_ALIASES
    mapping: dict[str, str] = {}
    extra: list[str] = []
    for c in map(str, raw):
        canon = table.get(key(c.lstrip("\ufeff")))
        if canon is None or canon in mapping.values():
            extra.append(c)
        else:
            mapping[c] = canon
    missing = [c for c in ACLED_COLUMNS if c not in mapping.values()]
    req = [c for c in REQUIRED_COLUMNS if c in missing]
    if req:
        by_key = {key(x): x for x in extra}
        close = [
            f"'{by_key[hit]}'"
            for c in req
            for hit in difflib.get_close_matches(key(c), list(by_key), n=2, cutoff=0.5)
        ]
        more = " ..." if len(raw) > 8 else ""
        hint = (
            f"closest names in the file: {', '.join(dict.fromkeys(close))}"
            if close
            else f"file columns: {', '.join(map(str, raw[:8]))}{more}"
        )
        raise EventsError(
            f"{p}: missing required ACLED column(s) {', '.join(req)} ({hint}); "
            "rename them to the ACLED names"
        )
    if list(mapping) == list(ACLED_COLUMNS):
        return mapping, missing, extra, "current 31-column export"
    names = list(mapping)
    case = ("upper-case columns" if all(n == n.upper() for n in names)
            else "lower-case columns" if all(n == n.lower() for n in names) else "mixed-case columns")  # fmt: skip
    parts = [case, f"{len(mapping)} of {len(ACLED_COLUMNS)} columns"]
    if any(key(n) in COLUMN_ALIASES for n in names):
        parts.append("legacy column names (ALLY_ACTOR_1/2)")
    order = [c for c in ACLED_COLUMNS if c in mapping.values()]
    if list(mapping.values()) != order:
        parts.append("columns reordered")
    if extra:
        parts.append(f"{len(extra)} extra column(s)")
    return mapping, missing, extra, "older or hand-edited export: " + ", ".join(parts)


def examples(ids: pd.Series, values: pd.Series, mask: pd.Series, n: int) -> list[str]:
    """Up to ``n`` ``"event_id: value"`` strings where ``mask`` is True."""
    idx = np.flatnonzero(mask.to_numpy())[:n]
    return [f"{ids.iloc[i]}: {values.iloc[i]}" for i in idx]


def _has_decimals(s: pd.Series, num: pd.Series) -> bool:
    """True when numbers are written with a decimal point (``2022.0``)."""
    return bool(s[num.notna()].str.contains(".", regex=False).any())


def coords(s: pd.Series) -> tuple[pd.Series, bool]:
    """float64 coordinates; decimal commas (``2,44``) are accepted and reported."""
    num = to_numbers(s)
    comma = num.isna() & s.str.contains(",", regex=False).fillna(False)
    if comma.any():
        num[comma] = to_numbers(s[comma].str.replace(",", ".", regex=False))
    return num, bool(comma.any())


def canonical_types(
    df: pd.DataFrame, ids: pd.Series, rep: Findings, cutoff: float = 0.85, max_examples: int = 3
) -> None:
    """Canonical event_type, sub_event_type and disorder_type, in place.

    Legacy types are mapped (``Riots/Protests`` by :func:`split_riots_protests`), typos and
    case/spacing differences tolerated, unknown values kept as ``Other`` and counted in ``rep``.
    """
    aliases = {k: v[0] for k, v in LEGACY_EVENT_TYPES.items()}
    sub, sub_log = match_vocab(df["sub_event_type"], list(SUB_EVENT_TYPES), cutoff=cutoff)
    raw_event = df["event_type"]
    event, ev_log = match_vocab(
        raw_event, [*EVENT_TYPES, RIOTS_PROTESTS], aliases=aliases, cutoff=cutoff
    )
    # sub-event types implied by legacy battle / territory types
    implied = {key(k): v[1] for k, v in LEGACY_EVENT_TYPES.items() if v[1]}
    codes, uniques = pd.factorize(raw_event)
    legacy_sub = pd.Series(
        np.asarray([implied.get(key(u)) for u in uniques] + [None], dtype=object)[codes],
        index=df.index,
    )
    fill = sub.isna() & legacy_sub.notna()
    if fill.any():
        sub = sub.where(~fill, legacy_sub)
        rep.assumptions.append(
            f"sub_event_type filled from {int(fill.sum())} legacy event types (e.g. 'Battle-No change of territory' -> 'Armed clash')"
        )
    rp = event.eq(RIOTS_PROTESTS).fillna(False)
    if rp.any():
        split = split_riots_protests(rp, sub, df["inter1"], df["actor1"])
        event = event.where(~rp, split)
        n_riots = int(split.eq("Riots").sum())
        rep.assumptions.append(
            f"{int(rp.sum())} legacy 'Riots/Protests' events split: {n_riots} Riots, {int(rp.sum()) - n_riots} "
            "Protests (rule: sub_event_type, else inter1 5 Rioters / 6 Protesters, else actor1 'Rioters ...', else Protests)"
        )
    disorder, dis_log = match_vocab(df["disorder_type"], DISORDER_TYPES, cutoff=cutoff, multi=True)
    for col, values, log in (
        ("event_type", event, ev_log),
        ("sub_event_type", sub, sub_log),
        ("disorder_type", disorder, dis_log),
    ):
        for raw, canon in log.corrected.items():
            if canon != RIOTS_PROTESTS:
                rep.assumptions.append(f"{col} '{raw}' read as '{canon}'")
        if log.n_respelled:
            rep.assumptions.append(
                f"{log.n_respelled} {col} value(s) matched ignoring case/spacing"
            )
        if log.unknown:
            rep.unknown[col] = sum(log.unknown.values())
            bad = df[col].isin(list(log.unknown))
            rep.examples[f"unknown {col}"] = examples(ids, df[col], bad, max_examples)
        df[col] = values
    blank = raw_event.isna()
    if blank.any():
        df.loc[blank, "event_type"] = UNKNOWN
        rep.unknown["event_type"] = rep.unknown.get("event_type", 0) + int(blank.sum())
        rep.examples.setdefault(
            "unknown event_type",
            examples(ids, raw_event.fillna("(blank)"), blank, max_examples),
        )


def canonical_codes(
    df: pd.DataFrame, present: set[str], ids: pd.Series, rep: Findings, max_examples: int = 3
) -> None:
    """Integer columns (years, precisions, actor codes, iso, timestamp) and fatalities, in place.

    Args:
        df: the table, text cells; columns are replaced by Int64 / int64 ones.
        present: columns the file had (missing ones are not reported as decimals).
        ids: event ids, for examples.
        rep: where assumptions, unknown counts and examples go.
        max_examples: examples kept per kind.
    """
    decimal_cols, text_inter = [], []
    for col in (
        "inter1",
        "inter2",
        "interaction",
        "year",
        "time_precision",
        "geo_precision",
        "iso",
        "timestamp",
    ):
        raw = df[col]
        if col in ("inter1", "inter2", "interaction"):
            codes, unknown = (parse_interaction if col == "interaction" else parse_inter)(raw)
            if codes.notna().sum() > to_numbers(raw).notna().sum():
                text_inter.append(col)
        else:
            num = to_numbers(raw)
            codes, unknown = num.where(num % 1 == 0).astype("Int64"), {}
        if unknown:
            rep.unknown[col] = sum(unknown.values())
            rep.examples[f"unknown {col}"] = examples(
                ids, raw, raw.isin(list(unknown)), max_examples
            )
        if col in present and _has_decimals(raw, codes):
            decimal_cols.append(col)
        df[col] = codes
    no_actor2 = df["inter2"].isna() & df["actor2"].isna()
    if "inter2" in present and no_actor2.any():
        df.loc[no_actor2, "inter2"] = 0
        rep.assumptions.append(
            f"inter2 blank with no actor2 in {int(no_actor2.sum())} rows; read as 0 (no second actor)"
        )
    if decimal_cols:
        rep.assumptions.append(
            f"codes stored as decimals (e.g. 2022.0) read as integers: {', '.join(decimal_cols)}"
        )
    if text_inter:
        rep.assumptions.append(
            f"{', '.join(text_inter)} given as actor-category names (e.g. 'Rioters'); mapped to ACLED codes 1-8"
        )
    fat = to_numbers(df["fatalities"])
    raw = df["fatalities"]
    blank = raw.isna() | raw.astype("string").str.strip().fillna("").eq("")
    text = fat.isna() & ~blank  # "many", "unknown", "10+": not silently 0
    n_blank, n_text, n_neg = int((fat.isna() & blank).sum()), int(text.sum()), int((fat < 0).sum())
    if n_blank:
        rep.assumptions.append(f"fatalities missing in {n_blank} rows; read as 0")
    if n_text:
        rep.unknown["fatalities"] = rep.unknown.get("fatalities", 0) + n_text
        rep.examples["unknown fatalities"] = examples(ids, raw, text, max_examples)
        rep.assumptions.append(f"fatalities not a number in {n_text} rows (e.g. {raw[text].iloc[0]!r}); "
                               "read as 0, so fatality targets undercount them; fix the file to count them")
    if n_neg:
        rep.assumptions.append(f"negative fatalities in {n_neg} rows; read as 0")
    df["fatalities"] = fat.fillna(0).clip(lower=0).round().astype("int64")
