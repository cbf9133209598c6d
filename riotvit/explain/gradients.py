"""Expected gradients (SHAP) for the riot log-odds, batched across crops.

This is the estimator of ``shap.GradientExplainer`` (expected gradients, Erion et al. 2021):
for input ``x``, background samples ``x'`` and ``alpha ~ U(0, 1)``,

    phi = E[(x - x') * grad f(x' + alpha (x - x'))]

computed for the image and the metadata at once. ``shap`` loops over crops and runs one small
batch of ``nsamples`` points per crop; here the points of many crops go through the model in
large batches (and, by default, the random draws are made in exactly shap's order from the same
seed, so the two give the same values). Missing metadata (NaN) gets zero attribution: the model
replaces it by a learned value, which does not depend on the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Attributions:
    image: np.ndarray  # (B, C, H, W) SHAP of the riot log-odds per input pixel and band, or (B, gh, gw) per patch
    meta: np.ndarray  # (B, F) SHAP per metadata feature
    output: np.ndarray  # (B,) riot logit f(x)
    expected: float  # E[f(background)]
    bg_tokens: torch.Tensor | None = None  # per_patch: the background's patch embeddings, reusable

    @property
    def gap(self) -> np.ndarray:
        """Completeness gap per crop: f(x) - E f - sum of all SHAP values."""
        total = self.image.reshape(self.image.shape[0], -1).sum(1) + self.meta.sum(1)
        return self.output - self.expected - total


def shap_draws(n_inputs: int, n_background: int, nsamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Background indexes and alphas in the order ``shap.GradientExplainer`` draws them."""
    rs = np.random.RandomState(seed)
    idx = np.empty((n_inputs, nsamples), dtype=np.int64)
    alpha = np.empty((n_inputs, nsamples), dtype=np.float64)
    for j in range(n_inputs):
        for k in range(nsamples):
            idx[j, k] = rs.choice(n_background)
            alpha[j, k] = rs.uniform()
    return idx, alpha


def riot_logit(model):
    """f(image, meta) -> riot logit (B,)."""

    def f(image: torch.Tensor, meta: torch.Tensor | None) -> torch.Tensor:
        return model(image, meta)["riot"].float()

    return f


