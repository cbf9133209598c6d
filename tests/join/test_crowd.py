"""Crowd size from ACLED's ``crowd size=`` tag and the older ``[size=...]`` note."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riotvit.join.events.crowd import crowd_columns, crowd_from_text, parse_crowd_size, size_texts

NAN = math.nan

# text -> (class, number); NaN number = no number stated
CASES = {
    # no report
    "no report": (0, NAN), " no report": (0, NAN), "no reports": (0, NAN), "no reported": (0, NAN),
    "": (0, NAN),
    # a stated number, qualifiers dropped
    "around 200": (2, 200.0), "about 50": (1, 50.0), "some 800": (2, 800.0), "3": (1, 3.0),
    "1,500": (3, 1500.0), "around 40 000": (3, 40000.0), "an estimated 400": (2, 400.0),
    "about 50 people": (1, 50.0), "around 100 tractors": (2, 100.0), "40+": (1, 40.0),
    # bounds: number as stated; strict bounds sit just past it for the class
    "over 5000": (3, 5000.0), "more than 300": (2, 300.0), "at least 200": (2, 200.0),
    "over 1000": (3, 1000.0), "more than a thousand": (3, 1000.0), "at least 1,000": (2, 1000.0),
    "around 1,000": (2, 1000.0), "less than 100": (1, 100.0), "fewer than 10": (1, 10.0),
    "up to 300": (2, 300.0), "almost 100": (2, 100.0),
    # ranges -> midpoint
    "between 200 and 300": (2, 250.0), "200-300": (2, 250.0), "between 5,000 and 10,000": (3, 7500.0),
    "4 or 5": (1, 4.5), "between 30 to 40": (1, 35.0), "around 800-900": (2, 850.0),
    "more than 100 to about 200": (2, 150.0),
    # number words
    "a dozen": (1, 12.0), "two dozen": (1, 24.0), "half a dozen": (1, 6.0), "about three dozen": (1, 36.0),
    "a couple dozen": (1, 24.0), "a hundred": (2, 100.0), "one hundred": (2, 100.0),
    "around hundred": (2, 100.0), "ninety-five": (1, 95.0), "thirty": (1, 30.0), "four": (1, 4.0),
    "couple hundred": (2, 200.0),
    # vague quantities: class, no number
    "dozens": (1, NAN), "a few": (1, NAN), "several": (1, NAN), "scores": (1, NAN), "tens": (1, NAN),
    "a handful": (1, NAN), "a small group": (1, NAN), "several dozen": (1, NAN),
    "hundreds": (2, NAN), "several hundred": (2, NAN), "a few hundred": (2, NAN), "large": (2, NAN),
    "a large crowd": (2, NAN), "many": (2, NAN),
    "thousands": (3, NAN), "several thousand": (3, NAN), "tens of thousands": (3, NAN),
    "dozens of thousands": (3, NAN), "massive": (3, NAN),
    # several magnitudes without a number: the largest wins
    "dozens to hundreds": (2, NAN), "several hundreds (possibly thousands)": (3, NAN),
}  # fmt: skip


@pytest.mark.parametrize("text", list(CASES))
def test_parse_crowd_size_table(text):
    cls, num = parse_crowd_size(text)
    want_cls, want_num = CASES[text]
    assert cls == want_cls
    assert (math.isnan(num) and math.isnan(want_num)) or num == pytest.approx(want_num)


def test_vectorised_parse_equals_single_parses():
    texts = pd.Series(list(CASES) * 3 + [None], dtype="str")
    frame, unparsed = crowd_from_text(texts)
    assert frame["crowd_class"].dtype == np.int8 and frame["crowd_size"].dtype == np.float64
    want = [CASES[t][0] for t in list(CASES) * 3] + [0]
    assert frame["crowd_class"].tolist() == want
    assert not unparsed.any()


def test_none_and_not_understood():
    assert parse_crowd_size(None) == (0, pytest.approx(NAN, nan_ok=True))
    frame, unparsed = crowd_from_text(pd.Series(["purple", "around 20", None], dtype="str"))
    assert frame["crowd_class"].tolist() == [0, 1, 0]
    assert unparsed.tolist() == [True, False, False]


def test_tag_and_note_formats_in_single_strings():
    assert parse_crowd_size("crowd size=around 200") == (2, 200.0)
    assert parse_crowd_size("crowd size=no report") == (0, pytest.approx(NAN, nan_ok=True))
    assert parse_crowd_size("crowd size=hundreds; women targeted: girls")[0] == 2
    assert parse_crowd_size("On 1 May, a rally in Port Aster. [size=around 50]") == (1, 50.0)
    assert parse_crowd_size("A march. [size=no report] [counter-demonstration]")[0] == 0


def test_tags_take_precedence_over_notes_and_first_note_tag_wins():
    tags = pd.Series(
        ["crowd size=around 2000", None, None, "crowd size=no report", None], dtype="str"
    )
    notes = pd.Series(
        [
            "Rally. [size=dozens]",
            "Rally in Velmora [size=around 100].",
            "March. [size=no report] [size=approximately 250] [counter-demonstration]",
            "Sit-in. [size=thousands]",
            "An attack with no size.",
        ],
        dtype="str",
    )
    assert size_texts(tags, notes).tolist()[:4] == [
        "around 2000",
        "around 100",
        "no report",
        "no report",
    ]
    frame, not_understood = crowd_columns(tags, notes)
    assert frame["crowd_class"].tolist() == [3, 2, 0, 0, 0]
    assert frame["crowd_size"].tolist()[:2] == [2000.0, 100.0]
    assert not_understood.isna().all()


def test_notes_only_and_tags_only_columns():
    notes = pd.Series(["x [size=hundreds]", "y"], dtype="str")
    assert crowd_columns(None, notes)[0]["crowd_class"].tolist() == [2, 0]
    tags = pd.Series(["crowd size=a few", None], dtype="str")
    assert crowd_columns(tags, None)[0]["crowd_class"].tolist() == [1, 0]
