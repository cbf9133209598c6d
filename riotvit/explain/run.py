"""``riotvit.explain(...)``: a prediction with its explanations, as one library call (what ``riotvit explain`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from riotvit.explain.stage import ExplainConfig, Explainer
from riotvit.predict.predictor import predict


def explain(model: str | Path, region: Any, out: str | Path, config: Any = None, *, predict_config: Any = None,
            **predict_options: Any):
    """Predict a region and explain every cell: Shapley drivers, image attribution, attention.

    Args:
        model: the model bundle folder.
        region: a :class:`riotvit.predict.Region` (see :func:`riotvit.predict.resolve_region`).
        out: the prediction folder to write.
        config: an :class:`ExplainConfig` (defaults: drivers with two seeds, no attention map).
        predict_config: a :class:`riotvit.predict.PredictConfig`.
        **predict_options: passed to :func:`riotvit.predict` (``imagery``, ``acled``, ``census``, ...).

    Returns:
        ``(PredictResult, summary)``: the prediction and the explanation's summary (completeness,
        seed agreement, reliable share), as ``run.json`` records it.
    """

    explainer = Explainer(model, config or ExplainConfig())
    result = predict(model, region, out, predict_config, explain=explainer, **predict_options)
    return result, explainer.summary()