def patch_sums(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B, C, H, W) per-pixel attributions -> (B, gh, gw): summed over each patch's pixels and bands."""
    (gh, gw), (b, _, h, w) = grid, image.shape
    return image.sum(1).reshape(b, gh, h // gh, gw, w // gw).sum((2, 4))


def linear_patch_embed(model, images: torch.Tensor, bg_images: torch.Tensor):
    """The backbone's patch embedding when it is linear in the pixels (a ViT of one date), else None.

    Then a patch's attribution, summed over its pixels and bands, is ``grad_e . (e(x) - e(x'))``
    with ``e`` the patch's token after the embedding, and interpolating the pixels interpolates
    the tokens: the path points are made from tokens computed once per crop and per background crop.
    """
    pe = getattr(getattr(model, "backbone", None), "patch_embed", None)
    if pe is None or getattr(model, "temporal", "none") != "none" or getattr(model, "patch_grid", None) is None:
        return None
    with torch.no_grad():
        x, b = images[:1], bg_images[:1]
        mid = pe(0.5 * (x + b))
        if mid.dim() < 3 or not torch.allclose(mid, 0.5 * (pe(x) + pe(b)), rtol=1e-4, atol=1e-5):
            return None
    return pe


def expected_gradients(
    model, images: torch.Tensor, meta: torch.Tensor | None, bg_images: torch.Tensor, bg_meta: torch.Tensor | None,
    nsamples: int = 50, seed: int = 0, batch_size: int = 256, draws: tuple[np.ndarray, np.ndarray] | None = None,
    per_patch: bool = False, output: np.ndarray | None = None, expected: float | None = None,
    bg_tokens: torch.Tensor | None = None,
) -> Attributions:
    """SHAP values of the riot logit for ``images`` (B, C, H, W) and ``meta`` (B, F).

    Args:
        model: the RiotModel (eval mode).
        bg_images, bg_meta: background samples (the bundle's training crops).
        nsamples: points per crop (shap's ``nsamples``).
        seed: random seed; with the default draws, shap's ``rseed``.
        batch_size: points per forward/backward pass.
        draws: optional (idx, alpha) arrays of shape (B, nsamples).
        per_patch: return the image attribution per ViT patch (B, gh, gw), summed over its pixels and
            bands; with a linear patch embedding (:func:`linear_patch_embed`) the path points are
            interpolated tokens and no per-pixel gradient is formed (same values to float rounding).
        output, expected: f(images) and the mean f over the background when the caller has them
            (they cost a forward pass of every crop and background crop).
        bg_tokens: the background's patch embeddings from an earlier call (per_patch), else computed.
    """
    f = riot_logit(model)
    dev = images.device
    b = images.shape[0]
    idx, alpha = draws if draws is not None else shap_draws(b, bg_images.shape[0], nsamples, seed)
    s = idx.shape[1]
    has_meta = meta is not None and meta.shape[1] > 0
    pe = linear_patch_embed(model, images, bg_images) if per_patch else None
    if pe is not None:
        with torch.no_grad():
            src = torch.cat([pe(images[k : k + batch_size]) for k in range(0, b, batch_size)])
            bg = bg_tokens if bg_tokens is not None else torch.cat(
                [pe(bg_images[k : k + batch_size]) for k in range(0, bg_images.shape[0], batch_size)])
    else:
        src, bg = images, bg_images
    phi_img = torch.zeros((b, *src.shape[1:-1]) if pe is not None else images.shape, dtype=torch.float32, device=dev)
    phi_meta = torch.zeros((b, meta.shape[1] if has_meta else 0), dtype=torch.float32, device=dev)
    flat_j = np.repeat(np.arange(b), s)
    flat_i = idx.ravel()
    flat_a = torch.from_numpy(alpha.ravel()).float().to(dev)
    point: list[torch.Tensor] = []
    hook = pe.register_forward_hook(lambda mod, inp, out: point[0]) if pe is not None else None
    try:
        with torch.enable_grad():
            for a in range(0, flat_j.size, batch_size):
                j = torch.from_numpy(flat_j[a : a + batch_size]).to(dev)
                i = torch.from_numpy(flat_i[a : a + batch_size]).to(dev)
                t = flat_a[a : a + batch_size]
                x, xb = src.index_select(0, j), bg.index_select(0, i)
                xi = (xb + t.view(-1, *([1] * (x.dim() - 1))) * (x - xb)).requires_grad_(True)
                point[:] = [xi]
                inputs = [xi]
                if has_meta:
                    m, mb = meta.index_select(0, j), bg_meta.index_select(0, i)
                    mi = (mb + t.view(-1, 1) * (m - mb)).requires_grad_(True)
                    inputs.append(mi)
                out = f(images.index_select(0, j) if pe is not None else xi, mi if has_meta else None)
                grads = torch.autograd.grad(out.sum(), inputs)
                contrib = grads[0] * (x - xb)
                phi_img.index_add_(0, j, contrib.sum(-1) if pe is not None else contrib)
                if has_meta:
                    d = torch.nan_to_num(m - mb, nan=0.0)
                    phi_meta.index_add_(0, j, torch.nan_to_num(grads[1], nan=0.0) * d)
    finally:
        if hook is not None:
            hook.remove()
    with torch.no_grad():
        if output is None:
            output = torch.cat([f(images[k : k + batch_size], meta[k : k + batch_size] if has_meta else None)
                                for k in range(0, b, batch_size)]).cpu().numpy()
        if expected is None:
            expected = float(torch.cat([f(bg_images[k : k + batch_size], bg_meta[k : k + batch_size] if has_meta else None)
                                        for k in range(0, bg_images.shape[0], batch_size)]).mean())
    image = (phi_img / s).cpu().numpy()
    if per_patch:
        image = image.reshape(b, *model.patch_grid) if pe is not None else patch_sums(image, model.patch_grid)
    return Attributions(image, (phi_meta / s).cpu().numpy(), np.asarray(output), float(expected),
                        bg if pe is not None else None)
