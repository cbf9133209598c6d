"""What every command shares: error handling, the console, progress bars, option merging."""

from __future__ import annotations

import errno
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperCommand

from riotvit.errors import OutputExistsError, RiotvitError, clip

console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
out_console = Console(width=None if sys.stdout.isatty() else 160)
F = TypeVar("F", bound=Callable[..., Any])


DEBUG_ENV = "RIOTVIT_DEBUG"
"""Set to 1 (or pass ``riotvit --debug``) to get the traceback of an unexpected error."""

_INTERRUPTED = {
    "tile": "finished blocks are kept in OUT.partial; rerun the same command to resume",
    "train": "finished epochs are kept in OUT.partial; rerun the same command to resume",
    "run": "finished stages are kept in the run folder; rerun the same command to skip them",
    "demo": "finished stages are kept in the run folder; rerun the same command to skip them",
}
_USER_OSERRORS = (FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError)


_debug_flag = {"on": False}


def set_debug(on: bool) -> None:
    """Record the global ``--debug`` flag (the root callback sets it on every invocation)."""
    _debug_flag["on"] = on


def debug_enabled() -> bool:
    """True when tracebacks were asked for (``riotvit --debug`` or ``RIOTVIT_DEBUG=1``)."""
    return _debug_flag["on"] or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _command(fn: Callable[..., Any]) -> str:
    """``riotvit tile`` for ``tile_command``; catalog subcommands read ``riotvit catalog show``."""
    name = fn.__name__.removesuffix("_command").strip("_").replace("_", " ")
    return "riotvit " + (name if not fn.__module__.endswith(".catalog") else f"catalog {name}")


def _input(kwargs: Mapping[str, Any]) -> str:
    """The first path-like argument a command was given, to name in an unexpected error."""
    for v in kwargs.values():
        if isinstance(v, Path):
            return f" (input {clip(str(v))})"
    return ""


def _os_message(e: OSError) -> str | None:
    """One line for an OSError that is the user's to fix (a path of the wrong kind, no permission,
    disk full); None for the others."""
    path = e.filename if e.filename is not None else (e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else
                                                      "a path")
    if isinstance(e, FileExistsError):
        return f"{path}: already exists; remove it or choose another --out"
    if isinstance(e, PermissionError):
        return f"{path}: permission denied; choose a path you can write (--out) or fix its permissions"
    if isinstance(e, IsADirectoryError):
        return f"{path}: is a folder where a file was expected; give a file path"
    if isinstance(e, NotADirectoryError):
        return f"{path}: a file is in the way where a folder is needed; remove it or choose another --out"
    if isinstance(e, FileNotFoundError):
        return f"{path}: no such file or folder; check the path"
    if e.errno == errno.ENOSPC:
        return f"{path}: no space left on the device; free some space or choose another --out"
    if e.errno == errno.EROFS:
        return f"{path}: read-only file system; choose another --out"
    return None


def _error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Run a command so that every failure is one red line and a non-zero exit, never a traceback.

    A :class:`RiotvitError` is printed as it is (exit code 2). An OSError that is the user's to fix
    (a file where a folder must go, no permission, disk full) and a config validation error that
    escaped its boundary are one line naming the path or key (exit 2). Anything else is a bug: one
    line naming the command and its input, asking for a report (exit 1); ``riotvit --debug`` or
    ``RIOTVIT_DEBUG=1`` prints the traceback too. An interrupt says what it left behind.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        command = _command(fn)
        _reporters.clear()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            for r in _reporters:
                r.stop()
                r.drop()
            _reporters.clear()
            _handle(command, kwargs)
            raise  # _handle always exits; this only keeps the type checker calm
        for r in _reporters:
            r.flush()
        _reporters.clear()
        return result

    return wrapper  # type: ignore[return-value]


