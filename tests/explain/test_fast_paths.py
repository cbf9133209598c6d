"""The fast explanation paths give the slow paths' values: patch attributions from cached tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_shapley import _inputs, _tiny

from riotvit.explain.gradients import expected_gradients, linear_patch_embed, patch_sums, shap_draws


def test_patch_attributions_from_cached_tokens_equal_the_pixel_path():
    """Interpolating patch tokens (computed once per crop and background crop) instead of pixels gives
    the per-pixel expected gradients summed per patch, sample by sample (same draws)."""
    for fusion in ("late", "film"):
        model = _tiny(fusion, n_meta=6)
        x, m, bx, bm = _inputs(3, 5, 6)
        assert linear_patch_embed(model, x, bx) is not None
        draws = shap_draws(3, 5, 6, seed=2)
        pix = expected_gradients(model, x, m, bx, bm, draws=draws, batch_size=7)
        tok = expected_gradients(model, x, m, bx, bm, draws=draws, batch_size=7, per_patch=True)
        gh, gw = model.patch_grid
        assert tok.image.shape == (3, gh, gw) == (3, 8, 8) and tok.bg_tokens.shape == (5, 64, 96)
        want = patch_sums(pix.image, (gh, gw))
        scale = np.abs(want).max()
        assert scale > 1e-3
        np.testing.assert_allclose(tok.image, want, atol=1e-5 * scale)
        np.testing.assert_allclose(tok.meta, pix.meta, atol=1e-6)  # the metadata path is unchanged
        np.testing.assert_allclose(tok.output, pix.output, atol=1e-6)
        # cached background tokens and a known output and expected value: the same numbers, fewer passes
        red = expected_gradients(model, x, m, bx, bm, draws=draws, per_patch=True, bg_tokens=tok.bg_tokens,
                                 output=pix.output, expected=pix.expected)
        np.testing.assert_allclose(red.image, tok.image, atol=1e-5 * scale)
        assert red.expected == pix.expected


def test_a_nonlinear_patch_embedding_falls_back_to_pixels():
    model = _tiny(n_meta=6)
    model.backbone.patch_embed.norm = torch.nn.LayerNorm(96)
    x, m, bx, bm = _inputs(2, 3, 6)
    assert linear_patch_embed(model, x, bx) is None
    draws = shap_draws(2, 3, 4, seed=0)
    a = expected_gradients(model, x, m, bx, bm, draws=draws, per_patch=True)
    b = expected_gradients(model, x, m, bx, bm, draws=draws)
    assert a.bg_tokens is None and a.image.shape == (2, 8, 8)
    np.testing.assert_allclose(a.image, patch_sums(b.image, (8, 8)), atol=1e-6)


def test_player_values_from_cached_features_equal_full_expected_gradients():
    """Late fusion: the metadata attributions through the MLP alone are the full model's (same draws), and the
    image player is the converged value of the image attributions' sum, G(x) - mean G(b)."""
    from riotvit.explain.players import player_expected_gradients
    from riotvit.explain.shapley import Game

    model = _tiny(n_meta=6)
    x, m, bx, bm = _inputs(4, 5, 6)
    draws = shap_draws(4, 5, 8, seed=1)
    full = expected_gradients(model, x, m, bx, bm, draws=draws)
    pv = player_expected_gradients(Game(model, x, m, bx, bm), draws=draws)
    assert pv.values.shape == (4, 7) and pv.estimator == "expected gradients" and pv.samples == 8
    np.testing.assert_allclose(pv.values[:, :6], full.meta, atol=1e-6)
    assert np.abs(full.meta).max() > 1e-3
    np.testing.assert_allclose(pv.output, full.output, atol=1e-5)
    assert pv.expected == pytest.approx(full.expected, abs=1e-5)
    # one background crop, a fine path: the pixel attributions sum to the exact image value
    one = np.zeros((4, 64), dtype=np.int64), np.tile((np.arange(64) + 0.5) / 64, (4, 1))
    fine = expected_gradients(model, x, m, bx[:1], bm[:1], draws=one)
    exact = player_expected_gradients(Game(model, x, m, bx[:1], bm[:1]), draws=one)
    img = fine.image.reshape(4, -1).sum(1)
    np.testing.assert_allclose(exact.values[:, -1], img, atol=0.02 * np.abs(img).max())
    # a fine path from one background crop is complete, except for crop 0's missing value, which expected
    # gradients leave unattributed (the model replaces it by a learned value)
    assert np.abs(exact.gap[1:]).max() < 2e-3 * np.abs(exact.output - exact.expected).max()
    assert abs(exact.gap[0]) > 1e-3


def test_patch_sums_add_each_patch_pixels_and_bands():
    img = np.ones((1, 4, 16, 16))
    img[0, 2, 9, 3] = 11.0  # row 9, column 3: the lower-left of 2 x 2 patches of 8 px
    got = patch_sums(img, (2, 2))
    np.testing.assert_array_equal(got, [[[256.0, 256.0], [266.0, 256.0]]])
