"""``riotvit train`` and ``riotvit evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riotvit.cli._common import (
    TRAIN,
    RichReporter,
    config_option,
    console,
    given,
    handle_errors,
    labels,
    out_console,
    out_folder,
    print_json,
)

TRAIN_EXAMPLES = """
Examples:

  riotvit train runs/tiles runs/samples.parquet --out runs/model --config configs/train_tiny.yaml

  riotvit train runs/tiles runs/samples.parquet --out runs/vit --config configs/train_default.yaml --epochs 40

  riotvit train runs/tiles runs/samples.parquet --out runs/model --backbone vit_base_patch16_224 --fusion film

  riotvit train runs/tiles runs/samples.parquet --out runs/model --config configs/train_tiny.yaml --nproc 2
"""

EVAL_EXAMPLES = """
Examples:

  riotvit evaluate runs/model

  riotvit evaluate runs/model --json
"""


@handle_errors
def train_command(
    ctx: typer.Context,
    tileset: Annotated[Path, typer.Argument(help="Tile set folder (riotvit tile).")],
    samples: Annotated[Path, typer.Argument(help="samples.parquet (riotvit join).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the model bundle.")],
    config: Annotated[Path | None, typer.Option(help="YAML TrainConfig (configs/train_tiny.yaml, configs/train_default.yaml).")] = None,
    backbone: Annotated[str | None, config_option(TRAIN, "model.backbone")] = None,
    fusion: Annotated[str | None, config_option(TRAIN, "model.fusion")] = None,
    epochs: Annotated[int | None, config_option(TRAIN, "optim.epochs")] = None,
    batch_size: Annotated[int | None, config_option(TRAIN, "data.batch_size")] = None,
    lr: Annotated[float | None, config_option(TRAIN, "optim.lr")] = None,
    device: Annotated[str | None, config_option(TRAIN, "device")] = None,
    pretrained: Annotated[Path | None, config_option(TRAIN, "model.pretrained_path")] = None,
    pretrained_bands: Annotated[str | None, config_option(
        TRAIN, "model.pretrained_bands",
        note="Comma-separated, e.g. --pretrained ssl4eo_vits16.safetensors --pretrained-bands "
        "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B10,B11,B12 --pretrained-sensor sentinel2.")] = None,
    pretrained_sensor: Annotated[str | None, config_option(TRAIN, "model.pretrained_sensor")] = None,
    seed: Annotated[int | None, config_option(TRAIN, "seed")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    nproc: Annotated[int, typer.Option(
        "--nproc", min=1,
        help="Train with this many processes on this machine (torch DDP started by torchrun: gloo on CPU, one "
        "GPU each with nccl on CUDA). --batch-size stays the global batch, shared evenly, so it must be a multiple. "
        "E.g. --nproc 2 on a 2-core CPU, --nproc 4 on 4 GPUs; torchrun --nproc_per_node=4 -m riotvit.train ARGS "
        "does the same.")] = 1,
) -> None:
    """Train a timm Vision Transformer with metadata fusion and multi-task heads, then evaluate it honestly.

    When the samples hold several image dates, evaluation is forward in time (rolling origin x spatial blocks): for the last test origin t (or eval.origins), one model per held-out block fold trains only on origins whose label windows end by t, is stacked on the history + census baseline's log-odds and calibrated on the validation fold of the latest training origin, and is scored next to persistence, history + census and prevalence on the same crops, also on onset cells (no riot in the year before t). The fold models form the shipped ensemble; if the image does not help on validation, the forecast is history + census and the table says so. With one date, evaluation holds out spatial blocks (the samples table's test fold) instead. Writes model.safetensors, bundle.json, metrics.json/.md, history.csv/.png, reliability.png, background samples and model_card.md. An interrupted run resumes from its last epoch when rerun.
    """

    from riotvit.config import build_config, validate
    from riotvit.train.config import TrainConfig
    from riotvit.train.ddp import lost_peer
    from riotvit.train.launch import launch, launched
    from riotvit.train.trainer import train

    out_folder(out)
    options = given(seed=seed, device=device)
    cfg = build_config(TrainConfig, config, options, labels=labels(options))
    sections = {
        "model": given(backbone=backbone, fusion=fusion, pretrained_path=str(pretrained) if pretrained else None,
                       pretrained_bands=[b.strip() for b in pretrained_bands.split(",")] if pretrained_bands else None,
                       pretrained_sensor=pretrained_sensor),
        "optim": given(epochs=epochs, lr=lr),
        "data": given(batch_size=batch_size),
    }
    if any(sections.values()):
        data = cfg.model_dump()
        names: dict[str, str] = {}
        for section, values in sections.items():
            data[section].update(values)
            names.update(labels(values, f"{section}.", pretrained_path="--pretrained"))
        cfg = validate(TrainConfig, data, "options", names)
    from riotvit.train.models.backbone import check_model_config

    check_model_config(cfg.model)  # before train() opens its work folder
    if nproc > 1 and not launched():
        from riotvit.io import refuse_existing
        from riotvit.train.ddp import check_world

        check_world(cfg.data.batch_size, nproc, "--batch-size" if batch_size else "data.batch_size")
        refuse_existing(out, overwrite, "model bundle")
        job = launch(nproc, rank_args(ctx))
        if job.error and not job.shown:  # the failing rank's error, once
            console.print(job.error, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(job.code)
    try:
        res = train(tileset, samples, out, cfg, overwrite=overwrite, reporter=RichReporter(quiet=quiet or json_out))
    except RuntimeError as e:
        if launched() and lost_peer(e):  # another rank failed first and reports it (riotvit.train.launch)
            raise typer.Exit(3) from None
        raise
    if res.table is None:  # a DDP rank other than 0: rank 0 reports
        return
    if json_out:
        print_json(res.metrics)
        return
    out_console.print(res.table.to_rich())
    for v in getattr(res.table, "verdicts", lambda: [])():
        console.print(f"  {v}")
    sel = getattr(res.table, "selected", None)
    if sel:
        console.print(f"shipped: {sel['model']} ({sel['why']})")
    console.print(f"[green]wrote[/] {res.path}: best epoch {res.best_epoch}/{res.epochs_run}, {res.seconds:.0f} s, "
                  f"{res.images_per_s:,.0f} img/s on {res.device}; see metrics.md, model_card.md, history.png")


def rank_args(ctx: typer.Context) -> list[str]:
    """The command line of each DDP rank: the options given to this command, without ``--nproc``."""
    args: list[str] = []
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if p.name == "nproc" or v is None or v is False:
            continue
        if p.param_type_name == "argument":
            args.append(str(v))
        elif getattr(p, "is_flag", False):
            args.append(p.opts[0])
        else:
            args += [p.opts[0], str(v)]
    return args


@handle_errors
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by riotvit train.")],
    tileset: Annotated[Path | None, typer.Option(help="Tile set (default: the one recorded in the bundle).")] = None,
    samples: Annotated[Path | None, typer.Option(help="samples.parquet (default: the one recorded in the bundle).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Re-score a trained model on its held-out blocks, next to the baselines.

    A forecast (ensemble) bundle is re-scored at its test origin from its own members, stackers, calibrations and baselines, and the table is printed (metrics.json keeps every origin). A single-date bundle's metrics.json/metrics.md are rewritten.
    """
    from riotvit.train.evaluate import evaluate_bundle
    from riotvit.train.report import write_metrics, write_reliability_plots

    table, b = evaluate_bundle(str(run), str(tileset) if tileset else None, str(samples) if samples else None)
    if b.meta.forecast:  # an ensemble: re-scored at its test origin; metrics.json (every origin) is kept
        if json_out:
            print_json(table.to_dict())
            return
        out_console.print(table.to_rich())
        for v in table.verdicts():
            console.print(f"  {v}")
        console.print(f"re-scored test origin {table.last} from {b.path}; compare with {b.path / 'metrics.md'}")
        return
    write_metrics(b.path, table)
    write_reliability_plots(b.path, table)
    if json_out:
        print_json(table.to_dict())
        return
    out_console.print(table.to_rich())
    console.print(f"[green]wrote[/] {b.path / 'metrics.json'} and metrics.md")
