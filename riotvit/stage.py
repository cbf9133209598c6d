"""The prologue every stage shares: its config (or the default), its reporter (or a silent one),
the output path, the refusal to replace an existing output without ``overwrite``, and the clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from riotvit.io import refuse_existing
from riotvit.progress import NullReporter, Reporter

C = TypeVar("C")


@dataclass
class StageStart(Generic[C]):
    """What a stage starts from."""

    cfg: C
    rep: Reporter
    out: Path
    t0: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since the stage started."""
        return time.perf_counter() - self.t0


def start_stage(config: C | None, default: type[C], out: str | Path, reporter: Reporter | None = None, *,
                overwrite: bool = False, what: str | None = None) -> StageStart[C]:
    """Resolve a stage's config, reporter and output, and start its clock.

    Args:
        config: the stage's config, or None for ``default()``.
        default: the config class.
        out: the output path.
        reporter: progress sink, or None for a silent one.
        overwrite: replacing an existing output is allowed.
        what: the output's name in the error message; None when the stage checks ``out`` itself.

    Raises:
        OutputExistsError: ``out`` exists, ``what`` is given and ``overwrite`` is False.
    """
    out = Path(out)
    if what is not None:
        refuse_existing(out, overwrite, what)
    return StageStart(config if config is not None else default(), reporter or NullReporter(), out)
