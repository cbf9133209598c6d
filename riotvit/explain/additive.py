"""Late fusion's riot logit as an image term plus a metadata term: cheap Shapley coalitions.

With ``late`` fusion and a linear riot head the logit of a crop is

    riot = a . pool(tokens) + c . MLP(filled, missing) + bias

(``a`` and ``c`` are the riot head's weights on the pooled image features and on the metadata
embedding). The image player never interacts with a metadata feature, so in the Shapley game
over {metadata features, image}:

- the image's marginal contribution is ``a . (p_x - p_b)`` in every coalition: its value is
  exact from the pooled features computed once per crop and once per background crop;
- a metadata feature's marginal contributions are those of the metadata term alone, so a
  coalition only runs the metadata MLP, never the image part of the head.

The MLP's first layer is linear in ``[filled, missing]`` and a coalition takes each feature's
pair either from the crop or from the background crop, so the first layer's output of a
coalition is the background's plus the sum of the per-feature differences of its members:
along a permutation that is a cumulative sum, and only the layers after the first run per
coalition. The values equal those of the full head up to float rounding (tested).
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveHead:
    """The riot logit of a late-fusion RiotModel split into its image and metadata terms."""

    def __init__(self, model):
        mlp, inp, lin = model.meta_mlp, model.meta_input, model.heads.layers["riot"]
        first = mlp.net[0]
        d = lin.in_features - first.out_features
        w = lin.weight.detach().float()[0]
        self.a, self.c = w[:d], w[d:]  # riot weights on the pooled image features / the metadata embedding
        self.bias = float(lin.bias.detach()) if lin.bias is not None else 0.0
        self.inp, self.rest = inp, mlp.net[1:]
        self.w1 = first.weight.detach().float()  # (H, 2F): [filled, missing] -> hidden
        self.b1 = first.bias.detach().float() if first.bias is not None else torch.zeros(first.out_features)
        self.n_meta = self.w1.shape[1] // 2

    @staticmethod
    def of(model) -> AdditiveHead | None:
        """The split for a late-fusion model whose riot head is linear, else None."""
        try:
            mlp, inp, lin = model.meta_mlp, model.meta_input, model.heads.layers["riot"]
            first = mlp.net[0]
        except (AttributeError, KeyError, TypeError, IndexError):
            return None
        if (getattr(model, "fusion", None) != "late" or inp is None or not isinstance(lin, nn.Linear)
                or not isinstance(first, nn.Linear) or lin.out_features != 1 or first.in_features % 2):
            return None
        return AdditiveHead(model)

    def image_term(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, D) pooled image features -> (N,) their part of the riot logit (without the bias)."""
        return pooled.float() @ self.a.to(pooled.device)

    def columns(self, meta: torch.Tensor) -> torch.Tensor:
        """(N, F) scaled metadata (NaN = missing) -> (N, F, H): each feature's share of the first layer."""
        filled, missing = self.inp(meta.float())
        f = self.n_meta
        w = self.w1.to(meta.device)
        return filled.unsqueeze(-1) * w[:, :f].T + missing.unsqueeze(-1) * w[:, f:].T

    def meta_value(self, meta: torch.Tensor) -> torch.Tensor:
        """(N, F) scaled metadata -> (N,) the metadata part of the riot logit (without the bias)."""
        filled, missing = self.inp(meta.float())
        w = self.w1.to(meta.device)
        return self.meta_term(torch.cat([filled, missing], dim=-1) @ w.T + self.b1.to(meta.device))

    def preact(self, cols: torch.Tensor) -> torch.Tensor:
        """(..., F, H) columns -> (..., H): the first layer's output for those features' values."""
        return cols.sum(-2) + self.b1.to(cols.device)

    def meta_term(self, z: torch.Tensor) -> torch.Tensor:
        """(..., H) first-layer outputs -> (...,) the metadata part of the riot logit (without the bias)."""
        return self.rest(z) @ self.c.to(z.device)
