"""``riotvit run`` and ``riotvit demo``: whole pipelines from a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import (
    SAMPLE,
    RichReporter,
    config_option,
    console,
    handle_errors,
    out_console,
    out_folder,
    print_json,
)

RUN_EXAMPLES = """
Examples:

  riotvit run pipelines/demo.yaml

  riotvit run pipelines/demo.yaml --from train          (retrain and everything after)

  riotvit run pipelines/nairobi.yaml --set sources.acled=my_acled_export.csv --out runs/nairobi
"""

DEMO_EXAMPLES = """
Examples:

  riotvit demo

  riotvit demo --out /tmp/demo --size-km 8

  riotvit demo --from predict          (keep the model, redo the maps)
"""


def _run(pipeline: Path, out: Path | None, from_stage: str | None, until: str | None, sets: list[str] | None,
         json_out: bool, quiet: bool) -> None:
    """What ``run`` and ``demo`` share: run with progress bars, then the stage table and where to look."""
    from riotvit.pipeline import run_pipeline

    out_folder(out)
    q = quiet or json_out

    def on_stage(stage: str, what: str) -> None:
        if not q:
            console.print(f"[bold cyan]▶ {stage}[/]" if what == "start" else f"[dim]✓ {stage}: unchanged, skipped[/]")

    res = run_pipeline(pipeline, out, from_stage=from_stage, until=until, sets=sets,
                       reporter=lambda stage: RichReporter(quiet=q), on_stage=on_stage)
    _report(res, json_out)
    if not json_out:
        _where(res.run)


def _report(res, json_out: bool) -> None:
    from rich.table import Table

    if json_out:
        print_json({"run": str(res.run), "seconds": round(res.seconds, 1),
                    "stages": [s.__dict__ for s in res.stages]})
        return
    t = Table(title=f"riotvit run {res.run} ({res.seconds:.0f} s)")
    for c in ("stage", "status", "seconds", "summary"):
        t.add_column(c)
    for s in res.stages:
        summ = ", ".join(f"{k} {v}" for k, v in s.summary.items() if k != "seconds")
        t.add_row(s.name, s.status, f"{s.seconds:.1f}", summ[:110])
    out_console.print(t)


def _where(run: Path) -> None:
    from rich.markdown import Markdown

    metrics = run / "model" / "metrics.md"
    if metrics.is_file():
        out_console.print(Markdown(metrics.read_text(encoding="utf-8")))
    look = [
        (run / "riotvit.qgs", "QGIS project: risk map, cells with SHAP drivers, drivers.tif over the imagery"),
        (run / "model" / "model_card.md", "model card: data, metrics against baselines, limits, intended use"),
        (run / "model" / "metrics.md", "evaluation at the test origin (or per held-out spatial fold), next to the baselines"),
        (run / "model" / "history.png", "loss and validation AUPR per epoch"),
        (run / "model" / "reliability.png", "reliability diagram of the calibrated probabilities"),
        (run / "predict" / "shap_bar.png", "mean |SHAP| per driver"),
        (run / "predict" / "shap_summary.png", "SHAP beeswarm of the metadata drivers"),
        (run / "predict" / "run.json", "what the maps were made from"),
    ]
    console.print("[bold]Where to look[/]")
    for p, what in look:
        if p.exists():
            console.print(f"  {p}  [dim]{what}[/]", highlight=False)


@handle_errors
def run_command(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML (see pipelines/).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. \\[default: the file's out, else runs/NAME]")] = None,
    from_stage: Annotated[str | None, typer.Option("--from", help="Rerun from this stage on: sample, tile, join, train, evaluate, predict, explain.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after this stage (e.g. join: build the training table only).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a pipeline key: --set sources.acled=my.csv (repeat).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a declarative pipeline; stages whose inputs and config are unchanged are skipped.

    The run folder keeps manifest.json: per stage, its config, the SHA-256 of its inputs, its outputs and timing.
    """
    _run(pipeline, out, from_stage, until, set_, json_out, quiet)


@handle_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/demo"),
    size_km: Annotated[float | None, config_option(SAMPLE, "size_km")] = None,
    from_stage: Annotated[str | None, typer.Option("--from", help="Rerun from this stage on (sample, tile, join, train, evaluate, predict).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The whole pipeline on the embedded synthetic city, in about 5 minutes on a 2-core CPU.

    sample -> tile -> join -> train (tiny ViT, 5-fold spatial CV) -> evaluate -> predict the city -> explain. Everything lands in one folder with a QGIS project; runs pipelines/demo.yaml.
    """
    from riotvit.config import project_file

    _run(project_file("pipelines/demo.yaml"), out, from_stage, None, [f"sample.size_km={size_km}"] if size_km is not None else [],
         json_out, quiet)
