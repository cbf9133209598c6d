"""Explanations: SHAP values (expected gradients) per cell, image attribution maps, attention rollout."""
