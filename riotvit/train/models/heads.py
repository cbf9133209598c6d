"""Prediction heads on the pooled, fused features, and helpers to read their outputs.

Output convention (all raw, un-activated):

- ``riot``: (B,) logit of P(riot).
- ``event_count``, ``fatalities``: (B,) log-rate ``log E[y]``; with the negative binomial family
  also ``<name>_log_dispersion`` (B,): the learned log alpha (variance = mu + alpha mu^2),
  one scalar per head broadcast over the batch.
- ``crowd_size``: (B, K-1) cumulative logits ``logit P(y > k)``, k = 0..K-2 (CORAL).
- ``type_counts``: (B, T) per-type log-rates.
"""

from __future__ import annotations

import torch
from torch import nn

from riotvit.errors import ModelError
from riotvit.train.models.config import HeadsConfig


class CoralHead(nn.Module):
    """Ordinal head (Cao et al. 2020, CORAL): shared weights, K-1 ordered biases."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, 1, bias=False)
        self.bias = nn.Parameter(torch.linspace(1.0, -1.0, num_classes - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, K-1) cumulative logits."""
        return self.fc(x) + self.bias


class PredictionHeads(nn.Module):
    """The enabled heads of a :class:`HeadsConfig`, applied to (B, in_dim) features.

    Args:
        in_dim: width of the fused features.
        heads: which heads exist and their families / classes.
        n_types: number of event types T for ``type_counts``.

    Raises:
        ModelError: ``type_counts`` enabled with ``n_types == 0``.
    """

    def __init__(self, in_dim: int, heads: HeadsConfig, n_types: int):
        super().__init__()
        self.names = heads.enabled()
        self.layers = nn.ModuleDict()
        self.log_dispersion = nn.ParameterDict()
        for name in self.names:
            if name == "riot":
                self.layers[name] = nn.Linear(in_dim, 1)
            elif name in ("event_count", "fatalities"):
                self.layers[name] = nn.Linear(in_dim, 1)
                if getattr(heads, name).family == "negbin":
                    self.log_dispersion[name] = nn.Parameter(torch.zeros(()))
            elif name == "crowd_size":
                self.layers[name] = CoralHead(in_dim, heads.crowd_size.num_classes)
            elif name == "type_counts":
                if n_types <= 0:
                    raise ModelError(
                        "model.heads.type_counts is enabled but the samples have no event-type "
                        "count columns (n_types=0); set heads.type_counts.enabled: false"
                    )
                self.layers[name] = nn.Linear(in_dim, n_types)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_dim) -> dict of head outputs (see the module docstring)."""
        out: dict[str, torch.Tensor] = {}
        for name, layer in self.layers.items():
            y = layer(x)
            out[name] = y.squeeze(-1) if name in ("riot", "event_count", "fatalities") else y
        for name, p in self.log_dispersion.items():
            out[f"{name}_log_dispersion"] = p.to(x.dtype).expand(x.shape[0])
        return out


def ordinal_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, K-1) cumulative logits -> (B, K) class probabilities (clipped at 0, renormalised)."""
    p_gt = torch.sigmoid(logits.float())
    ones = torch.ones_like(p_gt[..., :1])
    zeros = torch.zeros_like(p_gt[..., :1])
    cum = torch.cat([ones, p_gt, zeros], dim=-1)
    probs = (cum[..., :-1] - cum[..., 1:]).clamp_min(0)
    return probs / probs.sum(-1, keepdim=True).clamp_min(1e-12)


def ordinal_class(logits: torch.Tensor) -> torch.Tensor:
    """(B, K-1) cumulative logits -> (B,) predicted class: the number of P(y > k) above 0.5."""
    return (logits > 0).sum(-1)
