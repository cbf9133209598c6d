"""Metadata fusion blocks: missing-aware input, MLP embedding, FiLM and metadata tokens.

Metadata arrive as a (B, M) float tensor of already-scaled features in which NaN (or +-inf)
means missing. :class:`MissingAwareInput` replaces each missing value by a learned per-feature
value and returns a 0/1 missing indicator next to it, so the network knows what was imputed.
Everything is written with ``torch.where`` (no data-dependent Python branches), so it works under
``torch.compile`` and bf16 autocast.
"""

from __future__ import annotations

import torch
from torch import nn


class MissingAwareInput(nn.Module):
    """NaN/inf -> learned per-feature value, plus a missing indicator per feature.

    Args:
        n_meta: number of metadata features M.
        missing_rate: training only; each value is additionally marked missing with this
            probability, so the learned fill values and indicators see training signal.
    """

    def __init__(self, n_meta: int, missing_rate: float = 0.0):
        super().__init__()
        self.n_meta = n_meta
        self.missing_rate = float(missing_rate)
        self.fill = nn.Parameter(torch.zeros(n_meta))

    def forward(self, meta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(filled, missing)``, both (B, M); ``missing`` is 0/1 in ``filled``'s dtype."""
        missing = ~torch.isfinite(meta)
        if self.training and self.missing_rate > 0:
            missing = missing | (torch.rand_like(meta, dtype=torch.float32) < self.missing_rate)
        filled = torch.where(missing, self.fill.to(meta.dtype).expand_as(meta), meta)
        return filled, missing.to(filled.dtype)


class MetaMLP(nn.Module):
    """Embed ``[filled, missing]`` (B, 2M) into (B, hidden) with a two-layer MLP."""

    def __init__(self, n_meta: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * n_meta, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.out_dim = hidden

    def forward(self, filled: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """(B, M), (B, M) -> (B, hidden)."""
        return self.net(torch.cat([filled, missing], dim=-1))


class FiLM(nn.Module):
    """Per-channel scale and shift of tokens from a metadata embedding, one projection per site.

    ``x * (1 + gamma) + beta`` with ``(gamma, beta) = Linear(cond)``; the projections start at
    zero, so every site is the identity at initialisation.

    Args:
        cond_dim: width of the metadata embedding.
        dim: token width D.
        n_sites: number of places the tokens are modulated.
    """

    def __init__(self, cond_dim: int, dim: int, n_sites: int):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(cond_dim, 2 * dim) for _ in range(n_sites))
        for lin in self.proj:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, site: int) -> torch.Tensor:
        """Modulate tokens ``x`` (B, N, D) at ``site`` with ``cond`` (B, cond_dim)."""
        gamma, beta = self.proj[site](cond).unsqueeze(1).chunk(2, dim=-1)
        return x * (1 + gamma) + beta


class MetaTokenizer(nn.Module):
    """Metadata as extra transformer tokens that attend jointly with the patch tokens.

    With ``n_tokens=0`` each feature j becomes one token
    ``value_j * w_j + missing_j * m_j + e_j`` (``e_j`` identifies the feature, like a position
    embedding). With ``n_tokens=k > 0`` a linear map embeds the whole ``[filled, missing]``
    vector into k tokens (for many features).
    """

    def __init__(self, n_meta: int, dim: int, n_tokens: int = 0):
        super().__init__()
        self.per_feature = n_tokens == 0
        self.n_tokens = n_meta if self.per_feature else n_tokens
        if self.per_feature:
            self.value_weight = nn.Parameter(torch.empty(n_meta, dim))
            self.missing_weight = nn.Parameter(torch.empty(n_meta, dim))
            nn.init.trunc_normal_(self.value_weight, std=0.02)
            nn.init.trunc_normal_(self.missing_weight, std=0.02)
            self.proj = None
        else:
            self.proj = nn.Linear(2 * n_meta, n_tokens * dim)
        self.token_embed = nn.Parameter(torch.empty(1, self.n_tokens, dim))
        nn.init.trunc_normal_(self.token_embed, std=0.02)

    def forward(self, filled: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """(B, M), (B, M) -> (B, n_tokens, D)."""
        if self.proj is None:
            tok = filled.unsqueeze(-1) * self.value_weight + missing.unsqueeze(-1) * self.missing_weight
        else:
            tok = self.proj(torch.cat([filled, missing], dim=-1)).unflatten(-1, (self.n_tokens, -1))
        return tok + self.token_embed
