"""``riotvit tile``: cut rasters into metre-true crops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riotvit.cli._common import (
    CLUSTER,
    PANEL_SCALE,
    PIPELINE,
    TILE,
    RichReporter,
    cluster_config,
    config_option,
    console,
    given,
    handle_errors,
    labels,
    out_console,
    out_folder,
    print_json,
)

EXAMPLES = """
Examples:

  riotvit tile data/sample/city.tif --out tiles/city

  riotvit tile scene_a.tif scene_b.tif --out tiles/mosaic --overlap 0.5 --date 2023-02-16

  riotvit tile worldpop_nairobi --out tiles/nairobi --crop-px 64 --dry-run      (a catalog id)

  riotvit tile img.tif --out tiles/x --config configs/tile.yaml --write-geotiffs

  riotvit tile catalog.json --bands red,green,blue,nir --out tiles/stac      (a STAC catalog; B4,B3,B2,B8 --sensor sentinel2 works too)

  riotvit tile big_scene.tif --out tiles/big --workers 2      (blocks fan out to 2 Dask worker processes; same tile set)

  riotvit tile dhaka/ --out tiles/dhaka --bands B4,B3,B2,B8 --sensor sentinel2 --scale 0.0001 --dates dates.csv

      (Sentinel-2 reflectance x 10000, the nine GeoTIFFs of a folder: three areas x three dates in one tile set;
      --bands red,green,blue,nir means the same; dates.csv has a header file,date and lines such as
      *_2021.tif,2021-03-16)
