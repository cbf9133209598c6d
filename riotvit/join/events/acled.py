"""Read any ACLED export users hold, say which variant it is and what was assumed.

Handles the current 31-column export (CSV with or without a UTF-8 BOM, or .xlsx), older and
hand-edited exports (upper-case or legacy column names, missing optional columns, dates in
several formats, codes as decimals or names, legacy event types, ``;`` delimiters, cp1252), and
returns one canonical table plus an :class:`AcledReport`. Rows with unusable dates or
coordinates are skipped and counted by reason with examples, never silently.

Everything is vectorised: columns are read as strings, repeated values (dates, types, codes)
are parsed once per distinct value with ``pd.factorize``, and dates use one explicit format
detected from the distinct values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riotvit.config import StrictModel
from riotvit.errors import EventsError
from riotvit.join.events.columns import (
    canonical_codes,
    canonical_types,
    coords,
    examples,
    map_columns,
)
from riotvit.join.events.crowd import crowd_columns
from riotvit.join.events.dates import DATE_FORMATS, DateParse, describe_format, parse_dates
from riotvit.join.events.files import BOM_NOTE, read_table
from riotvit.join.events.vocab import ACLED_COLUMNS, EVENT_TYPES, OPTIONAL_COLUMNS

__all__ = ["ACLED_COLUMNS", "EVENT_TYPES", "AcledConfig", "AcledReport", "read_acled"]

INT_COLUMNS = (
    "year",
    "time_precision",
    "inter1",
    "inter2",
    "interaction",
    "iso",
    "geo_precision",
    "timestamp",
)
"""Columns returned as nullable integers (Int64)."""

SKIP_REASONS = (
    "missing date", "unparseable date", "missing coordinates", "latitude out of range",
    "longitude out of range", "null island (0, 0)", "duplicate event_id_cnty",
)  # fmt: skip
"""Why a row can be skipped; a row is counted under the first reason that applies."""


class AcledConfig(StrictModel):
    """How to read an ACLED export and turn precision codes into uncertainty."""

    geo_precision_radius_m: dict[int, float] = Field(
        default={1: 0.0, 2: 2000.0, 3: 25000.0},
        description="Positional uncertainty radius (metres) per ACLED geo_precision level "
        "(1 = exact place, 2 = near the place, 3 = only the admin region is known).",
    )
    time_precision_days: dict[int, int] = Field(
        default={1: 0, 2: 7, 3: 30},
        description="Date uncertainty (days) per ACLED time_precision level "
        "(1 = the day, 2 = within the week, 3 = within the month).",
    )
    exclude_geo_precision: list[int] = Field(
        default=[3],
        description="geo_precision levels whose events are kept but excluded from labels.",
    )
    exclude_time_precision: list[int] = Field(
        default=[3],
        description="time_precision levels whose events are kept but excluded from labels.",
    )
    date_format: str | None = Field(
        default=None,
        description="Force a strptime format for event_date (e.g. '%d/%m/%Y'); default: detect it.",
    )
    min_valid_date_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="If fewer than this fraction of non-empty dates parse, the file is an error "
        "(wrong format) rather than a few bad rows to skip.",
    )
    missing_precision: int = Field(
        default=1,
        description="Precision level assumed where geo_precision/time_precision is missing or "
        "not a configured level (recorded in the report).",
    )
    drop_duplicate_ids: bool = Field(
        default=True,
        description="Skip repeated event_id_cnty rows (e.g. overlapping downloads joined).",
    )
    vocab_cutoff: float = Field(
        default=0.85,
        gt=0.0,
        le=1.0,
        description="difflib similarity a misspelt event/sub-event/disorder type must reach to be "
        "read as the canonical value (e.g. 'Demostrations').",
    )
    encoding: str | None = Field(
        default=None,
        description="Force a CSV text encoding; default UTF-8 (BOM or not), then cp1252.",
    )
    sheet: str | int | None = Field(
        default=None,
        description="Excel sheet name or index; default: the first sheet with an event_date column.",
    )
    max_examples: int = Field(
        default=3, ge=0, description="Examples kept per skip reason / unknown value kind."
    )

    @field_validator("geo_precision_radius_m", "time_precision_days")
    @classmethod
    def _non_negative(cls, v: dict) -> dict:
        if any(x < 0 for x in v.values()):
            raise ValueError("radii and day counts must be >= 0")
        return v

    @model_validator(mode="after")
    def _missing_level_known(self) -> AcledConfig:
        for name in ("geo_precision_radius_m", "time_precision_days"):
            if self.missing_precision not in getattr(self, name):
                raise ValueError(
                    f"missing_precision {self.missing_precision} is not a level of {name}"
                )
        return self


@dataclass
class AcledReport:
    """What :func:`read_acled` found, skipped and assumed.

    Attributes:
        path: the file read.
        file_format: ``csv`` or ``xlsx``.
        variant: which export it looks like, in words.
        n_rows: data rows in the file.
        n_valid: rows returned (``n_rows - sum(skipped)``).
        n_label_excluded: returned rows excluded from labels for precision.
        skipped: rows skipped per reason (see ``SKIP_REASONS``).
        examples: up to ``max_examples`` examples per skip reason and per unknown-value kind,
            as ``event_id: value``.
        assumptions: every interpretation made, one sentence each.
        unknown: rows per kind of unrecognised value (kept, mapped to "Other"/NA).
        date_format: the strptime format used for most dates.
        columns_missing: canonical columns absent from the file (filled with NA).
        columns_extra: file columns that are not ACLED columns (dropped).
    """

    path: str
    file_format: str
    variant: str
    n_rows: int
    n_valid: int
    n_label_excluded: int
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    unknown: dict[str, int] = field(default_factory=dict)
    date_format: str | None = None
    columns_missing: list[str] = field(default_factory=list)
    columns_extra: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = [
            f"{self.path}: {self.file_format}, {self.variant}",
            f"  {self.n_rows} rows, {self.n_valid} valid events, {self.n_rows - self.n_valid} skipped, "
            f"{self.n_label_excluded} kept but excluded from labels (precision)",
        ]
        for reason, n in self.skipped.items():
            eg = "; ".join(self.examples.get(reason, []))
            out.append(f"  skipped {n} ({reason})" + (f": e.g. {eg}" if eg else ""))
        for kind, n in self.unknown.items():
            eg = "; ".join(self.examples.get(f"unknown {kind}", []))
            out.append(f"  kept {n} with unrecognised {kind}" + (f": e.g. {eg}" if eg else ""))
        out += [f"  assumed: {a}" for a in self.assumptions]
        return out

    def to_dict(self) -> dict:
        """JSON-safe dict (for run manifests)."""
        return asdict(self)


def _precision(df: pd.DataFrame, cfg: AcledConfig, rep: AcledReport) -> None:
    """radius_m, date_uncertainty_days and label_excluded, in place."""
    level = {}
    for col, table in (
        ("geo_precision", cfg.geo_precision_radius_m),
        ("time_precision", cfg.time_precision_days),
    ):
        known = df[col].isin(list(table)).fillna(False).to_numpy(dtype=bool)
        eff = np.where(
            known,
            df[col].fillna(cfg.missing_precision).to_numpy(dtype="int64"),
            cfg.missing_precision,
        )
        if (~known).any():
            rep.assumptions.append(
                f"{col} missing or not in {sorted(table)} for {int((~known).sum())} events; assumed {cfg.missing_precision}"
            )
        level[col] = eff
    df["radius_m"] = (
        pd.Series(level["geo_precision"], index=df.index)
        .map(cfg.geo_precision_radius_m)
        .astype("float64")
    )
    df["date_uncertainty_days"] = (
        pd.Series(level["time_precision"], index=df.index)
        .map(cfg.time_precision_days)
        .astype("int64")
    )
    df["label_excluded"] = np.isin(level["geo_precision"], cfg.exclude_geo_precision) | np.isin(
        level["time_precision"], cfg.exclude_time_precision
    )


# --------------------------------------------------------------------------- steps


def _assemble(raw: pd.DataFrame, mapping: dict[str, str], rep: AcledReport) -> pd.DataFrame:
    """The 31 canonical columns (text), missing ones empty, ids stripped or made up."""
    missing, extra = rep.columns_missing, rep.columns_extra
    df = raw[list(mapping)].rename(columns=mapping).reset_index(drop=True)
    for col in missing:
        df[col] = pd.Series(pd.NA, index=df.index, dtype="str")
    df = df[list(ACLED_COLUMNS)]
    opt = [c for c in missing if c in OPTIONAL_COLUMNS]
    other = [c for c in missing if c not in OPTIONAL_COLUMNS]
    if opt:
        rep.assumptions.append(f"missing optional columns (left empty): {', '.join(opt)}")
    if other:
        rep.assumptions.append(f"missing columns (left empty): {', '.join(other)}")
    if extra:
        more = " ..." if len(extra) > 8 else ""
        rep.assumptions.append(f"ignored non-ACLED columns: {', '.join(extra[:8])}{more}")
    if "event_id_cnty" in missing:
        df["event_id_cnty"] = pd.Series([f"row{i + 2}" for i in range(len(df))], dtype="str")
        rep.assumptions.append(
            "no event_id_cnty column; events named by file line (row2, row3, ...)"
        )
    df["event_id_cnty"] = df["event_id_cnty"].str.strip()
    return df


def _dates(p: Path, raw: pd.Series, cfg: AcledConfig, rep: AcledReport) -> DateParse:
    """Parse event_date; raise when (nearly) no value parses."""
    dp = parse_dates(raw, cfg.date_format)
    given = ~dp.missing
    if not given.any():
        raise EventsError(
            f"{p}: event_date is empty in every row; export the ACLED data with dates"
        )
    if dp.valid_fraction < cfg.min_valid_date_fraction:
        bad = raw[given & dp.dates.isna()].drop_duplicates().head(3).tolist()
        tried = f"'{cfg.date_format}'" if cfg.date_format else ", ".join(DATE_FORMATS.values())
        raise EventsError(
            f"{p}: event_date values match no known date format (e.g. {', '.join(map(repr, bad))}; "
            f"only {dp.valid_fraction:.0%} parsed; tried {tried}); set date_format to the strptime "
            "format of the file, e.g. '%d.%m.%Y'"
        )
    rep.date_format = dp.fmt
    rep.assumptions.append(f"event_date read as {describe_format(dp.fmt)}")
    for f, n in dp.fallbacks.items():
        rep.assumptions.append(
            f"{n} event_date values in another format read as {describe_format(f)}"
        )
    return dp


def _skip_reasons(
    df: pd.DataFrame, dp: DateParse, raw: pd.DataFrame, cfg: AcledConfig, rep: AcledReport
) -> np.ndarray:
    """Index into ``SKIP_REASONS`` per row (-1 = keep); counts and examples go into ``rep``."""
    lat, lon, ids = df["latitude"], df["longitude"], df["event_id_cnty"]
    conds = [
        dp.missing.to_numpy(),
        df["event_date"].isna().to_numpy(),
        (lat.isna() | lon.isna()).to_numpy(),
        (lat.abs() > 90).to_numpy(),
        (lon.abs() > 180).to_numpy(),
        ((lat == 0) & (lon == 0)).to_numpy(),
    ]
    reason = np.select(conds, list(range(len(conds))), -1)
    if cfg.drop_duplicate_ids and "event_id_cnty" not in rep.columns_missing:
        ok = reason < 0
        later = ids.where(ok).duplicated(keep="first").to_numpy() & ok & ids.notna().to_numpy()
        reason[later] = len(conds)
    blank = "(blank)"
    coord_txt = "lat=" + raw["latitude"].fillna(blank) + ", lon=" + raw["longitude"].fillna(blank)
    shown = [raw["event_date"].fillna(blank), raw["event_date"], coord_txt, raw["latitude"],
             raw["longitude"], coord_txt, pd.Series("id already on an earlier row", index=ids.index)]  # fmt: skip
    for i, name in enumerate(SKIP_REASONS):
        hit = pd.Series(reason == i)
        if hit.any():
            rep.skipped[name] = int(hit.sum())
            rep.examples[name] = examples(ids, shown[i], hit, cfg.max_examples)
    return reason


def _crowd(df: pd.DataFrame, cfg: AcledConfig, rep: AcledReport) -> None:
    """crowd_class and crowd_size, in place."""
    missing = rep.columns_missing
    crowd, not_understood = crowd_columns(
        None if "tags" in missing else df["tags"], None if "notes" in missing else df["notes"]
    )
    df["crowd_class"] = crowd["crowd_class"].astype("int8")
    df["crowd_size"] = crowd["crowd_size"].astype("float64")
    bad = not_understood.notna()
    if bad.any():
        rep.unknown["crowd size"] = int(bad.sum())
        rep.examples["unknown crowd size"] = examples(
            df["event_id_cnty"], not_understood, bad, cfg.max_examples
        )
        rep.assumptions.append(
            f"{int(bad.sum())} crowd-size texts not understood; read as class 0 (no report)"
        )


# --------------------------------------------------------------------------- entry point


def read_acled(
    path: str | Path, config: AcledConfig | None = None
) -> tuple[pd.DataFrame, AcledReport]:
    """Read an ACLED export (any variant) into one canonical table.

    Args:
        path: a CSV (optionally zipped/gzipped) or .xlsx ACLED export.
        config: reading options; defaults to :class:`AcledConfig()`.

    Returns:
        ``(events, report)``: one row per valid event with the 31 ACLED columns (canonical
        names and dtypes, missing optional ones as NA) plus ``crowd_class``, ``crowd_size``,
        ``radius_m``, ``date_uncertainty_days`` and ``label_excluded``; and the report of what
        was detected, skipped and assumed.

    Raises:
        EventsError: missing/unreadable/empty file, missing required columns, or dates in no
            known format.
    """
    cfg = config or AcledConfig()
    p = Path(path)
    raw, file_format, notes = read_table(p, cfg.encoding, cfg.sheet)
    if len(raw.columns) == 0:
        raise EventsError(f"{p}: the file has no columns; export the ACLED data again")
    mapping, missing, extra, variant = map_columns(p, list(raw.columns))
    if raw.empty:
        raise EventsError(f"{p}: the file has a header but no rows; export some ACLED events")
    if BOM_NOTE in notes:
        variant += ", UTF-8 BOM"
    rep = AcledReport(str(p), file_format, variant, len(raw), 0, 0, columns_missing=missing,
                      columns_extra=extra, assumptions=list(notes))  # fmt: skip
    df = _assemble(raw, mapping, rep)
    text = df[["event_date", "latitude", "longitude"]].copy()
    dp = _dates(p, df["event_date"], cfg, rep)
    df["event_date"] = dp.dates
    df["latitude"], comma_lat = coords(text["latitude"])
    df["longitude"], comma_lon = coords(text["longitude"])
    if comma_lat or comma_lon:
        rep.assumptions.append(
            "coordinates with a decimal comma (e.g. '2,44') read as decimal numbers"
        )
    keep = _skip_reasons(df, dp, text, cfg, rep) < 0
    df = df[keep].reset_index(drop=True)

    ids = df["event_id_cnty"]
    canonical_codes(df, set(ACLED_COLUMNS) - set(missing), ids, rep, cfg.max_examples)
    if df["year"].isna().any():
        n = int(df["year"].isna().sum())
        df["year"] = df["year"].fillna(df["event_date"].dt.year.astype("Int64"))
        rep.assumptions.append(
            "year taken from event_date"
            if "year" in missing
            else f"year missing in {n} rows; taken from event_date"
        )
    canonical_types(df, ids, rep, cfg.vocab_cutoff, cfg.max_examples)
    _crowd(df, cfg, rep)
    _precision(df, cfg, rep)
    typed = {*INT_COLUMNS, "event_date", "latitude", "longitude", "fatalities"}
    for col in ACLED_COLUMNS:
        if col not in typed:
            df[col] = df[col].astype("str")
    rep.n_valid = len(df)
    rep.n_label_excluded = int(df["label_excluded"].sum())
    if rep.n_label_excluded:
        rep.assumptions.append(
            f"{rep.n_label_excluded} events with geo_precision in {cfg.exclude_geo_precision} or "
            f"time_precision in {cfg.exclude_time_precision} kept but excluded from labels"
        )
    return df, rep
