"""The image-free riotvit: the same metadata branch and riot head, without the image.

It measures what the image adds: riotvit's missing-aware input and metadata MLP (the ``late``
fusion branch, same width) followed by a linear riot head, trained on the same rows with the same
balanced binary cross-entropy, early-stopped on the same validation crops. Full-batch AdamW on a
small network: it trains in about a second on a CPU, deterministically for a seed, so
``riotvit evaluate`` can retrain it instead of storing it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from riotvit.train.models.fusion import MetaMLP, MissingAwareInput


class MetaOnly(nn.Module):
    """Missing-aware input -> metadata MLP -> riot logit."""

    def __init__(self, n_meta: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.inp = MissingAwareInput(n_meta)
        self.mlp = MetaMLP(n_meta, hidden, dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, meta: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(*self.inp(meta))).squeeze(-1)


def fit_meta_only(meta: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, hidden: int = 64,
                  seed: int = 0, epochs: int = 300, patience: int = 30) -> MetaOnly | None:
    """Train on rows ``train``, keep the epoch with the lowest validation loss (None without features)."""
    if meta is None or meta.shape[1] == 0:
        return None
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MetaOnly(meta.shape[1], hidden)
    x = torch.from_numpy(np.ascontiguousarray(meta, dtype=np.float32))
    t = torch.from_numpy(np.asarray(y, dtype=np.float32))
    tr, va = torch.from_numpy(np.flatnonzero(train)), torch.from_numpy(np.flatnonzero(val))
    pos = float(t[tr].sum())
    weight = torch.tensor((len(tr) - pos) / max(pos, 1.0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    best, best_state, wait = float("inf"), None, 0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        # dropout draws from the module's own generator so the run is reproducible
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            loss = loss_fn(model(x[tr]), t[tr])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            v = float(loss_fn(model(x[va]), t[va])) if len(va) else float(loss)
        if v < best - 1e-6:
            best, best_state, wait = v, {k: p.clone() for k, p in model.state_dict().items()}, 0
        else:
            wait += 1
            if wait >= patience:
                break
    model.load_state_dict(best_state)
    return model.eval()


@torch.no_grad()
def meta_only_logits(model: MetaOnly | None, meta: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """Riot logits for ``rows`` (None when there is no model)."""
    if model is None:
        return None
    return model(torch.from_numpy(np.ascontiguousarray(meta[rows], dtype=np.float32))).numpy().astype(np.float64)
