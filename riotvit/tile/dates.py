"""Acquisition dates of many rasters from one small CSV, instead of one ``--date`` per file.

A dates file has two columns, ``file`` and ``date``. ``file`` is a file name or a glob pattern
matched against each raster's file name (not its folder), so three lines date nine files::

    file,date
    *_2021.tif,2021-03-16
    *_2022.tif,2022-03-16
    *_2023.tif,2023-03-16

It is given with ``--dates`` (``TileConfig.dates``); without it, a ``dates.csv`` next to a raster is
read when there is one. A raster that no row matches keeps its other date sources (catalog, tags).
"""

from __future__ import annotations

import csv
import datetime as dt
from fnmatch import fnmatchcase
from pathlib import Path

from riotvit.errors import RasterError
from riotvit.tile.source import parse_date

SIDECAR = "dates.csv"
"""The dates file looked for next to a raster when none is given."""


def read_dates(path: str | Path) -> list[tuple[str, dt.date]]:
    """The ``(pattern, date)`` rows of a dates file.

    Raises:
        RasterError: a missing or unreadable file, missing columns, or a row whose date is not YYYY-MM-DD.
    """

    p = Path(path)
    if not p.is_file():
        raise RasterError(f"{p}: dates file not found; check --dates (a CSV with columns file,date)")
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            fields = [c.strip().lower() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RasterError(f"{p}: cannot read the dates file ({e}); write a CSV with columns file,date") from None
    if not rows or "file" not in fields or "date" not in fields:
        raise RasterError(f"{p}: a dates file needs columns file,date and at least one row, e.g. *_2021.tif,2021-03-16")
    out = []
    for n, row in enumerate(rows, start=2):
        r = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not r["file"]:
            raise RasterError(f"{p} line {n}: empty file pattern; give a file name or a pattern such as *_2021.tif")
        out.append((r["file"], parse_date(r["date"], f"{p} line {n}")))
    return out


def date_for(raster: str | Path, rows: list[tuple[str, dt.date]], where: str | Path) -> dt.date | None:
    """The date the rows give ``raster`` (by its file name), or None when no row matches.

    Raises:
        RasterError: two rows that match the raster with different dates.
    """
    name = Path(raster).name
    hits = {d for pat, d in rows if fnmatchcase(name, pat)}
    if len(hits) > 1:
        raise RasterError(
            f"{where}: {name} matches rows with different dates ({', '.join(sorted(d.isoformat() for d in hits))}); "
            "make the patterns match each file once"
        )
    return hits.pop() if hits else None


def sidecar_dates(rasters: list[Path], given: str | Path | None) -> list[dt.date | None]:
    """Per raster: the date from ``given`` (a dates file), else from a ``dates.csv`` in its folder."""
    cache: dict[Path, list[tuple[str, dt.date]]] = {}
    out = []
    for r in rasters:
        f = Path(given) if given is not None else Path(r).parent / SIDECAR
        if given is None and not f.is_file():
            out.append(None)
            continue
        if f not in cache:
            cache[f] = read_dates(f)
        out.append(date_for(r, cache[f], f))
    return out
