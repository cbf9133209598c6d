"""Training and honest evaluation: metrics, baselines, calibration, plots and the metrics report.

Modules (import the one you need; none of them imports torch):

- ``metrics``: AUROC, AUPR, Brier, F1 at a threshold, ECE with reliability bins, count and
  ordinal metrics, per-head and per-group evaluation.
- ``calibration``: temperature and isotonic calibration stored as plain JSON (no pickle).
- ``baselines``: the prevalence and history-plus-census baselines, and the fold row selection
  (spatial blocks with buffer exclusion, temporal split) shared with the trainer.
- ``plots``: reliability diagram, training curves and precision-recall curves (PNG, Agg).
- ``report``: the per-fold metrics table written as ``metrics.json`` and ``metrics.md``.
"""
