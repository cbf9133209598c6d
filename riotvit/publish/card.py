"""``model_card.md``: what the model is, what it was trained on, how well it does, and how not to use it.

Generated from the run's own records (bundle.json, metrics), so it cannot drift from the model.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from riotvit.io import atomic_file
from riotvit.labels import feature_label, label
from riotvit.train.meta import BundleMeta
from riotvit.window import forecast_window


def _fmt(v: Any, d: int = 3) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if f != f else f"{f:.{d}f}"


def _metric(summary: dict, model: str, metric: str) -> str:
    m = summary.get(model, {}).get("riot", {}).get(metric)
    if not m:
        return "–"
    sd = m.get("std")
    return _fmt(m.get("mean")) + (f" ± {_fmt(sd)}" if sd is not None and sd == sd and m.get("n", 1) > 1 else "")


def render_model_card(meta: BundleMeta, table: Any) -> str:
    """The model card's Markdown, from the bundle's ``bundle.json`` (``table`` is unused: the summary is in it)."""
    join = meta.provenance.join
    acled, census, jcfg, folds = join.acled, join.census, join.config, join.folds
    summary = meta.metrics
    tr = meta.training
    cfg = meta.config
    targets = meta.targets
    names = meta.features.names
    lines = [
        "# Model card: riotvit riot-risk model",
        "",
        "## Intended use",
        "Area-level riot risk per 672 m ground cell, for conflict early warning, prevention and humanitarian planning "
        "(where to look, where to prepare, where to send support). The model describes **places, never individuals**.",
        "",
        "**Not for:** decisions about individuals or groups of people (policing, surveillance, profiling, targeting, "
        "restricting movement or assembly), legal or punitive decisions, or any use without human review. A high "
        "score is a prompt for attention, not evidence that anything will happen.",
        "",
        "## Model",
        f"- Backbone `{cfg['model']['backbone']}` (img {cfg['model']['img_size']} px, "
        f"{meta.model.get('params_total', '?'):,} parameters), fusion `{cfg['model']['fusion']}`, heads: "
        f"{', '.join(targets.heads)}.",
        f"- Dates seen per crop: {_temporal_text(cfg['model'].get('temporal', 'none'))}.",
        f"- Bands: {', '.join(meta.bands)}; metadata features: {len(names)} "
        f"({sum(n.startswith('census_') for n in names)} census, "
        f"{sum(n.startswith('hist_') for n in names)} event history).",
        f"- Trained {tr.epochs_run} epochs (best {tr.best_epoch}) on {tr.device}"
        + (" with bf16" if tr.bf16 else "") + f", {tr.images_per_s:.0f} images/s.",
        "",
        "## Data",
        "| source | file | date / range | licence |",
        "|---|---|---|---|",
    ]
    for s in meta.provenance.tileset.sources:
        lines.append(f"| imagery `{s.id}` | {Path(s.path).name} | {s.date} | see the data catalog entry |")
    lines.append(f"| ACLED events ({acled.variant}) | {Path(acled.path).name} | "
                 f"{' to '.join(acled.date_range)} | ACLED terms of use (attribution; no redistribution) |")
    if census is not None:
        lines.append(f"| census ({census.method} interpolation) | {Path(census.path).name} | – | "
                     "see the data catalog entry |")
    lines += [
        "",
        f"Labels: riot = any event of type {', '.join(targets.riot_event_types)} in the "
        f"{targets.horizon_days} days starting {targets.lead_days} days after each image date "
        f"(windows {', '.join('..'.join(w) for w in targets.label_windows or [])}), inside the cell grown "
        "by the event's positional uncertainty. History features use only events certainly before the image date.",
        "",
    ]
    lines += window_section(meta)
    lines += forecast_section(meta) if meta.forecast else spatial_section(meta, summary, folds, table)
    lines += [
        "",
        "## Known limitations",
        "- **ACLED reporting bias**: events are recorded from media and partner reports; places with less coverage "
        "(rural areas, places with restricted press) look calmer than they are, and the model learns that bias.",
        f"- **Geo-precision**: {_precision_text(jcfg.get('acled') or {})} ACLED geocodes most urban events to a "
        "handful of neighbourhood points, so at 672 m a cell's label says 'near a reported point', not 'in this cell'.",
        "- **Imagery date mismatch**: the image shows one date; labels cover the following window. Change after the "
        "image date (new settlements, cleared markets) is not seen" + (
            "." if cfg["model"].get("temporal", "none") == "none" else "; change since the previous image date is."),
        "- **Transfer**: a model trained on one city or sensor may not transfer to another; re-evaluate on local "
        "held-out blocks before use. Scores are relative risk, calibrated only for the training area's base rate.",
        "- **Small data**: few riot cells make the metrics noisy; read them with the fold-to-fold spread.",
        "",
        f"riotvit {meta.riotvit_version}; bundle format v{meta.format_version}.",
    ]
    return "\n".join(lines) + "\n"


def spatial_section(meta: BundleMeta, summary: dict, folds: Any, table: Any = None) -> list[str]:
    """Evaluation of a model trained at one date: spatial block cross-validation."""
    lines = [
        "## Evaluation",
        f"Spatial block cross-validation at one date (no later origin to test forward in time): {folds.n} folds of "
        f"{folds.block_m:g} m blocks with a {folds.buffer_m:g} m buffer ring excluded from training around held-out "
        f"blocks. Held-out split: {meta.split.name} ({meta.split.n_test} cells; validation fold "
        f"{meta.split.val_fold} with {meta.split.n_val} cells). Probabilities calibrated on validation "
        f"data ({meta.calibration.get('method', 'none')}); decision threshold {meta.threshold:.3f} chosen on "
        "validation data.",
        "",
        "| model | AUPR | AUROC | Brier | ECE |",
        "|---|---|---|---|---|",
    ]
    for model in ("riotvit", "history_census", "prevalence"):
        if model in summary:
            lines.append(f"| {model} | {_metric(summary, model, 'aupr')} | {_metric(summary, model, 'auroc')} | "
                         f"{_metric(summary, model, 'brier')} | {_metric(summary, model, 'ece')} |")
    thin = table.thin_data() if hasattr(table, "thin_data") else None
    if thin is not None and thin.thin:
        lines += ["", f"**{thin.sentence}**"]
    return lines + ["", "Full per-fold table: `metrics.md`; reliability diagram: `reliability.png`; training curves: "
                        "`history.png`."]


def forecast_section(meta: BundleMeta) -> list[str]:
    """Evaluation of a forecast bundle: rolling origins x spatial blocks, every baseline, the verdicts."""
    fc, summary = meta.forecast, meta.metrics
    lines = [
        "## Forecast and evaluation",
        f"**Forecast:** P(>= 1 riot) in the {fc['horizon_days']} days starting {fc['lead_days']} days after the image "
        "date, per cell.",
        f"**Protocol:** {fc['protocol']}. Test origin {fc['origin']}; the {len(fc['members'])} models of the ensemble "
        f"each held out one block fold and trained only on origins "
        f"{', '.join(fc['members'][0]['train_origins'])}, whose label windows end by the test origin. "
        "The image enters as a residual on the history + census log-odds (the baseline sets the forecast's level, "
        "which follows the event history from one origin to the next); that stack and the calibration were fitted "
        "on the validation fold of the latest training origin. See `metrics.md` for every origin.",
        f"**Shipped model:** {fc['selected']}: {fc['why']}.",
        "",
        "| scope | model | AUPR | AUROC | Brier | BSS vs persistence | ECE | count CRPS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scope, models in summary.get("scores", {}).items():
        for model, m in models.items():
            lines.append(f"| {scope} | {model} | {_fmt(m.get('aupr'))} | {_fmt(m.get('auroc'))} | {_fmt(m.get('brier'))} | "
                         f"{_fmt(m.get('bss_persistence'))} | {_fmt(m.get('ece'))} | {_fmt(m.get('crps'))} |")
    u = summary.get("uncertainty") or {}
    if u:
        lines += ["", f"Uncertainty: the ensemble's spread; the most uncertain fifth of cells has a mean |error| "
                      f"{_fmt(u.get('top_quintile_abs_error'))} against {_fmt(u.get('bottom_quintile_abs_error'))} "
                      f"for the least uncertain fifth (ratio {_fmt(u.get('ratio'), 2)}); the 80% interval of riot counts "
                      f"covers {_fmt(100 * u.get('count_coverage_80', float('nan')), 1)}% of cells."]
    lines += ["", "**Verdicts** (AUPR, same crops):", *(f"- {v}" for v in summary.get("verdicts", []))]
    return lines


def _temporal_text(mode: str) -> str:
    return {"none": "one (the image date)",
            "stack": "two (the image date and the previous one, as extra bands)",
            "tokens": "two (the image date and the previous one, as two token sets with time embeddings)"}.get(mode, mode)


def _precision_text(acled: dict) -> str:
    """What the join did with ACLED's geo-precision codes (its ``exclude_geo_precision`` and radii)."""
    excluded = sorted(int(p) for p in acled.get("exclude_geo_precision", [3]))
    radii = acled.get("geo_precision_radius_m", {}) or {}
    kept = [p for p in (1, 2) if p not in excluded]
    parts = [f"precision {', '.join(map(str, excluded))} events are left out of the labels"] if excluded else []
    parts += [f"precision {p} events mark every cell within {radii.get(str(p), radii.get(p, 2000 if p == 2 else 0))} m"
              for p in kept if p != 1]
    if 1 in kept:
        parts.append("precision 1 events mark the cell they fall in (plus their stated radius)")
    return "; ".join(parts).capitalize() + "."


