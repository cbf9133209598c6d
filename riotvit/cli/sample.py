"""``riotvit sample``: generate the embedded synthetic city."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import (
    SAMPLE,
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

  riotvit sample --out data/sample

  riotvit sample --out /tmp/small --size-km 4 --seed 3

  riotvit sample --out /tmp/two --dates 2021-01-10,2023-01-10
"""


@handle_errors
def sample_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the sample into.")] = Path("data/sample"),
    seed: Annotated[int | None, config_option(SAMPLE, "seed")] = None,
    size_km: Annotated[float | None, config_option(SAMPLE, "size_km")] = None,
    dates: Annotated[str | None, config_option(SAMPLE, "dates", note="Comma-separated YYYY-MM-DD.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with any of these options.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing sample folder.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate the synthetic city: 4-band 3 m images at several dates, ACLED-format events and census wards.

    Deterministic from the seed. Markets open and close, settlements grow and a road is built
    between the dates; city.tif is the last date's image, earlier ones are city_YYYY-MM-DD.tif. The planted relationships between what is visible, the census
    and riots are documented in SAMPLE.md inside the folder.
    """
    from riotvit.config import build_config
    from riotvit.synth import SampleConfig, generate_sample

    out_folder(out)
    options = given(seed=seed, size_km=size_km, dates=dates)
    cfg = build_config(SampleConfig, config, options, labels=labels(options))
    with console.status("generating the synthetic city"):
        res = generate_sample(out, cfg, overwrite=overwrite)
    if json_out:
        print_json(res.__dict__)
        return
    console.print(
        f"[green]wrote[/] {res.path}: acled.csv ({res.n_events:,} events, {res.n_riots:,} riots), "
        f"wards.gpkg ({res.n_wards} wards), truth/ ({res.n_cells} cells x {len(res.images)} dates) in {res.seconds:.1f} s"
    )
    for name, (date, onsets) in zip(res.images, res.onsets.items()):
        console.print(f"  {name}  {date}  {onsets} onset cells")
