"""``riotvit predict``: risk maps for a region."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import (
    CLUSTER,
    PANEL_SCALE,
    PIPELINE,
    PREDICT,
    RichReporter,
    config_option,
    console,
    given,
    handle_errors,
    labels,
    out_folder,
    print_json,
)

EXAMPLES = """
Examples:

  riotvit predict --model runs/model --region synth_city --out runs/predict

  riotvit predict --model runs/model --region 38.40,-2.70,38.46,-2.65 --imagery data/sample/city.tif --out runs/east

  riotvit predict --model runs/nbo --region Nairobi --imagery scene.tif --acled my_export.csv --out runs/nairobi --overlap 0.5

  riotvit predict --model runs/model --region area.geojson --out runs/area --explain

  riotvit predict --model runs/nbo --region Nairobi --imagery scene.tif --out runs/nbo_admin --admin kenya_counties --admin-id COUNTY

      (admin.gpkg + admin.csv: expected riots per county with an interval, mean/max probability, coverage, drivers)

  riotvit predict --model runs/temporal --region synth_city --imagery city.tif --previous-imagery city_2021-06-15.tif --out runs/t

      (a model trained with model.temporal: stack or tokens compares each crop with the previous date)

  riotvit predict --model runs/model --region synth_city --out runs/predict --workers 4

      (the region's blocks on a local Dask cluster of 4 worker processes; the same maps as one process)

  riotvit predict --model runs/nbo --region Kenya --imagery scene.tif --out runs/kenya --scheduler tcp://10.0.0.5:8786

      (on a running Dask scheduler; its workers must see the model, the imagery and --out at the same paths)

Outputs: risk.tif, cells.gpkg, riotvit.qgs with a print layout, map.png/map.pdf (the same page without
QGIS), catalog.json (STAC: the window as start/end_datetime, one asset per output), run.json.
"""

P_IN, P_META, P_RUN = "Input", "Metadata", "Run"


@handle_errors
def predict_command(
    model: Annotated[Path, typer.Option(help="Model bundle folder (riotvit train).", rich_help_panel=P_IN)],
    region: Annotated[str, typer.Option(help="Region: a catalog name (e.g. a county), minx,miny,maxx,maxy, or a GeoJSON/GPKG/SHP file.", rich_help_panel=P_IN)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Prediction folder to write.", rich_help_panel=P_RUN)],
    region_crs: Annotated[str, typer.Option(help="CRS of a bbox region.", rich_help_panel=P_IN)] = "EPSG:4326",
    imagery: Annotated[list[str] | None, typer.Option(help="Imagery files or catalog ids (repeat); default: catalog rasters covering the region.", rich_help_panel=P_IN)] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names of the imagery.", rich_help_panel=P_IN)] = None,
    date: Annotated[str | None, config_option(PREDICT, "date", note="YYYY-MM-DD.", rich_help_panel=P_IN)] = None,
    acled: Annotated[str | None, typer.Option(help="ACLED export for history features (default: the one the model was trained with).", rich_help_panel=P_META)] = None,
    census: Annotated[str | None, typer.Option(help="Census layer (default: the one the model was trained with).", rich_help_panel=P_META)] = None,
    population_raster: Annotated[str | None, typer.Option(help="Population raster for dasymetric census values.", rich_help_panel=P_META)] = None,
    metadata: Annotated[str | None, config_option(PREDICT, "metadata", rich_help_panel=P_META)] = None,
    overlap: Annotated[float | None, config_option(PREDICT, "overlap", rich_help_panel=P_RUN)] = None,
    tta: Annotated[int | None, config_option(PREDICT, "tta", rich_help_panel=P_RUN)] = None,
    batch_size: Annotated[int | None, config_option(PREDICT, "batch_size", rich_help_panel=P_RUN)] = None,
    device: Annotated[str | None, config_option(PREDICT, "device", rich_help_panel=P_RUN)] = None,
    max_cells: Annotated[int | None, config_option(PREDICT, "max_cells", rich_help_panel=P_RUN)] = None,
    previous_imagery: Annotated[list[str] | None, typer.Option(help="The same area at the image date before (repeat for a mosaic): needed by a model trained with model.temporal.", rich_help_panel=P_IN)] = None,
    admin: Annotated[str | None, typer.Option(help="Admin units to summarise by (wards, districts, P-codes): a vector file or catalog id; writes admin.gpkg and admin.csv.", rich_help_panel=P_META)] = None,
    admin_id: Annotated[str | None, typer.Option(help="The admin layer's id column (default: the first column unique per unit).", rich_help_panel=P_META)] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Also write SHAP drivers and drivers.tif (see riotvit explain); runs in one process (not with --workers/--scheduler).", rich_help_panel=P_RUN)] = False,
    workers: Annotated[int | None, config_option(CLUSTER, "workers", rich_help_panel=PANEL_SCALE)] = None,
    scheduler: Annotated[str | None, config_option(CLUSTER, "scheduler", rich_help_panel=PANEL_SCALE)] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Predict even a region above --max-cells.", rich_help_panel=P_RUN)] = False,
    config: Annotated[Path | None, typer.Option(help="YAML with any predict option.", rich_help_panel=P_RUN)] = None,
    catalog: Annotated[Path | None, config_option(PIPELINE, "catalog", rich_help_panel=P_RUN)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing prediction folder.", rich_help_panel=P_RUN)] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.", rich_help_panel=P_RUN)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=P_RUN)] = False,
) -> None:
    """Apply a model to a region: risk.tif (COG), cells.gpkg/.geojson, QGIS styles and riotvit.qgs.

    The region is tiled on the model's grid on the fly; metadata (event history, census) is computed as of the prediction date from the sources the model was trained with. Every output states the forecast window, e.g. "P(≥ 1 riot), 2022-06-15 → 2024-06-13" (the date plus the model's lead and horizon). cells.gpkg's layer "cells" has one polygon per pixel of risk.tif with its values (with --overlap the per-crop polygons are in the layer "crops"). Open riotvit.qgs in QGIS to see every layer styled over the imagery; Identify on a cell reads as a sentence.
    """
    run_predict(model=model, region=region, out=out, region_crs=region_crs, imagery=imagery, bands=bands, date=date,
                acled=acled, census=census, population_raster=population_raster, previous_imagery=previous_imagery,
                admin=admin, admin_id=admin_id, overrides=given(
                    overlap=overlap, tta=tta, batch_size=batch_size, device=device, max_cells=max_cells, metadata=metadata),
                explain=ExplainSpec() if explain else None, yes=yes, config=config, catalog=catalog, overwrite=overwrite,
                json_out=json_out, quiet=quiet, cluster=given(workers=workers, scheduler=scheduler))


class ExplainSpec:
    """What the CLI asked of the explanation (None fields keep ExplainConfig's defaults)."""

    def __init__(self, **kw):
        self.kw = {k: v for k, v in kw.items() if v is not None}


def run_predict(*, model, region, out, region_crs, imagery, bands, date, acled, census, population_raster, overrides,
                explain: ExplainSpec | None, yes, config, catalog, overwrite, json_out, quiet,
                previous_imagery=None, admin=None, admin_id=None, cluster: dict | None = None) -> None:
    """The body shared by ``predict`` and ``explain``: resolve inputs, run, print.

    ``cluster``: the ``--workers``/``--scheduler`` given (ClusterConfig's fields).
    """
    from riotvit.catalog import raster_specs, resolve_source
    from riotvit.cluster import ClusterConfig
    from riotvit.config import build_config
    from riotvit.io import refuse_existing
    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.predict.region import resolve_region
    from riotvit.tile.source import parse_date

    out_folder(out)
    refuse_existing(out, overwrite, "prediction folder")
    if date:
        overrides["date"] = parse_date(date, "--date")
    cfg = build_config(PredictConfig, config, overrides, section="predict", labels=labels(overrides))
    cl = build_config(ClusterConfig, None, cluster or {}, labels=labels(cluster or {}))
    reg = resolve_region(region, region_crs, catalog)
    specs = raster_specs(imagery, catalog) if imagery else None
    ac = resolve_source(acled, "acled", catalog)[0] if acled else None
    ce = resolve_source(census, "census", catalog)[0] if census else None
    pop = resolve_source(population_raster, "raster", catalog)[0] if population_raster else None
    prev = raster_specs(previous_imagery, catalog) if previous_imagery else None
    adm = resolve_source(admin, "census", catalog)[0] if admin else None
    band_list = [b.strip() for b in bands.split(",")] if bands else None
    explainer = None
    if explain is not None:
        from riotvit.explain.stage import ExplainConfig, Explainer

        explainer = Explainer(model, build_config(ExplainConfig, config, explain.kw, section="explain",
                                                  labels=labels(explain.kw)))
    res = predict(model, reg, out, cfg, imagery=specs, bands=band_list, acled=ac, census=ce, population_raster=pop,
                  catalog=catalog, overwrite=overwrite, yes=yes, reporter=RichReporter(quiet=quiet or json_out),
                  explain=explainer, admin=adm, admin_id=admin_id, previous_imagery=prev, cluster=cl)
    if json_out:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in res.__dict__.items()}
        if explainer is not None:
            d["explain"] = explainer.summary()
        print_json(d)
        return
    console.print(f"[green]wrote[/] {res.path}: {res.n_predicted:,} crops ({res.area_km2:,.1f} km²) in {res.seconds:.1f} s — "
                  f"{res.crops_per_s:,.0f} crops/s, {res.km2_per_s:,.1f} km²/s on {res.device}")
    console.print(f"  ran on: {res.ran_on}")
    if explainer is not None:
        sm = explainer.summary()
        c = sm.get("completeness", {})
        top = ", ".join(list(sm.get("mean_abs_shap", {}))[:5])
        console.print(f"  explained {sm.get('cells', 0):,} cells; strongest drivers: {top}; completeness gap "
                      f"{c.get('relative_gap', float('nan')):.1%} of |output - expected| ({c.get('mean_abs_gap', 0):.4f} log-odds)")
    console.print(f"  forecast: {res.window.get('label', '')} (as of {res.window.get('as_of', '')}); "
                  f"{res.n_cells:,} cells of {'/'.join(res.window.get('event_types', []))} risk")
    console.print(f"  open [bold]{res.path / 'riotvit.qgs'}[/] in QGIS (styled layers and a print layout), "
                  f"or look at {res.path / 'map.png'}" + (f"; per admin unit: {res.path / 'admin.csv'}" if adm else ""))
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
