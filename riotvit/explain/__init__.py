"""Explanations: Shapley drivers per cell (exact efficiency, with a reliability flag), image attribution maps (expected gradients), attention rollout.

``riotvit.explain(model, region, out, ExplainConfig(...))`` predicts a region with its explanations.
"""

from riotvit.lazy import callable_package, lazy_exports

_EXPORTS = {
    "explain": "riotvit.explain.run",
    "ExplainConfig": "riotvit.explain.stage",
    "Explainer": "riotvit.explain.stage",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
callable_package(__name__, "explain")
