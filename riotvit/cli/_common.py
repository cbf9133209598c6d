"""What every command shares: error handling, the console, progress bars, option merging."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperCommand

from riotvit.errors import RiotvitError

console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
out_console = Console(width=None if sys.stdout.isatty() else 160)
F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Print a RiotvitError as one red line and exit with its code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RiotvitError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: partial outputs are kept under *.partial and a rerun resumes")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def given(**values: Any) -> dict[str, Any]:
    """Options the user actually gave (None means "not given", so config files and defaults stand)."""
    return {k: v for k, v in values.items() if v is not None}


def labels(values: Mapping[str, Any], prefix: str = "", **names: str) -> dict[str, str]:
    """How config errors name the options in ``values``: ``{"crop_m": "--crop-m"}``.

    Args:
        values: the options given, keyed by config field.
        prefix: the fields' section in the config (``optim.`` for ``optim.epochs``).
        names: option names that differ from the field's (``riot_event_types="--riot-types"``).
    """
    return {prefix + k: names.get(k, "--" + k.replace("_", "-")) for k in values}


SAMPLE = "riotvit.synth:SampleConfig"
TILE = "riotvit.tile.plan:TileConfig"
JOIN = "riotvit.join.stage:JoinConfig"
TRAIN = "riotvit.train.config:TrainConfig"
PREDICT = "riotvit.predict.plan:PredictConfig"
EXPLAIN = "riotvit.explain.stage:ExplainConfig"
PIPELINE = "riotvit.pipeline.spec:PipelineSpec"
"""Config classes that document options, as ``module:Class`` (imported only to show help)."""

_FROM_CONFIG = "riotvit-config-field:"


def config_option(config: str, field: str, *param_decls: str, note: str = "", **kwargs: Any) -> Any:
    """A ``typer.Option`` documented by a config field, so its description and default are written once.

    The help text is ``StrictModel.field_help`` of the field (description, choices, default). It is
    filled in by :class:`ConfigHelpCommand` when help is shown: the config modules, and the heavy
    libraries some of them import, load only then, and ``import riotvit.cli`` stays light.

    Args:
        config: the config class as ``module:Class`` (``TILE``, ``TRAIN`` ...).
        field: the field name, or a dotted path into nested configs (``optim.epochs``).
        param_decls: option names, as for ``typer.Option``.
        note: CLI-only text put after the description (e.g. how a list is written).
        kwargs: passed on to ``typer.Option`` (``rich_help_panel`` ...).
    """
    return typer.Option(*param_decls, help=_FROM_CONFIG + json.dumps([config, field, note]), **kwargs)


def config_field(help_text: str | None) -> tuple[type, str, str] | None:
    """The (config class, field, note) behind a :func:`config_option`'s help; None for other options."""
    if not help_text or not help_text.startswith(_FROM_CONFIG):
        return None
    config, field, note = json.loads(help_text.removeprefix(_FROM_CONFIG))
    module, name = config.split(":")
    return getattr(importlib.import_module(module), name), field, note


class ConfigHelpCommand(TyperCommand):
    """A command whose :func:`config_option` options get their help from the config when help is shown."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            ref = config_field(param.help)
            if ref is not None:
                model, field, note = ref
                param.help = model.field_help(field, note)
        super().format_help(ctx, formatter)


class RichReporter:
    """A rich progress bar with a rate column (crops/s or any unit)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._p: Progress | None = None
        self._task = None
        self.unit = "crops"

    def start(self, total: int, description: str, unit: str = "crops", per_item: tuple[float, str] | None = None) -> None:
        """Start a bar; ``per_item=(0.45, "km²")`` also shows a second rate (e.g. km²/s)."""
        if self.quiet:
            return
        self.unit = unit
        self.per_item = per_item
        self._p = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
            transient=False,
        )
        self._p.start()
        self._task = self._p.add_task(description, total=total, rate="")

    def advance(self, n: int = 1) -> None:
        if self._p is None:
            return
        self._p.advance(self._task, n)
        task = self._p.tasks[0]
        speed = task.speed
        if speed:
            txt = f"{speed:,.0f} {self.unit}/s"
            if getattr(self, "per_item", None):
                f, u = self.per_item
                txt += f" · {speed * f:,.1f} {u}/s"
            self._p.update(self._task, rate=txt)

    def log(self, message: str) -> None:
        if not self.quiet:
            console.print(message, highlight=False)

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


def print_json(obj: Any) -> None:
    """Machine-readable output for --json."""
    out_console.print_json(json.dumps(obj, default=str))
