"""The stack is a residual on the baseline's log-odds: the image moves crops, the baseline sets the level."""

from __future__ import annotations

import numpy as np

from riotvit.train.calibration import sigmoid
from riotvit.train.stacking import SELECTED_BASELINE, SELECTED_STACK, Stacker, fit_offset_logistic


def world(n: int, shift: float = 0.0, image_weight: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    zb = rng.normal(-2.5, 1.0, n) + shift  # the baseline's log-odds (history carries the trend)
    zi = rng.normal(0.0, 1.0, n)          # the image logit: signal the baseline lacks
    y = (rng.random(n) < sigmoid(zb + image_weight * zi - 0.3)).astype(int)
    return zi, sigmoid(zb), y


def test_offset_logistic_recovers_known_weights():
    zi, pb, y = world(40_000)
    w, c = fit_offset_logistic(zi[:, None], np.log(pb / (1 - pb)), y)
    assert abs(w[0] - 0.8) < 0.06 and abs(c + 0.3) < 0.06


def test_image_that_helps_is_kept_on_top_of_the_baseline():
    zi, pb, y = world(3_000)
    st = Stacker.fit(zi, pb, y)
    assert st.selected == SELECTED_STACK and st.b == 1.0 and 0.6 < st.a < 1.0
    assert st.losses[SELECTED_STACK] < st.losses[SELECTED_BASELINE]


def test_image_without_signal_is_dropped():
    zi, pb, y = world(3_000, image_weight=0.0)
    st = Stacker.fit(zi, pb, y)
    assert st.selected == SELECTED_BASELINE and st.a == 0.0
    z = np.log(pb / (1 - pb))
    np.testing.assert_allclose(st.logit(zi, pb), z + st.c)  # the baseline's ranking, untouched


def test_the_level_follows_the_baseline_when_the_rate_rises():
    # fitted at one origin, applied at a later one where the baseline's history features say "more riots"
    zi, pb, y = world(3_000, seed=1)
    st = Stacker.fit(zi, pb, y)
    zi2, pb2, y2 = world(20_000, shift=0.8, seed=2)
    p = sigmoid(st.logit(zi2, pb2))
    assert y2.mean() > y.mean() + 0.05
    assert abs(p.mean() - y2.mean()) < 0.015


def test_bundles_with_a_fitted_baseline_weight_still_load():
    st = Stacker.from_dict({"a": 1.5, "b": 0.25, "c": -1.0, "selected": SELECTED_STACK})
    np.testing.assert_allclose(st.logit(np.array([2.0]), np.array([0.5])), [1.5 * 2.0 + 0.0 - 1.0])
