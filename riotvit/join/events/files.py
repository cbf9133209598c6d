"""Open an ACLED export of any kind as a table of text cells.

The file's first bytes decide what it is (an .xlsx saved as .csv still reads): an Excel
workbook, a zipped or gzipped CSV, or a plain CSV. For CSV the delimiter (``,`` ``;`` tab ``|``)
comes from the header line and the encoding is UTF-8 (BOM or not), then cp1252, or UTF-16 for
Excel "Unicode text". Every cell is read as text so later parsing sees exactly what the file
says. Everything noticed on the way is returned as notes for the report.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd

from riotvit.errors import EventsError
from riotvit.join.events.vocab import key

BOM_NOTE = "UTF-8 byte-order mark removed"
TEXT_SUFFIXES = frozenset({"", ".csv", ".txt", ".tsv", ".tab", ".gz", ".zip"})
"""File extensions read as (possibly compressed) CSV; workbooks are recognised by content."""


def detect_format(p: Path) -> str:
    """``csv``, ``csv-zip``, ``csv-gzip`` or ``xlsx`` from the file's first bytes."""
    with open(p, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile:
            raise EventsError(
                f"{p}: looks like a zip/xlsx file but is corrupt; re-export it as CSV or .xlsx"
            ) from None
        if "[Content_Types].xml" in names:
            return "xlsx"
        if len(names) == 1:
            return "csv-zip"
        raise EventsError(
            f"{p}: a zip archive with {len(names)} files; unzip it and pass the ACLED CSV inside"
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise EventsError(f"{p}: old binary Excel (.xls) is not supported; save it as .xlsx or CSV")
    if head.startswith(b"\x1f\x8b"):
        return "csv-gzip"
    return "csv"


def _pick_sheet(p: Path, book: pd.ExcelFile, sheet: str | int | None) -> str | int:
    """The requested sheet, or the first one with an event_date column."""
    names = book.sheet_names
    if sheet is None:
        for n in names:
            if "eventdate" in [key(c) for c in pd.read_excel(book, sheet_name=n, nrows=0).columns]:
                return n
        return names[0]
    if (isinstance(sheet, str) and sheet not in names) or (
        isinstance(sheet, int) and not 0 <= sheet < len(names)
    ):
        raise EventsError(
            f"{p}: no sheet {sheet!r} (sheets: {', '.join(names)}); set sheet to one of them"
        )
    return sheet


def _read_xlsx(p: Path, sheet: str | int | None) -> tuple[pd.DataFrame, list[str]]:
    try:
        with pd.ExcelFile(p, engine="openpyxl") as book:
            n_sheets = len(book.sheet_names)
            sheet = _pick_sheet(p, book, sheet)
            df = pd.read_excel(
                book, sheet_name=sheet, dtype=str, keep_default_na=False, na_values=[""]
            )
    except EventsError:
        raise
    except Exception as e:  # openpyxl/zipfile raise many kinds for broken workbooks
        raise EventsError(
            f"{p}: cannot read the Excel workbook ({type(e).__name__}: {e}); re-save it as .xlsx or CSV"
        ) from None
    return df, ([f"read sheet {sheet!r} of {n_sheets}"] if n_sheets > 1 else [])


def _head(p: Path, fmt: str) -> bytes:
    if fmt == "csv-gzip":
        with gzip.open(p, "rb") as f:
            return f.read(65536)
    if fmt == "csv-zip":
        with zipfile.ZipFile(p) as z, z.open(z.namelist()[0]) as f:
            return f.read(65536)
    with open(p, "rb") as f:
        return f.read(65536)


def _read_csv(p: Path, fmt: str, encoding: str | None) -> tuple[pd.DataFrame, list[str]]:
    notes = [f"read the CSV inside the {fmt[4:]} file"] if fmt != "csv" else []
    try:
        head = _head(p, fmt)
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise EventsError(f"{p}: cannot decompress ({e}); re-export the ACLED data") from None
    if not head.strip():
        raise EventsError(f"{p}: the file is empty; export the ACLED data again")
    forced = encoding is not None
    if encoding is None:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
            notes.append("text encoding UTF-16 (Excel 'Unicode text' export)")
        elif b"\x00" in head or sum(b < 32 and b not in (9, 10, 13) for b in head[:4096]) > 40:
            raise EventsError(
                f"{p}: binary content, not a CSV or XLSX file; export ACLED data as CSV or .xlsx"
            )
        else:
            encoding = "utf-8-sig"
            if head.startswith(b"\xef\xbb\xbf"):
                notes.append(BOM_NOTE)
            try:  # a cut multi-byte character at the end of the head is fine
                head[:-4].decode("utf-8")
            except UnicodeDecodeError:
                encoding = "cp1252"
    lines = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()
    first = lines[0] if lines else ""
    sep = max([",", ";", "\t", "|"], key=first.count)
    if sep != ",":
        notes.append(f"columns separated by {sep!r}, not ','")
    kw = dict(
        sep=sep,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        compression={"csv-zip": "zip", "csv-gzip": "gzip"}.get(fmt),
    )

    def attempt(enc: str) -> pd.DataFrame:
        try:  # the fast path; on a parse problem the C parser below says where
            return pd.read_csv(p, engine="pyarrow", encoding=enc, **kw)
        except UnicodeDecodeError:
            raise
        except Exception:
            return pd.read_csv(p, engine="c", encoding=enc, **kw)

    try:
        try:
            df = attempt(encoding)
        except UnicodeDecodeError:
            if forced:
                raise
            encoding = "cp1252"
            df = attempt(encoding)
        if encoding == "cp1252" and not forced:
            notes.append("text is not UTF-8; read as Windows-1252 (cp1252)")
    except pd.errors.EmptyDataError:
        raise EventsError(f"{p}: the file is empty; export the ACLED data again") from None
    except (pd.errors.ParserError, UnicodeError, ValueError, LookupError) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise EventsError(
            f"{p}: not a readable CSV ({msg}); check quoting/delimiters/encoding or re-export it"
        ) from None
    return df, notes


def read_table(
    p: Path, encoding: str | None = None, sheet: str | int | None = None
) -> tuple[pd.DataFrame, str, list[str]]:
    """Read every cell of a CSV/XLSX export as text.

    Args:
        p: the file.
        encoding: force a CSV encoding (default: detect).
        sheet: Excel sheet name/index (default: the first with an event_date column).

    Returns:
        The frame (all columns text, blanks NA), ``csv`` or ``xlsx``, and notes for the report.

    Raises:
        EventsError: missing, empty, not a CSV/XLSX, or unreadable.
    """
    if not p.exists():
        raise EventsError(f"{p}: ACLED file not found; check the path")
    if not p.is_file():
        raise EventsError(f"{p}: is a folder, not an ACLED CSV/XLSX file; pass the file itself")
    if p.stat().st_size == 0:
        raise EventsError(f"{p}: the file is empty (0 bytes); export the ACLED data again")
    fmt = detect_format(p)
    if fmt == "xlsx":
        df, notes = _read_xlsx(p, sheet)
        if p.suffix.lower() not in (".xlsx", ".xlsm"):
            notes.append(f"file named '{p.name}' is an Excel workbook; read as .xlsx")
        return df, "xlsx", notes
    if p.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise EventsError(
            f"{p}: named like an Excel file but is not a workbook; export ACLED data as CSV or .xlsx"
        )
    if p.suffix.lower() not in TEXT_SUFFIXES:
        raise EventsError(
            f"{p}: not a CSV or XLSX file (extension '{p.suffix}'); export ACLED data as CSV or .xlsx"
        )
    df, notes = _read_csv(p, fmt, encoding)
    return df, "csv", notes