def _example_origin(meta: BundleMeta) -> date | None:
    """The forecast origin the card's example window starts from: the test origin, else the last imagery date."""
    fc = meta.forecast or {}
    for text in (fc.get("origin"), *(s.date for s in reversed(meta.provenance.tileset.sources))):
        try:
            return date.fromisoformat(str(text)[:10])
        except (TypeError, ValueError):
            continue
    return None


def window_section(meta: BundleMeta) -> list[str]:
    """What a prediction's probability is about (the forecast window) and the features in words."""
    lines = ["## What a prediction states"]
    origin = _example_origin(meta)
    if origin is not None:
        w = forecast_window(meta, origin)
        lines.append(f"A map predicted from imagery of date t gives, per cell, P(≥ 1 {w.noun}) from t + {w.lead_days} "
                     f"to t + {w.lead_days + w.horizon_days - 1} days (event types: {', '.join(w.event_types)}). "
                     f"For imagery of {w.as_of.isoformat()}: **{w.label}**. Every output of `riotvit predict` states "
                     "its window (raster tags, run.json, layer names, cell attributes).")
    names = meta.features.names
    if names:
        lines += ["", "| feature | meaning | unit |", "|---|---|---|"]
        for n in names:
            f = feature_label(n)
            lines.append(f"| `{n}` | {label(n)} | {f.unit or '–'} |")
    return [*lines, ""]


def write_model_card(run_dir: Path, meta: BundleMeta, table: Any) -> Path:
    """Write ``model_card.md`` into the bundle folder, atomically."""
    path = Path(run_dir) / "model_card.md"
    with atomic_file(path) as tmp:
        tmp.write_text(render_model_card(meta, table))
    return path
