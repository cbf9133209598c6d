"""``riotvit score``: a prediction folder against the events that arrived later (thin layer over riotvit.score)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import console, handle_errors, out_console, print_json

EXAMPLES = """
Examples:

  riotvit score runs/dhaka/predict --acled acled_bangladesh_2024.csv

  riotvit score runs/predict --acled later_export.csv --event-types Riots,Protests

  riotvit score runs/predict --acled later_export.csv --json
"""


@handle_errors
def score_command(
    prediction: Annotated[Path, typer.Argument(help="Prediction folder (riotvit predict): run.json and cells.gpkg.")],
    acled: Annotated[Path, typer.Option(help="ACLED export covering the prediction's forecast window, e.g. last quarter's events.")],
    event_types: Annotated[str | None, typer.Option(
        help="Comma-separated ACLED event types that count, e.g. Riots,Protests (default: the model's label).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score a forecast map against what happened: AUPR, AUROC, Brier and skill against persistence and climatology.

    Counts the export's events in each cell inside the forecast window (matched as riotvit join
    matches labels), writes score.json into the prediction folder and prints the table. When the
    data are too thin for a meaningful AUPR (few positive cells or few distinct event locations),
    it says so.
    """
    from riotvit.score import score_prediction

    types = [t.strip() for t in event_types.split(",") if t.strip()] if event_types else None
    rep = score_prediction(prediction, acled, event_types=types)
    if json_out:
        print_json(rep.to_dict())
        return
    from rich.table import Table

    w = rep.window
    table = Table(title=f"{w.label} (as of {w.as_of}); {rep.cells} cells, {rep.positive_cells} with an event")
    for col in ("model", "AUPR", "AUROC", "Brier", "BSS vs persistence", "BSS vs climatology"):
        table.add_column(col, justify="left" if col == "model" else "right")
    fmt = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    for name, m in (("riotvit", rep.model), ("persistence", rep.persistence)):
        table.add_row(name, fmt(m["aupr"]), fmt(m["auroc"]), fmt(m["brier"]), fmt(m["bss_persistence"]),
                      fmt(m["bss_climatology"]))
    table.add_row("prevalence (AUPR of chance)", fmt(rep.positive_cells / rep.cells if rep.cells else None), "0.500", "", "", "")
    out_console.print(table)
    console.print(f"export {rep.export_range[0]}..{rep.export_range[1]}: {rep.events_in_window} events in the window at "
                  f"{rep.event_locations} distinct locations; climatology {rep.climatology:.3f}")
    console.print(("[yellow]" if rep.thin.thin else "") + rep.thin.sentence)
    for line in rep.warnings:
        console.print(f"[yellow]warning:[/] {line}")
    console.print(f"[green]wrote[/] {rep.prediction / 'score.json'}")
