"""Crowd size of demonstrations, from ACLED's ``crowd size=`` tag or the older ``[size=]`` note.

Current exports put the size in ``tags`` (``crowd size=around 200; ...``); older ones end the
``notes`` with ``[size=around 50]``. Both become an ordinal class and, when a number is stated,
a number:

====== ============ ===========================================================
class  meaning      examples
====== ============ ===========================================================
0      no report    ``no report``, blank, no tag at all
1      small (<100) ``around 50``, ``dozens``, ``a few``, ``scores``, ``a handful``
2      medium       ``around 200``, ``1,000``, ``hundreds``, ``several hundred``, ``large``
       (100-1000)
3      large        ``over 5000``, ``1,500``, ``thousands``, ``tens of thousands``, ``massive``
       (>1000)
====== ============ ===========================================================

Conventions (documented, tested):

* A stated number is kept as stated, qualifiers dropped: ``around/about/some 200`` -> 200,
  ``over/more than/at least 5000`` -> 5000 (the stated bound), ``up to 300`` -> 300. For the
  class only, a strict bound counts as just past the number: ``over 1000`` is large (3),
  ``less than 100`` is small (1), while ``at least 1000`` / ``around 1000`` are medium (2).
* A range gives its midpoint: ``between 200 and 300``, ``200-300``, ``4 or 5`` -> 250, 250, 4.5.
* Number words count: ``a dozen`` -> 12, ``two dozen`` -> 24, ``half a dozen`` -> 6,
  ``a hundred`` -> 100, ``ninety-five`` -> 95, ``a thousand`` -> 1000.
* Vague quantities give a class and no number (NaN): ``dozens`` -> 1, ``hundreds`` /
  ``several hundred`` -> 2, ``thousands`` / ``tens of thousands`` -> 3. When several appear
  (``dozens to hundreds``) the largest wins.
* Text that says nothing usable is class 0 and reported as not understood.

Parsing is vectorised over the distinct size texts (``pd.factorize`` + ``Series.str``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CROWD_CLASSES: dict[int, str] = {
    0: "no report",
    1: "small (<100)",
    2: "medium (100-1000)",
    3: "large (>1000)",
}
"""Ordinal crowd-size classes."""

SMALL_MAX = 100.0
"""Numbers below this are class 1."""

LARGE_MIN = 1000.0
"""Numbers above this are class 3 (100 <= n <= 1000 is class 2)."""

_UNITS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_WORD_RE = r"\b(" + "|".join(sorted([*_UNITS, *_TENS], key=len, reverse=True)) + r")\b"
_TENS_UNITS_RE = r"\b(" + "|".join(_TENS) + r")[\s-](" + "|".join(list(_UNITS)[:9]) + r")\b"
_VAGUE_MULT = (
    r"\b(?:a\s+)?(?:few|several|many|some|tens\s+of|dozens\s+of|hundreds\s+of|scores\s+of)\s+"
)
_NO_REPORT = r"^(?:no\b|not\s+reported|unknown|n/?a$|none$|unclear|unspecified)"
_LARGE_WORDS = r"\b(?:thousands|massive|huge|mass|enormous|tens\s+of\s+thousands)\b"
_MEDIUM_WORDS = r"\b(?:hundreds|large|big|many|numerous|crowd|significant)\b"
_SMALL_WORDS = r"\b(?:dozens|dozen|scores|tens|several|few|handful|small|some|couple)\b"
_ABOVE = r"\b(?:over|more\s+than|above|upwards\s+of|in\s+excess\s+of)\s+\d"
_BELOW = r"\b(?:under|less\s+than|fewer\s+than|below)\s+\d"
_NUM = r"(\d+(?:\.\d+)?)"
_RANGE = _NUM + r"\s*(?:-|–|to|and|or)\s*(?:[a-z]+\s+){0,2}?" + _NUM


def _normalise(texts: pd.Series) -> pd.Series:
    """Lower-case, turn number words and digit groups into plain digits."""
    s = texts.str.lower().str.strip().str.replace(r"\s+", " ", regex=True)
    s = s.str.replace(_VAGUE_MULT + r"(hundred|thousand|dozen)s?\b", r"\1s", regex=True)
    s = s.str.replace(
        r"\b(?:a\s+)?couple(?:\s+of)?\s+(hundred|thousand|dozen)\b", r"2 \1", regex=True
    )
    s = s.str.replace(r"\bhalf\s+a\s+dozen\b", "6", regex=True)
    s = s.str.replace(r"\b(?:a|one)\s+(hundred|thousand|dozen)\b", r"1 \1", regex=True)
    s = s.str.replace(_TENS_UNITS_RE, lambda m: str(_TENS[m[1]] + _UNITS[m[2]]), regex=True)
    s = s.str.replace(_WORD_RE, lambda m: str({**_UNITS, **_TENS}[m[1]]), regex=True)
    s = s.str.replace(r"(?<=\d)[,\s](?=\d{3}\b)", "", regex=True)  # 1,500 / 35 000
    for word, factor in (("dozen", 12), ("hundred", 100), ("thousand", 1000)):
        s = s.str.replace(
            r"(\d+)\s*" + word + r"\b", lambda m, f=factor: str(int(m[1]) * f), regex=True
        )
        s = s.str.replace(r"(?<![a-z])" + word + r"\b", str(factor), regex=True)  # "around hundred"
    return s


def crowd_from_text(texts: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Parse crowd-size texts (the part after ``size=``) into class and number.

    Args:
        texts: size texts; NA means no size was given at all (class 0).

    Returns:
        A frame with ``crowd_class`` (int8, 0..3) and ``crowd_size`` (float64, NaN when no
        number was stated), on the index of ``texts``; and a boolean Series, True where a
        non-empty text was not understood (class 0, to be reported).
    """
    codes, uniques = pd.factorize(texts.astype("str"), use_na_sentinel=True)
    u = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
    s = _normalise(u)
    blank = s.isna() | s.eq("")
    no_report = s.str.contains(_NO_REPORT, regex=True).fillna(False)
    rng = s.str.extract(_RANGE)
    lo, hi = (pd.to_numeric(rng[i], errors="coerce") for i in (0, 1))
    first = pd.to_numeric(s.str.extract(_NUM)[0], errors="coerce")
    number = ((lo + hi) / 2).where(hi.notna(), first).where(~no_report)
    # "over 1000" is above the class boundary, "less than 100" below it (number stays as stated)
    above = s.str.contains(_ABOVE, regex=True).fillna(False).to_numpy()
    below = s.str.contains(_BELOW, regex=True).fillna(False).to_numpy()
    n = number + np.where(above & hi.isna(), 0.5, 0.0) - np.where(below & hi.isna(), 0.5, 0.0)
    by_number = pd.Series(
        np.select([n < SMALL_MAX, n <= LARGE_MIN, n > LARGE_MIN], [1, 2, 3], 0), dtype="int8"
    )
    by_word = pd.Series(
        np.select(
            [
                s.str.contains(_LARGE_WORDS, regex=True).fillna(False),
                s.str.contains(_MEDIUM_WORDS, regex=True).fillna(False),
                s.str.contains(_SMALL_WORDS, regex=True).fillna(False),
            ],
            [3, 2, 1],
            0,
        ),
        dtype="int8",
    )
    cls = by_number.where(number.notna(), by_word).where(~no_report & ~blank, 0).astype("int8")
    unparsed = (~blank & ~no_report & cls.eq(0)).to_numpy()
    take = np.where(codes >= 0, codes, len(u))  # NA text -> the appended 'no report' slot
    cls_all = np.append(cls.to_numpy(), 0).astype("int8")[take]
    num_all = np.append(number.to_numpy(dtype=float, na_value=np.nan), np.nan)[take]
    frame = pd.DataFrame({"crowd_class": cls_all, "crowd_size": num_all}, index=texts.index)
    return frame, pd.Series(np.append(unparsed, False)[take], index=texts.index)


