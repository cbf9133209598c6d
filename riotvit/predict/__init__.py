"""``riotvit predict``: stream a region through a model bundle into risk maps.

Modules: ``region`` (a region by catalog name, bbox or vector file), ``plan`` (imagery, grid and
blocks for a region; ``PredictConfig``), ``runner`` (the model on batches, test-time views) and
``predictor`` (the stage). Its outputs are written by ``riotvit.publish``. See
``docs/design.md``.
"""

from riotvit.lazy import callable_package, lazy_exports

_EXPORTS = {
    "predict": "riotvit.predict.predictor",
    "PredictResult": "riotvit.predict.predictor",
    "PredictConfig": "riotvit.predict.plan",
    "Region": "riotvit.predict.region",
    "resolve_region": "riotvit.predict.region",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
callable_package(__name__, "predict")
