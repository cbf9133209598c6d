"""Shapley drivers: exact efficiency, known additive contributions, exact vs permutations, reliability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from riotvit.errors import RiotvitError
from riotvit.explain.drivers import NO_CLEAR_DRIVER, assess, driver_columns, from_gradients
from riotvit.explain.gradients import expected_gradients
from riotvit.explain.shapley import (
    Game,
    ShapleyError,
    exact_shapley,
    permutation_shapley,
    shapley_values,
)
from riotvit.train.models import ModelConfig, create_model

ROOT = Path(__file__).resolve().parents[2]
BANDS = ["blue", "green", "red", "nir"]


def _tiny(fusion: str = "late", n_meta: int = 42, seed: int = 0):
    """configs/train_tiny.yaml's model with random weights (seeded), in eval mode."""
    d = yaml.safe_load((ROOT / "configs" / "train_tiny.yaml").read_text())["model"]
    d["fusion"] = fusion
    torch.manual_seed(seed)
    model = create_model(ModelConfig.model_validate(d), BANDS, n_meta=n_meta, n_types=3, pretrained=False).eval()
    if fusion == "film":  # FiLM starts as the identity; give it an effect
        with torch.no_grad():
            for p in model.film.parameters():
                p.normal_(0, 0.05)
    return model


