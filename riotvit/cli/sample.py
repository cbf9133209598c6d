"""``riotvit sample``: generate the embedded synthetic city."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import console, given, handle_errors, print_json

EXAMPLES = """
Examples:

  riotvit sample --out data/sample

  riotvit sample --out /tmp/small --size-km 4 --seed 3
"""


@handle_errors
def sample_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the sample into.")] = Path("data/sample"),
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same files). [default: 7]")] = None,
    size_km: Annotated[float | None, typer.Option(help="Side of the city image, km. [default: 12]")] = None,
    image_date: Annotated[str | None, typer.Option(help="Image acquisition date. [default: 2022-06-15]")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with any of these options.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing sample folder.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate the synthetic city: a 4-band 3 m image, ACLED-format events and census wards.

    Deterministic from the seed. The planted relationships between what is visible, the census
    and riots are documented in SAMPLE.md inside the folder.
    """
    from riotvit.config import build_config
    from riotvit.synth import SampleConfig, generate_sample

    cfg = build_config(SampleConfig, config, given(seed=seed, size_km=size_km, image_date=image_date))
    with console.status("generating the synthetic city"):
        res = generate_sample(out, cfg, overwrite=overwrite)
    if json_out:
        print_json(res.__dict__)
        return
    console.print(
        f"[green]wrote[/] {res.path}: city.tif, acled.csv ({res.n_events:,} events, {res.n_riots:,} riots), "
        f"wards.gpkg ({res.n_wards} wards), truth/ ({res.n_cells} cells) in {res.seconds:.1f} s"
    )
