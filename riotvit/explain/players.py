"""Expected gradients over the players {metadata features, image} from features computed once per crop.

For late fusion with a linear riot head (:mod:`riotvit.explain.additive`) the expected gradients
(the estimator of ``shap.GradientExplainer``) split exactly:

- a metadata feature's attribution only involves the metadata term, so its path points run the
  metadata MLP and nothing else (with shap's draws, the values are shap's);
- the image's attributions sum, along every path, to ``G(x) - G(b)`` with ``G`` the image term,
  so their expectation, the image player's converged value, is ``G(x) - mean_b G(b)``: exact
  from the pooled features of the crop and of the background crops.

The backbone runs once per crop (and once per background crop per run), not once per sample.
"""

from __future__ import annotations

import numpy as np
import torch

from riotvit.explain.gradients import shap_draws
from riotvit.explain.shapley import Game, PlayerValues, ShapleyError


def player_expected_gradients(game: Game, nsamples: int = 50, seed: int = 0,
                              draws: tuple[np.ndarray, np.ndarray] | None = None) -> PlayerValues:
    """Expected-gradient values (B, F + 1) of the metadata features and the image (last) from a :class:`Game`.

    Args:
        game: the crops against the background crops; needs the additive split (late fusion).
        nsamples, seed: shap's ``nsamples`` and ``rseed`` (its draws, in its order).
        draws: optional (idx, alpha) arrays of shape (B, nsamples), as for
            :func:`riotvit.explain.gradients.expected_gradients`.
    """
    add = game.additive
    if add is None or not game.has_meta:
        raise ShapleyError("expected gradients over players from cached features need late fusion with a linear riot "
                           "head and metadata; use riotvit.explain.gradients.expected_gradients")
    n, nb = game.fx.size, game.fb.size
    idx, alpha = draws if draws is not None else shap_draws(n, nb, nsamples, seed)
    s = idx.shape[1]
    dev = game.meta_x.device
    j = torch.from_numpy(np.repeat(np.arange(n), s)).to(dev)
    i = torch.from_numpy(idx.ravel()).to(dev)
    t = torch.from_numpy(alpha.ravel()).float().to(dev)[:, None]
    phi = torch.zeros((n, game.n_meta), dtype=torch.float32, device=dev)
    step = max(1, game.batch_rows // 8)
    for a in range(0, j.numel(), step):
        jj, ii, tt = j[a : a + step], i[a : a + step], t[a : a + step]
        m, mb = game.meta_x.index_select(0, jj), game.meta_b.index_select(0, ii)
        with torch.enable_grad():
            mi = (mb + tt * (m - mb)).requires_grad_(True)
            (grad,) = torch.autograd.grad(add.meta_value(mi).sum(), mi)
        phi.index_add_(0, jj, torch.nan_to_num(grad, nan=0.0) * torch.nan_to_num(m - mb, nan=0.0))
    image = (game.fx - game.hx) - float(np.mean(game.fb - game.hb))
    values = np.column_stack([(phi / s).double().cpu().numpy(), image])
    return PlayerValues(values, game.fx, float(game.fb.mean()), None, "expected gradients", s)
