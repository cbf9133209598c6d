"""Explanations: Shapley drivers per cell (exact efficiency, with a reliability flag), image attribution maps (expected gradients), attention rollout."""
