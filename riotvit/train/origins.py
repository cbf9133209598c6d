"""Rolling-origin evaluation crossed with spatial blocks: what may be trained on for each forecast.

Every acquisition date of the samples table is a **forecast origin** ``t``: a crop at ``t`` is
labelled by the riots in its window ``[t + lead, t + lead + horizon)`` and its features use only
events certainly before ``t`` (see :mod:`riotvit.join.events.labels`). To test at origin ``t``:

- train only on origins whose label windows end on or before ``t`` (``o + lead + horizon <= t``),
  so no training label lies in the test window or after it (no future data, no overlapping
  windows);
- hold out spatial block fold ``f`` at ``t`` ("new place, later time": ``Split.test``), and keep
  its crops and their buffer ring out of training at every origin; also score every block at
  ``t`` ("same places, later time": ``Split.test_all``);
- validate (early stopping, stacking, calibration) on fold ``val_fold`` at the most recent
  training origin, which is never trained on either.

:func:`check_split` proves both guarantees for a split and is run on every split that trains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from riotvit.errors import SamplesError
from riotvit.train.splits import Split, default_val_fold, fold_ids, require_columns, train_rows


def row_dates(samples: pd.DataFrame) -> np.ndarray:
    """The forecast origin of every row (``date``), as ``datetime64[D]``."""
    require_columns(samples, ["date"])
    return pd.to_datetime(samples["date"]).to_numpy().astype("datetime64[D]")


def forecast_origins(samples: pd.DataFrame) -> list[dt.date]:
    """Distinct origins (acquisition dates) of the table, oldest first."""
    return [pd.Timestamp(d).date() for d in np.unique(row_dates(samples))]


def label_end(origin: dt.date, lead_days: int, horizon_days: int) -> dt.date:
    """First day after the label window of ``origin``."""
    return origin + dt.timedelta(days=lead_days + horizon_days)


def training_origins(origins: Sequence[dt.date], test_origin: dt.date, lead_days: int,
                     horizon_days: int) -> list[dt.date]:
    """Origins whose label windows end on or before ``test_origin``."""
    return [o for o in origins if o < test_origin and label_end(o, lead_days, horizon_days) <= test_origin]


def forward_origins(origins: Sequence[dt.date], lead_days: int, horizon_days: int) -> list[dt.date]:
    """Origins with at least one earlier origin whose labels are complete by then."""
    return [t for t in origins if training_origins(origins, t, lead_days, horizon_days)]


def select_origins(samples: pd.DataFrame, which: str | Sequence[str], lead_days: int, horizon_days: int) -> list[dt.date]:
    """The test origins: ``"last"``, ``"all"`` (every testable origin) or a list of ISO dates.

    Raises:
        SamplesError: no origin can be tested forward, or a listed origin cannot.
    """
    origins = forecast_origins(samples)
    ok = forward_origins(origins, lead_days, horizon_days)
    if not ok:
        raise SamplesError(
            f"samples table: origins {', '.join(map(str, origins))} with a {lead_days}+{horizon_days}-day label window "
            "leave no origin with an earlier, complete training window; add imagery of earlier dates, or shorten "
            "--horizon-days, to test forward in time"
        )
    if which == "last":
        return [ok[-1]]
    if which == "all":
        return ok
    chosen = [dt.date.fromisoformat(str(d)) for d in which]
    bad = [d for d in chosen if d not in ok]
    if bad:
        raise SamplesError(f"eval.origins: {bad[0]} cannot be tested forward; testable origins are "
                           f"{', '.join(map(str, ok))}")
    return chosen


def rolling_split(samples: pd.DataFrame, test_origin: dt.date, test_fold: int, lead_days: int, horizon_days: int,
                  val_fold: int | None = None) -> Split:
    """Hold out block ``test_fold`` at ``test_origin``; train on earlier, complete origins (module doc)."""
    folds = fold_ids(samples)
    if len(folds) < 3:
        raise SamplesError(f"samples table: {len(folds)} spatial fold(s); rolling-origin evaluation needs at least 3 "
                           "(train, validation, test); rerun `riotvit join` with more folds")
    if test_fold not in folds:
        raise SamplesError(f"samples table: test fold {test_fold} does not exist; folds are {folds}")
    val_fold = default_val_fold(folds, test_fold) if val_fold is None else val_fold
    dates = row_dates(samples)
    tr = training_origins(forecast_origins(samples), test_origin, lead_days, horizon_days)
    if not tr:
        raise SamplesError(f"origin {test_origin}: no earlier origin's label window ends by then; nothing to train on")
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    at = dates == np.datetime64(test_origin)
    in_train = np.isin(dates, np.array(tr, dtype="datetime64[D]"))
    return Split(
        name=f"{test_origin.isoformat()}/fold{test_fold}", kind="rolling", test_fold=int(test_fold),
        val_fold=int(val_fold),
        train=in_train & train_rows(samples, test_fold, val_fold),
        val=(dates == np.datetime64(max(tr))) & (fold == val_fold),
        test=at & (fold == test_fold),
        origin=test_origin.isoformat(), train_origins=tuple(o.isoformat() for o in tr), test_all=at,
    )


def rolling_splits(samples: pd.DataFrame, lead_days: int, horizon_days: int, origins: str | Sequence[str] = "last",
                   folds: Sequence[int] | str = "all") -> list[Split]:
    """One split per (test origin, held-out fold), origins oldest first."""
    all_folds = fold_ids(samples)
    fl = all_folds if folds == "all" else [int(f) for f in folds]
    return [rolling_split(samples, t, f, lead_days, horizon_days)
            for t in select_origins(samples, origins, lead_days, horizon_days) for f in fl]


def check_split(samples: pd.DataFrame, split: Split, lead_days: int, horizon_days: int) -> None:
    """Refuse a split that could leak: a training or validation label window reaching past the
    test origin, or a training crop in the held-out fold or its buffer ring.

    Raises:
        SamplesError: the split leaks (a bug, never a user error: the message says which rows).
    """
    if split.origin is None:
        return
    t = np.datetime64(split.origin)
    dates = row_dates(samples)
    ends = dates + np.timedelta64(lead_days + horizon_days, "D")
    for part in ("train", "val"):
        mask = getattr(split, part)
        if (ends[mask] > t).any():
            raise SamplesError(f"split {split.name}: {int((ends[mask] > t).sum())} {part} rows have label windows "
                               f"ending after the test origin {split.origin}")
    near = pd.to_numeric(samples["near_folds"], errors="coerce").fillna(0).to_numpy(np.int64)
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    bad = split.train & ((fold == split.test_fold) | (((near >> int(split.test_fold)) & 1) == 1))
    if bad.any():
        raise SamplesError(f"split {split.name}: {int(bad.sum())} training rows lie in the held-out fold or its buffer")