def _handle(command: str, kwargs: Mapping[str, Any]) -> None:
    """The current exception as one line and a ``typer.Exit`` (click's own exits pass through)."""
    try:
        raise
    except RiotvitError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        what = _INTERRUPTED.get(command.split()[-1], "nothing was published; rerun the command")
        console.print(f"[yellow]interrupted[/]: {what}", highlight=False)
        raise typer.Exit(130) from None
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, typer.Exit, typer.Abort,
            SystemExit):
        raise
    except Exception as e:  # the safety net: the message must stay one line
        if debug_enabled():
            console.print_exception()
        if isinstance(e, OSError) and (msg := _os_message(e)) is not None:
            _error(f"{command}: {msg}")
            raise typer.Exit(2) from None
        if isinstance(e, ValidationError):
            from riotvit.config import format_validation_error

            _error(f"{command}: invalid value: " + format_validation_error(BaseModel, e, "options"))
            raise typer.Exit(2) from None
        _error(f"{command}{_input(kwargs)}: unexpected {type(e).__name__}: {clip(str(e), 160)}; "
               f"please report it (rerun with riotvit --debug for the traceback)")
        raise typer.Exit(1) from None


def out_folder(out: Path | None, option: str = "--out") -> Path | None:
    """Check a folder to write before any work: an existing file there (or in its parents) is an
    error naming it, never a half-done run that fails on its last step."""
    if out is None:
        return None
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            where = "" if p == out else f" (in {option} {out})"
            raise OutputExistsError(f"{option} {p}: is a file, not a folder{where}; remove it or choose another {option}")
        if p.exists():
            break
    return out


def out_file(out: Path, option: str = "--out") -> Path:
    """Check a file to write before any work: not an existing folder, its parents not files."""
    if out.is_dir():
        raise OutputExistsError(f"{option} {out}: is a folder; give a file path such as {out / 'samples.parquet'}")
    out_folder(out.parent, option)
    return out


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
CLUSTER = "riotvit.cluster:ClusterConfig"
PANEL_SCALE = "Scale out (Dask)"


def cluster_config(workers: int | None, scheduler: str | None) -> Any:
    """``--workers``/``--scheduler`` as a :class:`riotvit.cluster.ClusterConfig` (a one-line error when both are given)."""
    from riotvit.cluster import ClusterConfig
    from riotvit.config import build_config

    return build_config(ClusterConfig, None, given(workers=workers, scheduler=scheduler))
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


_reporters: list[RichReporter] = []
"""The reporters of the running command: their held-back notes are printed when it succeeds and
dropped when it fails (see :meth:`RichReporter.log`)."""


class RichReporter:
    """A rich progress bar with a rate column (crops/s or any unit).

    Notes (``log``) said before the first bar are held back until a bar starts or the command ends
    well: a command that fails while checking its inputs prints only its error line. Warnings
    (``warning: ...``) are printed at once, also with ``--quiet``, which hides only progress.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._p: Progress | None = None
        self._task = None
        self.unit = "crops"
        self._held: list[str] = []
        _reporters.append(self)

    def start(self, total: int, description: str, unit: str = "crops", per_item: tuple[float, str] | None = None) -> None:
        """Start a bar; ``per_item=(0.45, "km²")`` also shows a second rate (e.g. km²/s)."""
        self.flush()
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
        """A note (hidden by ``--quiet``, held back until work starts) or a warning (always shown)."""
        if message.lower().startswith("warning"):
            text = message.split(":", 1)[1].strip() if ":" in message else message
            console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)
        elif self.quiet:
            return
        elif self._p is None and not self._started:
            self._held.append(message)
        else:
            console.print(message, highlight=False)

    @property
    def _started(self) -> bool:
        return getattr(self, "_flushed", False)

    def flush(self) -> None:
        """Print the notes held back so far; later notes print at once."""
        self._flushed = True
        held, self._held = self._held, []
        for m in held:
            if not self.quiet:
                console.print(m, highlight=False)

    def drop(self) -> None:
        """Forget the notes held back (the command failed: its error line is all that is printed)."""
        self._held = []

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


def print_json(obj: Any) -> None:
    """Machine-readable output for --json."""
    out_console.print_json(json.dumps(obj, default=str))