"""

PANEL_GRID = "Crop grid"
PANEL_IN = "Input"
PANEL_RUN = "Run"


@handle_errors
def tile_command(
    rasters: Annotated[list[str], typer.Argument(help="GeoTIFF/COG files, folders of GeoTIFFs, catalog raster ids, or STAC Item/ItemCollection/Catalog JSON files or URLs.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tile set folder to write.", rich_help_panel=PANEL_RUN)],
    config: Annotated[Path | None, typer.Option(help="YAML with any of the options below (CLI wins).", rich_help_panel=PANEL_RUN)] = None,
    crop_m: Annotated[float | None, config_option(TILE, "crop_m", rich_help_panel=PANEL_GRID)] = None,
    crop_px: Annotated[int | None, config_option(TILE, "crop_px", rich_help_panel=PANEL_GRID)] = None,
    stride_m: Annotated[float | None, config_option(TILE, "stride_m", rich_help_panel=PANEL_GRID)] = None,
    overlap: Annotated[float | None, config_option(TILE, "overlap", rich_help_panel=PANEL_GRID)] = None,
    crs: Annotated[str | None, config_option(TILE, "crs", rich_help_panel=PANEL_GRID)] = None,
    min_valid: Annotated[float | None, config_option(TILE, "min_valid", rich_help_panel=PANEL_GRID)] = None,
    resampling: Annotated[str | None, config_option(TILE, "resampling", rich_help_panel=PANEL_IN)] = None,
    categorical: Annotated[bool | None, config_option(TILE, "categorical", "--categorical", rich_help_panel=PANEL_IN)] = None,
    bands: Annotated[str | None, config_option(TILE, "bands", note="Comma-separated common names or Sentinel-2/Landsat ids, e.g. blue,green,red,nir or B2,B3,B4,B8 (with --sensor where an id is ambiguous).", rich_help_panel=PANEL_IN)] = None,
    sensor: Annotated[str | None, config_option(TILE, "sensor", note="E.g. --bands B4,B3,B2,B8 --sensor sentinel2.", rich_help_panel=PANEL_IN)] = None,
    scale: Annotated[float | None, config_option(TILE, "scale", note="E.g. --scale 0.0001. Chips are float32 when scaled (float64 sources are always stored as float32).", rich_help_panel=PANEL_IN)] = None,
    offset: Annotated[float | None, config_option(TILE, "offset", note="E.g. --scale 0.0001 --offset -0.1.", rich_help_panel=PANEL_IN)] = None,
    date: Annotated[str | None, config_option(TILE, "date", rich_help_panel=PANEL_IN)] = None,
    dates: Annotated[Path | None, config_option(TILE, "dates", note="E.g. --dates dates.csv with lines file,date / *_2021.tif,2021-03-16.", rich_help_panel=PANEL_IN)] = None,
    catalog: Annotated[Path | None, config_option(PIPELINE, "catalog", rich_help_panel=PANEL_IN)] = None,
    write_geotiffs: Annotated[bool | None, config_option(TILE, "write_geotiffs", "--write-geotiffs", rich_help_panel=PANEL_RUN)] = None,
    block_crops: Annotated[int | None, config_option(TILE, "block_crops", rich_help_panel=PANEL_RUN)] = None,
    max_crops: Annotated[int | None, config_option(TILE, "max_crops", rich_help_panel=PANEL_RUN)] = None,
    workers: Annotated[int | None, config_option(CLUSTER, "workers", rich_help_panel=PANEL_SCALE)] = None,
    scheduler: Annotated[str | None, config_option(CLUSTER, "scheduler", rich_help_panel=PANEL_SCALE)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing, different tile set.", rich_help_panel=PANEL_RUN)] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the grid (crop count, CRS, GSD, extent) without reading pixels.", rich_help_panel=PANEL_RUN)] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.", rich_help_panel=PANEL_RUN)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=PANEL_RUN)] = False,
) -> None:
    """Cut satellite rasters into metre-true crops on the stable grid (672 m x 672 m by default).

    Writes a tile set: chips.npy (N, C, H, W), masks.npy, tiles.parquet (GeoParquet, one row per
    crop with its stable crop id and footprint) and tileset.json (grid, bands, stats, provenance).
    An interrupted run resumes when rerun with the same arguments.
    """
    from riotvit.catalog import raster_specs
    from riotvit.config import build_config
    from riotvit.tile.plan import TileConfig, plan_tiles
    from riotvit.tile.source import parse_date

    out_folder(out)
    band_list = [b.strip() for b in bands.split(",")] if bands else None
    d = parse_date(date, "--date") if date else None
    options = given(crop_m=crop_m, crop_px=crop_px, stride_m=stride_m, overlap=overlap, crs=crs, min_valid=min_valid,
                    resampling=resampling, categorical=categorical, bands=band_list, date=d, sensor=sensor,
                    scale=scale, offset=offset, dates=str(dates) if dates else None,
                    write_geotiffs=write_geotiffs, block_crops=block_crops, max_crops=max_crops)
    cfg = build_config(TileConfig, config, options, labels=labels(options))
    cluster = cluster_config(workers, scheduler)
    from riotvit.stac.read import is_stac_input, resolve_stac_inputs

    stac = [r for r in rasters if is_stac_input(r)]
    specs = raster_specs([r for r in rasters if not is_stac_input(r)], catalog)
    if stac:  # one small VRT per item (its band assets in order, its mask), next to the tile set
        specs += resolve_stac_inputs(stac, bands=band_list, date=d, workdir=out.with_name(out.name + ".sources"))
    if dry_run:
        plan = plan_tiles(specs, cfg.model_copy(update={"checksum": False}))
        s = plan.summary()
        if json_out:
            print_json(s)
            return
        t = Table(title="tile plan (dry run: no pixels read)", show_header=False)
        for k, v in s.items():
            if k != "warnings":
                t.add_row(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v))
        out_console.print(t)
        for w in plan.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        return
    from riotvit.tile.tiler import tile

    res = tile(specs, out, cfg, overwrite=overwrite, reporter=RichReporter(quiet=quiet or json_out), cluster=cluster)
    summary = {
        "tileset": str(res.path), "crops": res.n_crops, "masked_crops": res.n_masked,
        "candidates": res.n_candidates, "seconds": round(res.seconds, 2),
        "crops_per_s": round(res.crops_per_s, 1) if res.seconds else None,
        "resumed_blocks": res.resumed_blocks, "up_to_date": res.up_to_date, "ran_on": cluster.describe(),
    }
    if json_out:
        print_json(summary)
        return
    if res.up_to_date:
        console.print(f"[green]up to date:[/] {res.path} already holds this tile set ({res.n_crops} crops)")
        return
    console.print(
        f"[green]wrote[/] {res.path}: {res.n_crops:,} crops ({res.n_masked:,} partly masked) of "
        f"{res.n_candidates:,} candidates in {res.seconds:.1f} s ({res.crops_per_s:,.0f} crops/s)"
        + (f", resumed after {res.resumed_blocks} blocks" if res.resumed_blocks else "")
        + (f" on a {cluster.describe()}" if cluster.enabled else "")
    )


