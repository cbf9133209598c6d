"""Models: timm backbone, band adaptation, metadata fusion, multi-task heads and losses.

The configs (``ModelConfig``, ``LossConfig``) and band-name helpers import without torch; the
torch-based names are imported lazily on first access so ``riotvit --help`` stays fast.

    from riotvit.models import ModelConfig, create_model, MultiTaskLoss
    model = create_model(ModelConfig(), ["blue", "green", "red", "nir"], n_meta=12, n_types=6)
    out = model(image, meta)          # {'riot': (B,), 'event_count': (B,), ..., 'features': (B, D)}
    losses = MultiTaskLoss(model.config)(out, targets)   # {'loss': ..., 'riot': ..., ...}
"""

from __future__ import annotations

import importlib
from typing import Any

from riotvit.models.bands import BAND_ALIASES, canonical_band, match_bands
from riotvit.models.config import (
    HEAD_NAMES,
    BinaryHeadConfig,
    CountHeadConfig,
    HeadsConfig,
    LossConfig,
    ModelConfig,
    OrdinalHeadConfig,
    TypeCountsHeadConfig,
)

_LAZY = {
    "RiotModel": "riotvit.models.model",
    "create_model": "riotvit.models.model",
    "model_summary": "riotvit.models.model",
    "create_backbone": "riotvit.models.backbone",
    "load_pretrained": "riotvit.models.backbone",
    "read_state_dict": "riotvit.models.backbone",
    "LoadReport": "riotvit.models.backbone",
    "MultiTaskLoss": "riotvit.models.losses",
    "compute_class_weights": "riotvit.models.losses",
    "ordinal_probabilities": "riotvit.models.heads",
    "ordinal_class": "riotvit.models.heads",
}

__all__ = [
    "BAND_ALIASES",
    "HEAD_NAMES",
    "BinaryHeadConfig",
    "CountHeadConfig",
    "HeadsConfig",
    "LossConfig",
    "ModelConfig",
    "OrdinalHeadConfig",
    "TypeCountsHeadConfig",
    "canonical_band",
    "match_bands",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'riotvit.models' has no attribute {name!r}")
