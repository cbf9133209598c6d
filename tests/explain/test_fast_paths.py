"""The fast explanation paths give the slow paths' values: patch attributions from cached tokens."""

from __future__ import annotations

import numpy as np
import torch
from test_shapley import _inputs, _tiny

from riotvit.explain.gradients import expected_gradients, linear_patch_embed, shap_draws


def _per_patch(image: np.ndarray, gh: int, gw: int) -> np.ndarray:
    b, _, h, w = image.shape
    return image.sum(1).reshape(b, gh, h // gh, gw, w // gw).sum((2, 4))


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
        want = _per_patch(pix.image, gh, gw)
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
    np.testing.assert_allclose(a.image, _per_patch(b.image, 8, 8), atol=1e-6)
