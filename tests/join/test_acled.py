"""Reading every ACLED export variant: detection, canonical table, report, errors, real sample."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest
from acled_fixtures import (
    BAD_ROWS,
    SIZE_TEXTS,
    make_events,
    with_bad_rows,
    write_all,
    write_variant,
)
from pydantic import ValidationError

from riotvit.errors import EventsError
from riotvit.join.events import ACLED_COLUMNS, EVENT_TYPES, AcledConfig, read_acled

N = 120
COMPARED = ["event_id_cnty", "event_date", "event_type", "latitude", "longitude", "inter1", "inter2",
            "interaction", "fatalities", "geo_precision", "time_precision", "crowd_class", "crowd_size", "location"]  # fmt: skip


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("acled"), n=N, seed=0)


@pytest.fixture(scope="module")
def truth():
    return make_events(N, seed=0)


@pytest.fixture(scope="module")
def current(variants):
    return read_acled(variants["current"])


# --------------------------------------------------------------------------- current export


def test_current_export_schema_and_values(current, truth):
    df, rep = current
    assert rep.variant == "current 31-column export" and rep.file_format == "csv"
    assert rep.n_rows == rep.n_valid == N and rep.skipped == {}
    assert list(df.columns[:31]) == list(ACLED_COLUMNS)
    assert list(df.columns[31:]) == [
        "crowd_class",
        "crowd_size",
        "radius_m",
        "date_uncertainty_days",
        "label_excluded",
    ]
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    assert dtypes["event_date"] == "datetime64[ns]"
    for col in ("year", "time_precision", "geo_precision", "inter1", "inter2", "interaction"):
        assert dtypes[col] == "Int64"
    assert dtypes["latitude"] == dtypes["longitude"] == "float64"
    assert dtypes["fatalities"] == "int64" and dtypes["crowd_class"] == "int8"
    assert dtypes["date_uncertainty_days"] == "int64" and dtypes["label_excluded"] == "bool"
    assert dtypes["event_id_cnty"] == "str"
    assert (df["event_date"] == df["event_date"].dt.normalize()).all()
    assert df["event_type"].value_counts().to_dict() == truth["event_type"].value_counts().to_dict()
    assert set(df["event_type"]) <= set(EVENT_TYPES)
    np.testing.assert_allclose(df["latitude"], truth["latitude"].astype(float))
    assert df["event_date"].dt.strftime("%Y-%m-%d").tolist() == truth["event_date"].tolist()
    assert (df["interaction"] == truth["interaction"].astype(int)).all()


def test_crowd_columns_match_generator(current, truth):
    df, _ = current
    size = truth["tags"].str.removeprefix("crowd size=")
    want_cls = size.map(lambda s: SIZE_TEXTS[s][0] if isinstance(s, str) else 0)
    assert df["crowd_class"].tolist() == want_cls.tolist()
    want_num = size.map(lambda s: SIZE_TEXTS[s][1] if isinstance(s, str) else np.nan)
    np.testing.assert_array_equal(df["crowd_size"].to_numpy(), want_num.to_numpy(dtype=float))


@pytest.mark.parametrize(
    "variant, phrase",
    [
        ("bom", "UTF-8 byte-order mark removed"),
        ("xlsx", "spreadsheet date-time"),
        ("upper_old", "missing optional columns (left empty): disorder_type, civilian_targeting, tags, timestamp"),
        ("date_iso", "YYYY-MM-DD (%Y-%m-%d)"),
        ("date_long", "D Month YYYY (%d %B %Y)"),
        ("date_dmy2", "day-first DD-MM-YY (%d-%m-%y)"),
        ("date_slash", "day-first DD/MM/YYYY (%d/%m/%Y)"),
        ("float_codes", "codes stored as decimals (e.g. 2022.0) read as integers: inter1, inter2, interaction, year, time_precision, geo_precision, iso, timestamp"),
        ("text_inter", "inter1, inter2, interaction given as actor-category names"),
        ("excel_eu", "read as Windows-1252"),
    ],
)  # fmt: skip
def test_every_variant_reads_to_the_same_table(variants, current, variant, phrase):
    df, rep = read_acled(variants[variant])
    ref, _ = current
    assert rep.n_valid == N
    assert any(phrase in a for a in rep.assumptions), rep.assumptions
    pd.testing.assert_frame_equal(df[COMPARED], ref[COMPARED], check_dtype=True)


def test_variant_descriptions(variants):
    assert read_acled(variants["bom"])[1].variant == "current 31-column export, UTF-8 BOM"
    assert read_acled(variants["xlsx"])[1].file_format == "xlsx"
    old = read_acled(variants["upper_old"])[1]
    assert old.variant == "older or hand-edited export: upper-case columns, 27 of 31 columns"
    assert old.columns_missing == ["disorder_type", "civilian_targeting", "tags", "timestamp"]
    eu = read_acled(variants["excel_eu"])[1]
    assert "columns separated by ';', not ','" in eu.assumptions
    assert any("decimal comma" in a for a in eu.assumptions)


def test_upper_old_fills_missing_optional_columns(variants):
    df, _ = read_acled(variants["upper_old"])
    assert (
        df["tags"].isna().all()
        and df["disorder_type"].isna().all()
        and df["timestamp"].isna().all()
    )
    assert str(df["timestamp"].dtype) == "Int64"


def test_excel_eu_keeps_accented_names(variants, current):
    df, _ = read_acled(variants["excel_eu"])
    assert "Saint-Élise-sur-Mer" in set(df["location"])


def test_gzip_and_semicolon(tmp_path, truth):
    plain = write_variant(truth, tmp_path / "a.csv", "current")
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    df, rep = read_acled(gz)
    assert rep.n_valid == N and "read the CSV inside the gzip file" in rep.assumptions


def test_xlsx_picks_the_sheet_with_events(tmp_path, truth):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        pd.DataFrame({"About": ["ACLED export", "fictional"]}).to_excel(
            xl, sheet_name="README", index=False
        )
        truth.to_excel(xl, sheet_name="Data", index=False)
    df, rep = read_acled(path)
    assert rep.n_valid == N and "read sheet 'Data' of 2" in rep.assumptions
    with pytest.raises(EventsError, match=r"book\.xlsx: no sheet 'Nope' \(sheets: README, Data\)"):
        read_acled(path, AcledConfig(sheet="Nope"))


# --------------------------------------------------------------------------- dates


def test_month_first_file_is_detected(tmp_path, truth):
    d = truth.copy()
    d["event_date"] = pd.to_datetime(d["event_date"]).dt.strftime("%m/%d/%Y")
    d.to_csv(tmp_path / "us.csv", index=False)
    df, rep = read_acled(tmp_path / "us.csv")
    assert rep.date_format == "%m/%d/%Y"
    assert df["event_date"].dt.strftime("%Y-%m-%d").tolist() == truth["event_date"].tolist()


def test_ambiguous_slash_dates_are_day_first(tmp_path, truth):
    d = truth.head(3).copy()
    d["event_date"] = ["03/04/2022", "05/06/2022", "01/02/2022"]
    d.to_csv(tmp_path / "amb.csv", index=False)
    df, rep = read_acled(tmp_path / "amb.csv")
    assert df["event_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2022-04-03",
        "2022-06-05",
        "2022-02-01",
    ]
    assert "event_date read as day-first DD/MM/YYYY (%d/%m/%Y)" in rep.assumptions


def test_mixed_date_formats_use_a_fallback(tmp_path, truth):
    d = truth.copy()
    d.loc[:4, "event_date"] = pd.to_datetime(d.loc[:4, "event_date"]).dt.strftime("%d/%m/%Y")
    d.to_csv(tmp_path / "mixed.csv", index=False)
    df, rep = read_acled(tmp_path / "mixed.csv")
    assert rep.n_valid == N and rep.date_format == "%Y-%m-%d"
    assert (
        "5 event_date values in another format read as day-first DD/MM/YYYY (%d/%m/%Y)"
        in rep.assumptions
    )
    assert df["event_date"].dt.strftime("%Y-%m-%d").tolist() == truth["event_date"].tolist()


def test_forced_date_format(tmp_path, truth):
    d = truth.copy()
    d["event_date"] = pd.to_datetime(d["event_date"]).dt.strftime("%Y.%m.%d")
    d.to_csv(tmp_path / "dots.csv", index=False)
    with pytest.raises(
        EventsError,
        match=r"dots\.csv: event_date values match no known date format \(e\.g\. '2022\.",
    ):
        read_acled(tmp_path / "dots.csv")
    df, rep = read_acled(tmp_path / "dots.csv", AcledConfig(date_format="%Y.%m.%d"))
    assert rep.n_valid == N and rep.date_format == "%Y.%m.%d"


# --------------------------------------------------------------------------- vocabulary and codes


def test_typos_and_unknown_values(variants, truth):
    df, rep = read_acled(variants["typos"])
    want = truth["event_type"].copy()
    want.iloc[:2] = "Other"
    assert df["event_type"].tolist() == want.tolist()
    assert "disorder_type 'Demostrations' read as 'Demonstrations'" in rep.assumptions
    assert (
        "event_type 'Violence againts civilians' read as 'Violence against civilians'"
        in rep.assumptions
    )
    assert set(df["disorder_type"]) == {"Demonstrations", "Political violence", "Strategic developments",
                                        "Political violence; Demonstrations"}  # fmt: skip
    assert (df["sub_event_type"] == truth["sub_event_type"]).all()
    assert rep.unknown == {"event_type": 2}
    ids = truth["event_id_cnty"].iloc[:2].tolist()
    assert rep.examples["unknown event_type"] == [f"{ids[0]}: Flash mob", f"{ids[1]}: Flash mob"]
    assert any(
        f"kept 2 with unrecognised event_type: e.g. {ids[0]}: Flash mob" in line
        for line in rep.lines()
    )


def test_legacy_pre_2019_export(variants, truth):
    df, rep = read_acled(variants["legacy"])
    assert "legacy column names (ALLY_ACTOR_1/2)" in rep.variant and rep.columns_extra == ["GWNO"]
    assert (
        df["event_type"].tolist() == truth["event_type"].tolist()
    )  # Riots/Protests split by inter1
    assert (df.loc[df["event_type"] == "Battles", "sub_event_type"] == "Armed clash").all()
    assert df.loc[df["event_type"] != "Battles", "sub_event_type"].isna().all()
    assert (df["assoc_actor_1"].fillna("") == truth["assoc_actor_1"].fillna("")).all()
    n_rp = int(truth["event_type"].isin(["Riots", "Protests"]).sum())
    n_riots = int((truth["event_type"] == "Riots").sum())
    assert any(
        a.startswith(f"{n_rp} legacy 'Riots/Protests' events split: {n_riots} Riots")
        for a in rep.assumptions
    )
    assert "event_type 'Remote violence' read as 'Explosions/Remote violence'" in rep.assumptions


def test_riots_protests_rule_without_codes(tmp_path, truth):
    d = truth.head(4).copy()
    d["event_type"] = "Riots/Protests"
    d["sub_event_type"] = [None, "Mob violence", None, None]
    d["inter1"] = [None, None, "6", None]
    d["actor1"] = [
        "Rioters (Freedonia)",
        "Protesters (Freedonia)",
        "Rioters (Freedonia)",
        "Students (Freedonia)",
    ]
    d.to_csv(tmp_path / "rp.csv", index=False)
    df, _ = read_acled(tmp_path / "rp.csv")
    assert df["event_type"].tolist() == ["Riots", "Riots", "Protests", "Protests"]


def test_unknown_inter_and_missing_fatalities(tmp_path, truth):
    d = truth.head(5).copy()
    d["inter1"] = ["Aliens", "5", "Rioters", "7.5", None]
    d["fatalities"] = [None, "2", "-1", "x", "0"]
    d.to_csv(tmp_path / "codes.csv", index=False)
    df, rep = read_acled(tmp_path / "codes.csv")
    assert df["inter1"].fillna(-1).tolist() == [-1, 5, 5, -1, -1]
    assert rep.unknown["inter1"] == 2
    assert df["fatalities"].tolist() == [0, 2, 0, 0, 0]
    assert "fatalities missing in 1 rows; read as 0" in rep.assumptions
    assert rep.unknown["fatalities"] == 1 and rep.examples["unknown fatalities"][0].endswith(": x")
    assert any(a.startswith("fatalities not a number in 1 rows (e.g. 'x')") for a in rep.assumptions)
    assert "negative fatalities in 1 rows; read as 0" in rep.assumptions


# --------------------------------------------------------------------------- precision


def test_precision_defaults_and_exclusion(current, truth):
    df, rep = current
    geo, tim = truth["geo_precision"].astype(int), truth["time_precision"].astype(int)
    assert df["radius_m"].tolist() == geo.map({1: 0.0, 2: 2000.0, 3: 25000.0}).tolist()
    assert df["date_uncertainty_days"].tolist() == tim.map({1: 0, 2: 7, 3: 30}).tolist()
    excluded = (geo == 3) | (tim == 3)
    assert excluded.sum() > 0
    assert df["label_excluded"].tolist() == excluded.tolist()
    assert rep.n_label_excluded == int(excluded.sum()) and rep.n_valid == N  # kept, counted


def test_precision_config(variants, truth):
    cfg = AcledConfig(geo_precision_radius_m={1: 10.0, 2: 500.0, 3: 5000.0}, exclude_geo_precision=[2, 3],
                      exclude_time_precision=[])  # fmt: skip
    df, rep = read_acled(variants["current"], cfg)
    geo = truth["geo_precision"].astype(int)
    assert df["radius_m"].tolist() == geo.map({1: 10.0, 2: 500.0, 3: 5000.0}).tolist()
    assert rep.n_label_excluded == int((geo >= 2).sum())


def test_missing_precision_column_is_assumed(tmp_path, truth):
    truth.drop(columns=["geo_precision"]).to_csv(tmp_path / "nogeo.csv", index=False)
    df, rep = read_acled(tmp_path / "nogeo.csv")
    assert (df["radius_m"] == 0.0).all() and df["geo_precision"].isna().all()
    assert f"geo_precision missing or not in [1, 2, 3] for {N} events; assumed 1" in rep.assumptions


def test_config_validation():
    with pytest.raises(ValidationError):
        AcledConfig(geo_precision_radius_m={1: -5.0})
    with pytest.raises(ValidationError):
        AcledConfig(missing_precision=4)
    with pytest.raises(ValidationError):
        AcledConfig(radius=3)  # unknown key
    assert all(f.description for f in AcledConfig.model_fields.values())


# --------------------------------------------------------------------------- skipped rows


def test_bad_rows_are_counted_with_examples(tmp_path, truth):
    path = write_variant(with_bad_rows(truth), tmp_path / "bad.csv", "current")
    df, rep = read_acled(path)
    want: dict[str, int] = {}
    for _, reason in BAD_ROWS.values():
        want[reason] = want.get(reason, 0) + 1
    want["duplicate event_id_cnty"] = 1
    assert rep.skipped == want
    assert rep.n_rows == N + len(BAD_ROWS) + 1 and rep.n_valid == N
    assert not df["event_id_cnty"].str.startswith("BAD").any()
    assert rep.examples["null island (0, 0)"] == ["BAD-NULL: lat=0, lon=0"]
    assert rep.examples["unparseable date"] == [
        "BAD-DATE1: 2022-02-31",
        "BAD-DATE2: sometime in spring",
    ]
    assert rep.examples["latitude out of range"] == ["BAD-LAT: 95.5"]
    assert rep.examples["missing coordinates"][1].startswith("BAD-NOLON: lat=")
    assert any(
        line.startswith("  skipped 1 (longitude out of range): e.g. BAD-LON: -200")
        for line in rep.lines()
    )
    kept, _ = read_acled(path, AcledConfig(drop_duplicate_ids=False))
    assert len(kept) == N + 1


def test_examples_are_capped(tmp_path, truth):
    d = truth.copy()
    d.loc[:9, "latitude"] = "123"
    d.to_csv(tmp_path / "many.csv", index=False)
    _, rep = read_acled(tmp_path / "many.csv")
    assert (
        rep.skipped == {"latitude out of range": 10}
        and len(rep.examples["latitude out of range"]) == 3
    )


# --------------------------------------------------------------------------- bad input


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_error_missing_file(tmp_path):
    with pytest.raises(EventsError) as e:
        read_acled(tmp_path / "nope.csv")
    assert _one_line(e) == f"{tmp_path / 'nope.csv'}: ACLED file not found; check the path"


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("empty.csv", b"", r"empty\.csv: the file is empty"),
        ("blank.csv", b"\n\n  \n", r"blank\.csv: the file is empty"),
        ("header.csv", (",".join(ACLED_COLUMNS) + "\n").encode(), r"header\.csv: the file has a header but no rows"),
        ("x.json", b'{"event_date": "2022-01-01"}', r"x\.json: not a CSV or XLSX file \(extension '\.json'\)"),
        ("x.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, r"x\.csv: binary content, not a CSV or XLSX"),
        ("old.xls", b"\xd0\xcf\x11\xe0" + bytes(64), r"old\.xls: old binary Excel \(\.xls\) is not supported"),
        ("fake.xlsx", b"event_date,latitude\n", r"fake\.xlsx: named like an Excel file but is not a workbook"),
        ("broken.xlsx", b"PK\x03\x04garbage", r"broken\.xlsx: looks like a zip/xlsx file but is corrupt"),
    ],
)  # fmt: skip
def test_error_unreadable_files(tmp_path, name, content, pattern):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(EventsError) as e:
        read_acled(tmp_path / name)
    assert re.search(pattern, _one_line(e)), str(e.value)


def test_error_missing_columns_names_closest(tmp_path, truth):
    truth.rename(columns={"event_date": "EVNT_DATE", "latitude": "lat"}).to_csv(
        tmp_path / "cols.csv", index=False
    )
    with pytest.raises(EventsError) as e:
        read_acled(tmp_path / "cols.csv")
    assert _one_line(e) == (
        f"{tmp_path / 'cols.csv'}: missing required ACLED column(s) event_date, latitude "
        "(closest names in the file: 'EVNT_DATE', 'lat'); rename them to the ACLED names"
    )


def test_error_missing_columns_without_close_names(tmp_path):
    (tmp_path / "other.csv").write_text("id,name\n1,a\n")
    with pytest.raises(EventsError, match=r"other\.csv: missing required ACLED column\(s\) event_date, event_type, "
                       r"latitude, longitude \(file columns: id, name\)"):  # fmt: skip
        read_acled(tmp_path / "other.csv")


def test_error_no_date_parses(tmp_path, truth):
    d = truth.copy()
    d["event_date"] = "2022|03|" + d.index.astype(str)
    d.to_csv(tmp_path / "dates.csv", index=False)
    with pytest.raises(EventsError) as e:
        read_acled(tmp_path / "dates.csv")
    msg = _one_line(e)
    assert msg.startswith(f"{tmp_path / 'dates.csv'}: event_date values match no known date format "
                          "(e.g. '2022|03|0', '2022|03|1', '2022|03|2'; only 0% parsed; tried YYYY-MM-DD, D Month YYYY")  # fmt: skip
    assert "set date_format" in msg


def test_error_all_dates_empty(tmp_path, truth):
    truth.assign(event_date=None).to_csv(tmp_path / "nodates.csv", index=False)
    with pytest.raises(EventsError, match=r"nodates\.csv: event_date is empty in every row"):
        read_acled(tmp_path / "nodates.csv")


def test_error_malformed_csv(tmp_path, truth):
    path = write_variant(truth.head(5), tmp_path / "ragged.csv", "current")
    path.write_text(path.read_text() + "X1,2022-01-01,too,many," + ",".join("x" * 40) + "\n")
    with pytest.raises(EventsError, match=r"ragged\.csv: not a readable CSV \(.*\); check quoting"):
        read_acled(path)


# --------------------------------------------------------------------------- the real sample


@pytest.mark.real
def test_real_sample_2022(real):
    path = real("acled_sample_2022", "acled_global_sample_2022H1.csv")
    df, rep = read_acled(path)
    plain = pd.read_csv(path)  # independent read
    assert rep.variant == "current 31-column export"
    assert rep.n_rows == rep.n_valid == len(plain) == 9000 and rep.skipped == {}
    counts = df["event_type"].value_counts().to_dict()
    assert counts == plain["event_type"].value_counts().to_dict()
    assert counts == {"Protests": 4756, "Explosions/Remote violence": 1137, "Violence against civilians": 979,
                      "Battles": 956, "Strategic developments": 643, "Riots": 529}  # fmt: skip
    assert df["event_date"].min() == pd.Timestamp("2022-01-01") and df[
        "event_date"
    ].max() == pd.Timestamp("2022-06-30")
    assert "disorder_type 'Demostrations' read as 'Demonstrations'" in rep.assumptions
    assert (df["disorder_type"] == "Demonstrations").sum() == (
        plain["disorder_type"] == "Demostrations"
    ).sum()
    assert (df["fatalities"] == plain["fatalities"]).all()
    assert (df["inter1"].astype(float) == plain["inter1"]).all()
    excluded = (plain["geo_precision"] == 3) | (plain["time_precision"] == 3)
    assert rep.n_label_excluded == int(excluded.sum())


@pytest.mark.real
def test_real_sample_crowd_classes_agree_with_plain_regex(real):
    path = real("acled_sample_2022", "acled_global_sample_2022H1.csv")
    df, rep = read_acled(path)
    notes = pd.read_csv(path)["notes"]
    first = notes.str.extract(r"\[size=\s*([^\]]*)\]")[0].str.strip().str.lower()
    assert first.notna().sum() == 4756 + 529  # every demonstration has a size tag
    assert (df.loc[first.isna(), "crowd_class"] == 0).all()
    assert (df.loc[first.str.startswith("no report").fillna(False), "crowd_class"] == 0).all()
    assert "crowd size" not in rep.unknown
    # plain numbers, optionally 'around'/'about': class from the number alone
    m = first.str.extract(r"^(?:around|about|approximately|some)?\s*(\d[\d,]*)$")[0]
    num = pd.to_numeric(m.str.replace(",", ""), errors="coerce")
    has = num.notna()
    assert has.sum() > 600
    want = np.select([num < 100, num <= 1000, num > 1000], [1, 2, 3], 0)[has.to_numpy()]
    assert (df.loc[has, "crowd_class"].to_numpy() == want).all()
    assert (df.loc[has, "crowd_size"] == num[has]).all()
    # vague words
    for word, cls in (("hundreds", 2), ("dozens", 1), ("thousands", 3), ("several hundred", 2)):
        assert (df.loc[first == word, "crowd_class"] == cls).all() and (first == word).sum() > 0
    assert (df["crowd_class"] > 0).sum() == (
        first.notna() & ~first.str.startswith("no report").fillna(False)
    ).sum()


# --------------------------------------------------------------------------- smaller behaviours


def test_blank_event_type_and_odd_precision_are_kept_and_reported(tmp_path, truth):
    d = truth.head(6).copy()
    d.loc[0, "event_type"] = None
    d.loc[1, "geo_precision"] = "4"
    d.to_csv(tmp_path / "odd.csv", index=False)
    df, rep = read_acled(tmp_path / "odd.csv")
    assert len(df) == 6 and df.loc[0, "event_type"] == "Other"
    assert rep.unknown["event_type"] == 1
    assert rep.examples["unknown event_type"] == [f"{d.loc[0, 'event_id_cnty']}: (blank)"]
    assert df.loc[1, "geo_precision"] == 4 and df.loc[1, "radius_m"] == 0.0
    assert "geo_precision missing or not in [1, 2, 3] for 1 events; assumed 1" in rep.assumptions


def test_headers_matched_by_key_and_ids_made_up(tmp_path, truth):
    d = truth.head(4).drop(columns=["event_id_cnty"])
    d.columns = [c.replace("_", " ").title() for c in d.columns]  # "Event Date", "Latitude", ...
    d.to_csv(tmp_path / "titled.csv", index=False)
    df, rep = read_acled(tmp_path / "titled.csv")
    assert rep.variant == "older or hand-edited export: mixed-case columns, 30 of 31 columns"
    assert df["event_id_cnty"].tolist() == ["row2", "row3", "row4", "row5"]
    assert "no event_id_cnty column; events named by file line (row2, row3, ...)" in rep.assumptions


def test_interaction_text_codes():
    from riotvit.join.events.vocab import parse_inter, parse_interaction

    s = pd.Series(["Rioters-Civilians", "Protesters only", "State forces-Rebel groups",
                   "External/Other forces-Civilians", "57", "Rebel group-Identity militia", "Bananas"],
                  dtype="str")  # fmt: skip
    codes, unknown = parse_interaction(s)
    assert codes.fillna(-1).tolist() == [57, 60, 12, 78, 57, 24, -1]
    assert unknown == {"Bananas": 1}
    inter, unknown = parse_inter(
        pd.Series(["rioters", "PROTESTERS", "Identity militias", "2.0"], dtype="str")
    )
    assert inter.tolist() == [5, 6, 4, 2] and unknown == {}


def test_excel_serial_day_numbers(tmp_path, truth):
    d = truth.head(10).copy()
    serial = (pd.to_datetime(d["event_date"]) - pd.Timestamp("1899-12-30")).dt.days
    d["event_date"] = serial.astype(str)
    d.to_csv(tmp_path / "serial.csv", index=False)
    df, rep = read_acled(tmp_path / "serial.csv")
    assert (
        rep.date_format == "excel-serial"
        and "event_date read as Excel serial day numbers" in rep.assumptions
    )
    assert (
        df["event_date"].dt.strftime("%Y-%m-%d").tolist() == truth["event_date"].head(10).tolist()
    )
