"""What every command shares: error handling, the console, progress bars, option merging."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
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


class RichReporter:
    """A rich progress bar with a rate column (crops/s or any unit)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet or not sys.stderr.isatty() and False
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
