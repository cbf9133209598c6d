"""``riotvit train`` and ``riotvit evaluate``: a timm ViT with metadata fusion, evaluated honestly.

Modules:

- ``config``: ``TrainConfig`` (optimiser, schedule, sampler, evaluation protocol).
- ``models``: timm backbone, band adaptation, metadata fusion, multi-task heads and losses.
- ``data`` and ``augment``: batches from the chip store, normalisation, dihedral views.
- ``loop``: the epoch loop with checkpoints and early stopping.
- ``trainer``: the stage (``train``): folds, baselines, calibration, the bundle.
- ``ddp``, ``launch``, ``__main__``: DDP training on several processes or GPUs (``torchrun -m
  riotvit.train``, ``riotvit train --nproc N``, ``train_distributed``).
- ``evaluate``: ``evaluate_bundle`` re-scores a bundle on its (or another) tile set.
- ``splits``: the train / validation / test rows every evaluation shares (spatial, temporal).
- ``metrics``, ``baselines``, ``calibration``: scores, the prevalence and history+census
  baselines, temperature/isotonic calibration stored as JSON.
- ``plots`` and ``report``: reliability diagrams, curves, ``metrics.json``/``metrics.md``.
- ``bundle``: the model bundle (safetensors + JSON; never pickle).

See ``docs/design.md``.
"""

from riotvit.lazy import callable_package, lazy_exports

_EXPORTS = {
    "train": "riotvit.train.trainer",
    "train_distributed": "riotvit.train.launch",
    "TrainResult": "riotvit.train.trainer",
    "TrainConfig": "riotvit.train.config",
    "evaluate_bundle": "riotvit.train.evaluate",
    "Bundle": "riotvit.train.bundle",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
callable_package(__name__, "train")
