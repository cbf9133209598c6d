"""The ``riotvit`` command line: a thin layer over the library (one module per command group)."""

from __future__ import annotations

import typer

from riotvit import __version__
from riotvit.cli import catalog as catalog_cli
from riotvit.cli._common import ConfigHelpCommand, set_debug
from riotvit.cli.explain import EXAMPLES as EXPLAIN_EXAMPLES
from riotvit.cli.explain import explain_command
from riotvit.cli.join import EXAMPLES as JOIN_EXAMPLES
from riotvit.cli.join import join_command
from riotvit.cli.pipeline import DEMO_EXAMPLES, RUN_EXAMPLES, demo_command, run_command
from riotvit.cli.predict import EXAMPLES as PREDICT_EXAMPLES
from riotvit.cli.predict import predict_command
from riotvit.cli.sample import EXAMPLES as SAMPLE_EXAMPLES
from riotvit.cli.sample import sample_command
from riotvit.cli.score import EXAMPLES as SCORE_EXAMPLES
from riotvit.cli.score import score_command
from riotvit.cli.tile import EXAMPLES as TILE_EXAMPLES
from riotvit.cli.tile import tile_command
from riotvit.cli.train import EVAL_EXAMPLES, TRAIN_EXAMPLES, evaluate_command, train_command

HELP = """riotvit: riot risk mapped from space, per 672 m cell, for prevention and humanitarian planning.

Pipeline: sample -> tile -> join -> train -> evaluate -> predict -> explain, and later score (see docs/design.md).

Examples:

  riotvit demo                                   (the whole pipeline on the synthetic city, ~5 min)

  riotvit run pipelines/nairobi.yaml --set sources.acled=my_export.csv

  riotvit sample --out data/sample

  riotvit tile data/sample/city.tif --out runs/tiles

  riotvit catalog validate

  riotvit score runs/dhaka/predict --acled later_export.csv      (check a past forecast against what happened)

Errors are one line on stderr and a non-zero exit; riotvit --debug CMD ... (or RIOTVIT_DEBUG=1) adds the traceback of an unexpected one.
"""

app = typer.Typer(
    name="riotvit", help=HELP, no_args_is_help=True, rich_markup_mode="markdown",
    pretty_exceptions_enable=False, add_completion=False,
)
app.command("demo", epilog=DEMO_EXAMPLES, cls=ConfigHelpCommand)(demo_command)
app.command("run", epilog=RUN_EXAMPLES, cls=ConfigHelpCommand)(run_command)
app.command("sample", epilog=SAMPLE_EXAMPLES, cls=ConfigHelpCommand)(sample_command)
app.command("tile", epilog=TILE_EXAMPLES, cls=ConfigHelpCommand)(tile_command)
app.command("join", epilog=JOIN_EXAMPLES, cls=ConfigHelpCommand)(join_command)
app.command("train", epilog=TRAIN_EXAMPLES, cls=ConfigHelpCommand)(train_command)
app.command("evaluate", epilog=EVAL_EXAMPLES, cls=ConfigHelpCommand)(evaluate_command)
app.command("predict", epilog=PREDICT_EXAMPLES, cls=ConfigHelpCommand)(predict_command)
app.command("explain", epilog=EXPLAIN_EXAMPLES, cls=ConfigHelpCommand)(explain_command)
app.command("score", epilog=SCORE_EXAMPLES, cls=ConfigHelpCommand)(score_command)
app.add_typer(catalog_cli.app, name="catalog")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"riotvit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    debug: bool = typer.Option(False, "--debug", help="On an unexpected error, print the traceback too (or set RIOTVIT_DEBUG=1); "
                               "without it every error is one line."),
) -> None:
    """riotvit command line."""
    set_debug(debug)


def main() -> None:
    """Console entry point."""
    app()
