"""Detect the date format of an ACLED ``event_date`` column and parse it, vectorised.

Exports write dates as ``2023-02-16`` (current), ``16 February 2023`` (older), or, after a pass
through a spreadsheet, ``16-02-23`` / ``16/02/2023``. Slash and dash dates are read day first,
as ACLED writes them; month first is used only when it parses clearly more of the file. The
format is chosen on the *distinct* values (weighted by how often each occurs), then the whole
column is parsed with that explicit format; values it misses get one more try with the other
(non-conflicting) formats, so a hand-edited file that mixes formats still reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DATE_FORMATS: dict[str, str] = {
    "%Y-%m-%d": "YYYY-MM-DD",
    "%d %B %Y": "D Month YYYY",
    "%d-%m-%y": "day-first DD-MM-YY",
    "%d/%m/%Y": "day-first DD/MM/YYYY",
    "%d-%m-%Y": "day-first DD-MM-YYYY",
    "%d/%m/%y": "day-first DD/MM/YY",
    "%d.%m.%Y": "day-first DD.MM.YYYY",
    "%d %b %Y": "D Mon YYYY",
    "%d-%B-%Y": "D-Month-YYYY",
    "%d-%b-%y": "D-Mon-YY",
    "%d-%b-%Y": "D-Mon-YYYY",
    "%B %d, %Y": "Month D, YYYY",
    "%Y/%m/%d": "YYYY/MM/DD",
    "%Y-%m-%d %H:%M:%S": "YYYY-MM-DD hh:mm:ss (spreadsheet date-time)",
    "%Y-%m-%dT%H:%M:%S": "ISO date-time",
    "%m/%d/%Y": "month-first MM/DD/YYYY",
    "%m-%d-%y": "month-first MM-DD-YY",
    "%m/%d/%y": "month-first MM/DD/YY",
    "excel-serial": "Excel serial day numbers",
}
"""Candidate formats in order of preference (ties go to the earlier one), with a human name."""

MONTH_FIRST = frozenset({"%m/%d/%Y", "%m-%d-%y", "%m/%d/%y"})
"""Formats that conflict with the day-first ones; never used as a fallback."""

YEAR_RANGE = (1900, 2100)
"""Parsed dates outside these years are treated as unparseable."""


@dataclass
class DateParse:
    """Result of :func:`parse_dates`.

    Attributes:
        dates: datetime64[ns] at midnight, NaT where missing or unparseable.
        missing: True where the value was empty.
        fmt: the main strptime format (``excel-serial`` for spreadsheet day numbers).
        fallbacks: other formats used for some rows -> rows.
        valid_fraction: parsed share of non-empty values.
    """

    dates: pd.Series
    missing: pd.Series
    fmt: str | None
    fallbacks: dict[str, int] = field(default_factory=dict)
    valid_fraction: float = 0.0


def _parse(values: pd.Series, fmt: str) -> pd.Series:
    """Parse strings with one format; NaT where they do not match or fall outside YEAR_RANGE."""
    if fmt == "excel-serial":
        num = pd.to_numeric(values, errors="coerce")
        num = num.where((num >= 1) & (num < 80000))
        out = pd.to_datetime(num, unit="D", origin="1899-12-30", errors="coerce")
    else:
        out = pd.to_datetime(values, format=fmt, errors="coerce")
    out = out.astype("datetime64[ns]")
    ok = out.dt.year.between(*YEAR_RANGE)
    return out.where(ok).dt.normalize()


def parse_dates(raw: pd.Series, date_format: str | None = None, sample: int = 20000) -> DateParse:
    """Detect the format of a date column and parse it.

    Args:
        raw: the ``event_date`` column as text.
        date_format: force this strptime format (no detection, no fallback).
        sample: at most this many distinct values are used to choose the format.

    Returns:
        A :class:`DateParse`.
    """
    text = raw.astype("str").str.strip()
    text = text.mask(text.eq(""))
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    u = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
    weight = np.bincount(codes[codes >= 0], minlength=len(u))
    if date_format is not None:
        fmt: str | None = date_format
        try:
            parsed = _parse(u, date_format)
        except ValueError:
            parsed = pd.Series(pd.NaT, index=u.index, dtype="datetime64[ns]")
        fallbacks: dict[str, int] = {}
    else:
        pick = u.index if len(u) <= sample else u.sample(sample, random_state=0).index
        scores = {}
        for f in DATE_FORMATS:
            scores[f] = int(weight[pick][_parse(u[pick], f).notna().to_numpy()].sum())
        fmt = max(scores, key=lambda f: scores[f]) if max(scores.values(), default=0) > 0 else None
        parsed = _parse(u, fmt) if fmt else pd.Series(pd.NaT, index=u.index, dtype="datetime64[ns]")
        fallbacks = {}
        for f in sorted(scores, key=lambda f: -scores[f]):
            todo = parsed.isna()
            if f == fmt or f in MONTH_FIRST or scores[f] == 0 or not todo.any():
                continue
            more = _parse(u[todo], f)
            if more.notna().any():
                parsed[todo] = more
                fallbacks[f] = int(weight[todo.to_numpy()][more.notna().to_numpy()].sum())
    dates = pd.Series(
        np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))[codes], index=raw.index
    )
    missing = pd.Series(codes < 0, index=raw.index)
    n_given = int((~missing).sum())
    valid = float(dates.notna().sum() / n_given) if n_given else 0.0
    return DateParse(dates.astype("datetime64[ns]"), missing, fmt, fallbacks, valid)


def describe_format(fmt: str | None) -> str:
    """Human name of a format (the strptime string itself when not a known one)."""
    if fmt is None:
        return "none"
    return (
        f"{DATE_FORMATS[fmt]} ({fmt})"
        if fmt in DATE_FORMATS and fmt != "excel-serial"
        else DATE_FORMATS.get(fmt, fmt)
    )
