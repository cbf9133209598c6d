"""Models: timm backbone, band adaptation, metadata fusion, multi-task heads and losses.

The configs (``ModelConfig``, ``LossConfig``) and band-name helpers import without torch; the
torch-based names are imported lazily on first access so ``riotvit --help`` stays fast.

    from riotvit.train.models import ModelConfig, create_model, MultiTaskLoss
    model = create_model(ModelConfig(), ["blue", "green", "red", "nir"], n_meta=12, n_types=6)
    out = model(image, meta)          # {'riot': (B,), 'event_count': (B,), ..., 'features': (B, D)}
    losses = MultiTaskLoss(model.config)(out, targets)   # {'loss': ..., 'riot': ..., ...}
"""

from __future__ import annotations

from riotvit.lazy import lazy_exports
from riotvit.train.models.bands import BAND_ALIASES, canonical_band, match_bands
from riotvit.train.models.config import (
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
    "RiotModel": "riotvit.train.models.model",
    "create_model": "riotvit.train.models.model",
    "model_summary": "riotvit.train.models.model",
    "create_backbone": "riotvit.train.models.backbone",
    "load_pretrained": "riotvit.train.models.backbone",
    "read_state_dict": "riotvit.train.models.backbone",
    "LoadReport": "riotvit.train.models.backbone",
    "MultiTaskLoss": "riotvit.train.models.losses",
    "compute_class_weights": "riotvit.train.models.losses",
    "ordinal_probabilities": "riotvit.train.models.heads",
    "ordinal_class": "riotvit.train.models.heads",
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


__getattr__ = lazy_exports(__name__, _LAZY)