def _inputs(n: int, n_bg: int, n_meta: int, img: int = 64, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x, bx = torch.randn(n, 4, img, img, generator=g), torch.randn(n_bg, 4, img, img, generator=g)
    m, bm = torch.randn(n, n_meta, generator=g), torch.randn(n_bg, n_meta, generator=g)
    m[0, n_meta // 2] = bm[-1, n_meta - 1] = float("nan")  # missing values are players too
    return x, m, bx, bm


class Additive(nn.Module):
    """riot = 2 mean(image) + sum_j a_j m_j + c_j m_j^2: every player's Shapley value is known."""

    fusion = "late"

    def __init__(self, a: torch.Tensor, c: torch.Tensor):
        super().__init__()
        self.a, self.c = a, c

    def forward_features(self, image, meta=None):
        return image.flatten(2).transpose(1, 2)  # (B, H W, C) "tokens"

    def forward_head(self, tokens, meta=None):
        return {"riot": 2 * tokens.mean((1, 2)) + (self.a * meta + self.c * meta**2).sum(1)}


def _known(model: Additive, x, m, bx, bm) -> np.ndarray:
    g = (model.a * m + model.c * m**2) - (model.a * bm + model.c * bm**2).mean(0)
    img = 2 * x.mean((1, 2, 3)) - 2 * bx.mean((1, 2, 3)).mean()
    return torch.cat([g, img[:, None]], 1).double().numpy()


@torch.no_grad()
def test_late_fusion_values_sum_to_output_minus_expected():
    model = _tiny()
    x, m, bx, bm = _inputs(6, 8, 42)
    game = Game(model, x, m, bx, bm)
    assert game.head.pooled  # RiotModel: pooled once, only the metadata MLP and the riot head run
    pv = shapley_values(model, x, m, bx, bm, permutations=16, seed=0, game=game)
    want = model(x, m)["riot"].double().numpy() - model(bx, bm)["riot"].double().numpy().mean()
    assert pv.estimator == "permutation" and pv.values.shape == (6, 43) and pv.samples == 16
    assert np.abs(pv.values.sum(1) - want).max() < 1e-4 * max(1.0, np.abs(want).max())
    assert np.abs(pv.gap).max() < 1e-9 and np.abs(want).min() > 1e-3
    assert np.isfinite(pv.values).all() and np.abs(pv.values[:, :-1]).sum() > 0  # the metadata count


def test_additive_model_gives_the_known_contributions():
    a, c = torch.linspace(-1, 1, 12), torch.linspace(0.5, -0.3, 12)
    model = Additive(a, c)
    x, m, bx, bm = _inputs(5, 7, 12, img=8)
    m, bm = torch.nan_to_num(m), torch.nan_to_num(bm)
    want = _known(model, x, m, bx, bm)
    perm = shapley_values(model, x, m, bx, bm, permutations=14, seed=3)  # 13 players: permutations
    assert perm.estimator == "permutation"
    np.testing.assert_allclose(perm.values, want, atol=2e-5)
    small = Additive(a[:6], c[:6])
    want6 = _known(small, x, m[:, :6], bx, bm[:, :6])
    ex = shapley_values(small, x, m[:, :6], bx, bm[:, :6])  # 7 players: all coalitions
    assert ex.estimator == "exact" and ex.samples == 2**7
    np.testing.assert_allclose(ex.values, want6, atol=2e-5)
    # an additive game has no sampling noise: two seeds give the same top driver everywhere
    b = permutation_shapley(Game(model, x, m, bx, bm), 14, seed=4)
    r = assess(perm, b, list(range(13)))
    assert r.stable.mean() >= 0.9 and r.gap_ok.all()


@torch.no_grad()
@pytest.mark.parametrize("n_meta", [42, 6])
def test_additive_fast_path_equals_the_full_head(n_meta):
    """Late fusion, linear riot head: the metadata coalitions run only the MLP (first layer as a running
    sum), the image player comes from the pooled features; the values are the full head's to float rounding."""
    model = _tiny(n_meta=n_meta)
    x, m, bx, bm = _inputs(5, 6, n_meta)
    fast, slow = Game(model, x, m, bx, bm), Game(model, x, m, bx, bm, fast=False)
    assert fast.additive is not None and slow.additive is None
    np.testing.assert_array_equal(fast.fx, slow.fx)
    keys = np.array([3, 1, 4, 1, 5])
    pf, ps = permutation_shapley(fast, 24, seed=5, keys=keys), permutation_shapley(slow, 24, seed=5, keys=keys)
    assert pf.units.shape == ps.units.shape == (5, 12, n_meta + 1)  # 24 permutations rounded up to 2 x 6 pairs
    np.testing.assert_allclose(pf.units, ps.units, atol=1e-5)  # same permutations, pair by pair
    np.testing.assert_allclose(pf.values, ps.values, atol=1e-5)
    assert np.abs(pf.gap).max() < 1e-9 and np.abs(pf.values).max() > 1e-2
    # the image player: a . (pooled(x) - pooled(b)), the same in every pair against one background crop
    img = pf.units[:, :, -1]
    np.testing.assert_allclose(img[:, :6], img[:, 6:], atol=1e-12)
    if n_meta <= 9:
        ef, es = exact_shapley(fast), exact_shapley(slow)
        assert ef.estimator == es.estimator == "exact" and ef.samples == es.samples == 2 ** (n_meta + 1)
        np.testing.assert_allclose(ef.values, es.values, atol=1e-5)
        assert np.abs(ef.gap).max() < 1e-9


@torch.no_grad()
def test_exact_and_permutation_estimates_agree():
    model = _tiny(n_meta=6)
    x, m, bx, bm = _inputs(4, 4, 6)
    game = Game(model, x, m, bx, bm)
    ex = exact_shapley(game)
    pe = permutation_shapley(game, 400, seed=0)
    se = pe.units.std(1, ddof=1) / np.sqrt(pe.units.shape[1])
    assert np.abs(ex.gap).max() < 1e-9 and np.abs(pe.gap).max() < 1e-9
    assert (np.abs(pe.values - ex.values) <= 5 * se + 1e-6).all()
    assert np.corrcoef(pe.values.ravel(), ex.values.ravel())[0, 1] > 0.99


@torch.no_grad()
def test_values_do_not_depend_on_the_other_crops_of_the_batch():
    model = _tiny()
    x, m, bx, bm = _inputs(5, 4, 42)
    keys = np.array([11, 12, 13, 14, 15])
    full = shapley_values(model, x, m, bx, bm, permutations=8, seed=2, keys=keys)
    part = shapley_values(model, x[3:], m[3:], bx, bm, permutations=8, seed=2, keys=keys[3:])
    np.testing.assert_allclose(part.values, full.values[3:], atol=1e-6)


def test_two_tied_drivers_are_not_reliable():
    a, c = torch.tensor([1.0, -1.0, 0.1]), torch.zeros(3)
    model = Additive(a, c)
    x = torch.zeros(3, 4, 8, 8)
    bx = torch.zeros(2, 4, 8, 8)
    m = torch.tensor([[2.0, -2.0, 0.5], [2.0, -0.5, 0.5], [0.3, 0.2, 0.1]])
    bm = torch.zeros(2, 3)
    pv = shapley_values(model, x, m, bx, bm)  # exact: 4 players
    r = assess(pv, pv, [0, 1, 2, 3])
    assert r.reliable.tolist() == [False, True, True]  # cell 0: features 0 and 1 both +2
    df = driver_columns(r.values, m.double().numpy(), ["f0", "f1", "f2"], ["f0", "f1", "f2"], 2, range(3), r.reliable)
    assert df["driver_1"].tolist() == [NO_CLEAR_DRIVER, "f0", "f0"] and df["driver_2"].tolist()[0] == ""
    assert df["drivers_reliable"].tolist() == [False, True, True] and np.isnan(df["driver_1_shap"][0])
    assert df["driver_2"][1] == "f1" and df["driver_1_effect"][1] == "raises risk"
    # sampled values: a near-tie within one standard error is not reliable either
    pm = permutation_shapley(Game(_tiny(n_meta=3), *_inputs(3, 2, 3)), 8, seed=0)
    pm.values[:, 0] = pm.values[:, 1] = 0.5
    assert not assess(pm, pm, [0, 1, 2, 3]).separated.any()


def test_unstable_or_incomplete_cells_are_not_reliable():
    a, c = torch.tensor([1.0, 0.5]), torch.zeros(2)
    model = Additive(a, c)
    x, bx = torch.zeros(2, 4, 8, 8), torch.zeros(1, 4, 8, 8)
    m, bm = torch.tensor([[2.0, 1.0], [2.0, 1.0]]), torch.zeros(1, 2)
    ga = shapley_values(model, x, m, bx, bm)
    gb = shapley_values(model, x, m, bx, bm)
    gb.values = gb.values[:, [1, 0, 2]].copy()  # run B ranks f1 first: unstable
    gb.values[1] = ga.values[1]
    ga.output = ga.output + np.array([0.0, 1.0])  # cell 1: a gap of 1 against a spread of 3.5
    r = assess(ga, gb, [0, 1, 2])
    assert r.stable.tolist() == [False, True] and r.gap_ok.tolist() == [True, False]
    assert not r.reliable.any()


def test_film_fusion_is_refused_by_the_shapley_game():
    model = _tiny("film", n_meta=4)
    x, m, bx, bm = _inputs(2, 2, 4)
    with pytest.raises(ShapleyError, match="fusion late or none") as e:
        Game(model, x, m, bx, bm)
    assert isinstance(e.value, RiotvitError)


def test_film_fusion_falls_back_to_expected_gradients_with_an_honest_gap():
    model = _tiny("film", n_meta=4)
    x, m, bx, bm = _inputs(3, 4, 4)
    a = from_gradients(expected_gradients(model, x, m, bx, bm, nsamples=4, seed=0), 4)
    b = from_gradients(expected_gradients(model, x, m, bx, bm, nsamples=4, seed=1), 4)
    r = assess(a, b, list(range(5)))
    assert a.estimator == "expected gradients" and r.values.shape == (3, 5)
    np.testing.assert_allclose(r.values, (a.values + b.values) / 2)
    assert (np.abs(r.gap) > 1e-6).all() and (r.se_margin > 0).all()  # Monte Carlo: a real gap, a real error