def _extract(s: pd.Series, pattern: str) -> pd.Series:
    """First group of ``pattern`` per value (NA where no match), in Arrow's RE2 when possible."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.struct_field(pc.extract_regex(pa.array(s.array), pattern), [0])
        return pd.Series(pd.array(found, dtype="str"), index=s.index)
    except Exception:  # not Arrow-backed, or a pattern RE2 rejects: pandas' own regex
        return s.str.extract(pattern)[0].astype("str")


def size_texts(tags: pd.Series | None, notes: pd.Series | None) -> pd.Series:
    """The size text of each event: ``crowd size=`` in tags, else the first ``[size=]`` in notes.

    Args:
        tags: the ``tags`` column (or None when the file has none).
        notes: the ``notes`` column (or None).

    Returns:
        The text after ``size=`` (stripped), NA where neither column states a size.
    """
    index = (tags if tags is not None else notes).index
    out = pd.Series(pd.NA, index=index, dtype="str")
    if tags is not None:
        t = tags.astype("str")
        has = t.str.contains("size=", regex=False).fillna(False)
        if has.any():
            out[has] = _extract(t[has], r"(?i)(?:crowd\s*)?size\s*=\s*(?P<t>[^;|\]]*)")
    if notes is not None:
        n = notes.astype("str")
        need = out.isna() & n.str.contains("size=", regex=False).fillna(False)
        if need.any():
            out[need] = _extract(n[need], r"(?i)\[\s*size\s*=\s*(?P<t>[^\]]*)\]")
    return out.str.strip()


def crowd_columns(
    tags: pd.Series | None, notes: pd.Series | None
) -> tuple[pd.DataFrame, pd.Series]:
    """``crowd_class`` and ``crowd_size`` for every event, plus the not-understood texts.

    Returns:
        The frame of :func:`crowd_from_text` and a Series of the size texts that were not
        understood (NA elsewhere), for the report.
    """
    texts = size_texts(tags, notes)
    frame, unparsed = crowd_from_text(texts)
    return frame, texts.where(unparsed)


def parse_crowd_size(text: str | None) -> tuple[int, float]:
    """Parse one size text (``"around 200"``, ``"crowd size=hundreds"``, ``"[size=dozens]"``).

    Returns:
        ``(crowd_class, crowd_size)``; the number is NaN when none was stated.
    """
    if text is not None:
        t = pd.Series([text], dtype="str")
        tagged = size_texts(t, t)
        text = tagged.iloc[0] if pd.notna(tagged.iloc[0]) else text
    frame, _ = crowd_from_text(pd.Series([text], dtype="str"))
    return int(frame["crowd_class"].iloc[0]), float(frame["crowd_size"].iloc[0])
