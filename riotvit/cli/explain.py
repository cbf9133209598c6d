"""``riotvit explain``: SHAP drivers per cell and image attribution maps for a region."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import EXPLAIN, PIPELINE, PREDICT, config_option, handle_errors
from riotvit.cli.predict import ExplainSpec, run_predict

EXAMPLES = """
Examples:

  riotvit explain --model runs/model --region synth_city --out runs/explain

  riotvit explain --model runs/model --region area.geojson --out runs/why --nsamples 50 --attention

  riotvit explain --model runs/model --region synth_city --out runs/ref --backend shap      (the slow reference)
"""


@handle_errors
def explain_command(
    model: Annotated[Path, typer.Option(help="Model bundle folder (riotvit train).")],
    region: Annotated[str, typer.Option(help="Region: a catalog name, minx,miny,maxx,maxy, or a vector file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (a prediction folder plus explanations).")],
    region_crs: Annotated[str, typer.Option(help="CRS of a bbox region.")] = "EPSG:4326",
    imagery: Annotated[list[str] | None, typer.Option(help="Imagery files or catalog ids (repeat).")] = None,
    date: Annotated[str | None, config_option(PREDICT, "date", note="YYYY-MM-DD.")] = None,
    nsamples: Annotated[int | None, config_option(EXPLAIN, "nsamples")] = None,
    backend: Annotated[str | None, config_option(EXPLAIN, "backend")] = None,
    features: Annotated[str | None, config_option(EXPLAIN, "features", note="Comma-separated.")] = None,
    attention: Annotated[bool | None, config_option(EXPLAIN, "attention", "--attention")] = None,
    tta: Annotated[int | None, config_option(PREDICT, "tta")] = None,
    seed: Annotated[int | None, config_option(EXPLAIN, "seed")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Explain even a region above --max-cells.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML with 'predict:' and 'explain:' sections.")] = None,
    catalog: Annotated[Path | None, config_option(PIPELINE, "catalog")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing folder.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Explain why each cell of a region scores what it does: SHAP values of the riot log-odds.

    Writes everything riotvit predict writes, plus: the SHAP value of every metadata feature and of the image, and the top 3 drivers, as attributes of cells.gpkg/cells.geojson (QGIS identify panel); drivers.tif (image attribution per ViT patch, diverging style); shap_summary.png (beeswarm) and shap_bar.png; and the completeness check in run.json.
    """
    feats = [f.strip() for f in features.split(",")] if features else None
    run_predict(model=model, region=region, out=out, region_crs=region_crs, imagery=imagery, bands=None, date=date,
                acled=None, census=None, population_raster=None, overrides={"tta": tta} if tta else {},
                explain=ExplainSpec(nsamples=nsamples, backend=backend, features=feats, attention=attention, seed=seed),
                yes=yes, config=config, catalog=catalog, overwrite=overwrite, json_out=json_out, quiet=quiet)
