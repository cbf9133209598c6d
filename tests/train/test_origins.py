"""Rolling-origin splits: no training label reaches the test window, held-out blocks stay out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from riotvit.errors import SamplesError
from riotvit.train.origins import (
    check_split,
    forecast_origins,
    forward_origins,
    rolling_split,
    rolling_splits,
    select_origins,
    training_origins,
)

DATES = [dt.date(2019, 6, 15), dt.date(2020, 6, 15), dt.date(2021, 6, 15), dt.date(2022, 6, 15)]


def table(n_cells: int = 60, dates=DATES, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fold = np.arange(n_cells) % 5
    near = np.zeros(n_cells, dtype=np.int64)
    near[::7] = 1 << ((fold[::7] + 1) % 5)  # some crops lie in the buffer ring of the next fold
    rows = []
    for d in dates:
        for c in range(n_cells):
            rows.append({"crop_id": c, "date": d, "fold": fold[c], "near_folds": near[c], "riot": int(rng.random() < 0.3)})
    return pd.DataFrame(rows)


def test_training_origins_end_by_the_test_origin():
    assert training_origins(DATES, DATES[3], 0, 365) == DATES[:3]
    # a 2-year window: 2021's labels run to 2023, so only 2019 and 2020 may train for 2022
    assert training_origins(DATES, DATES[3], 0, 730) == DATES[:2]
    assert training_origins(DATES, DATES[3], 30, 365) == DATES[:2]  # the lead pushes 2021's window past 2022-06-15
    assert forward_origins(DATES, 0, 365) == DATES[1:]
    assert forward_origins(DATES, 0, 730) == DATES[2:]


def test_rolling_split_parts():
    df = table()
    sp = rolling_split(df, DATES[3], test_fold=2, lead_days=0, horizon_days=365)
    d = pd.to_datetime(df["date"]).dt.date.to_numpy()
    assert sp.name == "2022-06-15/fold2" and sp.val_fold == 3 and sp.origin == "2022-06-15"
    assert sp.train_origins == ("2019-06-15", "2020-06-15", "2021-06-15")
    assert set(d[sp.test]) == {DATES[3]} and set(df["fold"][sp.test]) == {2}
    assert sp.test.sum() == 12 and sp.test_all.sum() == 60
    assert set(d[sp.val]) == {DATES[2]} and set(df["fold"][sp.val]) == {3}  # the latest training origin
    assert DATES[3] not in set(d[sp.train])
    assert not set(df["fold"][sp.train]) & {2, 3}
    # buffer ring of the test fold and of the validation fold left out of training
    near = df["near_folds"].to_numpy()
    assert not (sp.train & (((near >> 2) & 1) == 1)).any()
    assert not (sp.train & (((near >> 3) & 1) == 1)).any()
    assert sp.train.sum() == 3 * (60 - 24 - int(((((near >> 2) | (near >> 3)) & 1)[:60] & (df["fold"][:60].isin([0, 1, 4]).to_numpy())).sum()))


@pytest.mark.parametrize("horizon", [180, 365, 500, 730])
@pytest.mark.parametrize("lead", [0, 30])
def test_no_label_window_overlaps_the_test_window(lead, horizon):
    df = table()
    for sp in rolling_splits(df, lead, horizon, origins="all"):
        t = np.datetime64(sp.origin)
        d = pd.to_datetime(df["date"]).to_numpy().astype("datetime64[D]")
        ends = d + np.timedelta64(lead + horizon, "D")
        assert (ends[sp.train] <= t).all() and (ends[sp.val] <= t).all()
        check_split(df, sp, lead, horizon)


def test_check_split_refuses_a_leaky_split():
    df = table()
    sp = rolling_split(df, DATES[3], 0, 0, 365)
    leaky = type(sp)(**{**sp.__dict__, "train": sp.train | sp.test_all})
    with pytest.raises(SamplesError, match="ending after the test origin"):
        check_split(df, leaky, 0, 365)
    inblock = type(sp)(**{**sp.__dict__, "train": sp.train | ((df["fold"] == 0).to_numpy() & (df["date"] == DATES[0]).to_numpy())})
    with pytest.raises(SamplesError, match="held-out fold"):
        check_split(df, inblock, 0, 365)


def test_origin_selection_and_errors():
    df = table()
    assert forecast_origins(df) == DATES
    assert select_origins(df, "last", 0, 365) == [DATES[3]]
    assert select_origins(df, "all", 0, 365) == DATES[1:]
    assert select_origins(df, ["2021-06-15"], 0, 365) == [DATES[2]]
    with pytest.raises(SamplesError, match="cannot be tested forward"):
        select_origins(df, ["2019-06-15"], 0, 365)
    with pytest.raises(SamplesError, match="add imagery of earlier dates"):
        select_origins(table(dates=DATES[:1]), "last", 0, 365)
    assert len(rolling_splits(df, 0, 365, "last")) == 5
