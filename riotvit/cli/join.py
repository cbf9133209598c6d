"""``riotvit join``: labels and metadata per crop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import (
    JOIN,
    PIPELINE,
    RichReporter,
    config_option,
    console,
    given,
    handle_errors,
    labels,
    out_file,
    print_json,
)

EXAMPLES = """
Examples:

  riotvit join runs/tiles --acled data/sample/acled.csv --census data/sample/wards.gpkg --out runs/samples.parquet

  riotvit join runs/tiles --acled sample_acled --census sample_wards --out runs/samples.parquet      (catalog ids)

  riotvit join runs/nairobi --acled my_acled_export.xlsx --census kenya_counties --population-raster worldpop_nairobi --out runs/nairobi.parquet --horizon-days 180
"""

P_LABEL, P_CENSUS, P_SPLIT, P_RUN = "Labels", "Census", "Splits", "Run"


def _csv(v: str | None) -> list[str] | None:
    return [s.strip() for s in v.split(",") if s.strip()] if v else None


@handle_errors
def join_command(
    tileset: Annotated[Path, typer.Argument(help="Tile set folder made by riotvit tile.")],
    acled: Annotated[str, typer.Option(help="ACLED export (CSV or .xlsx) or a catalog id.", rich_help_panel=P_LABEL)],
    out: Annotated[Path, typer.Option("--out", "-o", help="samples.parquet to write.", rich_help_panel=P_RUN)],
    census: Annotated[str | None, typer.Option(help="Census polygons (GPKG/GeoJSON/SHP) or a catalog id.", rich_help_panel=P_CENSUS)] = None,
    population_raster: Annotated[str | None, typer.Option(help="Population raster for dasymetric interpolation (file or catalog id).", rich_help_panel=P_CENSUS)] = None,
    extensive: Annotated[str | None, config_option(JOIN, "census.extensive", note="Comma-separated.", rich_help_panel=P_CENSUS)] = None,
    intensive: Annotated[str | None, config_option(JOIN, "census.intensive", note="Comma-separated.", rich_help_panel=P_CENSUS)] = None,
    population_column: Annotated[str | None, config_option(JOIN, "census.population", rich_help_panel=P_CENSUS)] = None,
    lead_days: Annotated[int | None, config_option(JOIN, "lead_days", rich_help_panel=P_LABEL)] = None,
    horizon_days: Annotated[int | None, config_option(JOIN, "horizon_days", rich_help_panel=P_LABEL)] = None,
    riot_types: Annotated[str | None, config_option(JOIN, "riot_event_types", note="Comma-separated.", rich_help_panel=P_LABEL)] = None,
    block_m: Annotated[float | None, config_option(JOIN, "block_m", rich_help_panel=P_SPLIT)] = None,
    n_folds: Annotated[int | None, config_option(JOIN, "n_folds", rich_help_panel=P_SPLIT)] = None,
    buffer_m: Annotated[float | None, config_option(JOIN, "buffer_m", rich_help_panel=P_SPLIT)] = None,
    temporal_split: Annotated[str | None, config_option(JOIN, "temporal_split", note="YYYY-MM-DD.", rich_help_panel=P_SPLIT)] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with any join option (see configs/join.yaml).", rich_help_panel=P_RUN)] = None,
    catalog: Annotated[Path | None, config_option(PIPELINE, "catalog", rich_help_panel=P_RUN)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.", rich_help_panel=P_RUN)] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.", rich_help_panel=P_RUN)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print what was assumed while reading.", rich_help_panel=P_RUN)] = False,
) -> None:
    """Attach ACLED event history and census data to each crop, as labels and as metadata.

    Writes samples.parquet: per crop, targets (riot, event_count, fatalities, crowd_size, counts per event type) in the window [t + lead, t + lead + horizon) after the acquisition date t, history features from before t only, census values interpolated onto the crop, and spatial block cross-validation folds.
    """
    from riotvit.catalog import resolve_source
    from riotvit.config import build_config
    from riotvit.io import refuse_existing
    from riotvit.join.stage import JoinConfig, join, with_census_roles
    from riotvit.tile.source import parse_date

    out_file(out)
    refuse_existing(out, overwrite, "samples table")
    acled_path, _ = resolve_source(acled, "acled", catalog)
    census_path, entry = (resolve_source(census, "census", catalog) if census else (None, None))
    pop_path = resolve_source(population_raster, "raster", catalog)[0] if population_raster else None
    options = given(
        lead_days=lead_days, horizon_days=horizon_days, riot_event_types=_csv(riot_types), block_m=block_m,
        n_folds=n_folds, buffer_m=buffer_m,
        temporal_split=parse_date(temporal_split, "--temporal-split") if temporal_split else None,
    )
    cfg = build_config(JoinConfig, config, options, labels=labels(options, riot_event_types="--riot-types"))
    cfg = with_census_roles(cfg, entry, census_path, given(extensive=_csv(extensive), intensive=_csv(intensive),
                                                           population=population_column))
    rep = RichReporter(quiet=json_out)
    res = join(tileset, acled_path, census_path, out, cfg, population_raster=pop_path, overwrite=overwrite, reporter=rep)
    if json_out:
        print_json({"samples": str(res.path), "rows": res.n_rows, "positives": res.positives, "features": res.features,
                    "events": res.events, "folds": res.folds, "warnings": res.warnings, "seconds": round(res.seconds, 2)})
        return
    console.print(f"[green]wrote[/] {res.path} in {res.seconds:.1f} s")
    for line in res.summary_lines():
        console.print("  " + line, highlight=False)
    if verbose:
        for line in res.acled_report.lines() + res.census_lines:
            console.print("  " + line, highlight=False)
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


