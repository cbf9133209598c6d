"""``riotvit train --nproc N``: start N training processes with torchrun and report how they ended.

torchrun (``torch.distributed.run``) is the engine: it starts ``python -m riotvit.train ARGS``
N times on this machine (``--standalone``), each as one DDP rank (:mod:`riotvit.train.ddp`),
and waits. It runs in this process so that its own logs and its failure traceback stay quiet:
rank 0's progress and errors reach the terminal as in a single-process run, the other ranks'
stderr goes to a temporary folder, and when a rank other than 0 fails its one-line error is
printed once.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGS_ENV = "RIOTVIT_DDP_LOGS"
"""Where ranks other than 0 write their stderr (``rank{N}.log``), set by :func:`launch`."""

OWN_EXITS = (1, 2, 3)
"""Exit codes of a rank that reported its own failure (riotvit's error exits; 3: a peer failed)."""


def launched() -> bool:
    """This process is a rank that torchrun started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def quiet_rank_stderr() -> None:
    """In a rank other than 0 started by :func:`launch`, send stderr to the launcher's log folder."""
    logs, rank = os.environ.get(LOGS_ENV), int(os.environ.get("RANK", "0"))
    if logs and rank:
        sys.stderr = open(Path(logs) / f"rank{rank}.log", "w", buffering=1, encoding="utf-8")  # noqa: SIM115


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def launch(nproc: int, args: list[str], module: str = "riotvit.train", echo=None) -> int:
    """Run ``torchrun --standalone --nproc_per_node NPROC -m MODULE ARGS`` and return its exit code.

    Args:
        nproc: processes (ranks) on this machine; one GPU each on CUDA.
        args: the module's command-line arguments.
        module: the module each rank runs.
        echo: prints the failing rank's one-line error (default: to stderr).

    Returns:
        0 when every rank succeeded; else the exit code of the first failing rank (130 when interrupted).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    echo = echo or (lambda line: print(line, file=sys.stderr))
    logs = Path(tempfile.mkdtemp(prefix="riotvit-ddp-"))
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.CRITICAL)
    targs = get_args_parser().parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", module, *args])
    try:
        with _env(**{LOGS_ENV: str(logs), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}):
            run(targs)
        return 0
    except ChildFailedError as e:
        return _report(e, logs, echo)
    except (KeyboardInterrupt, SignalException):
        return 130
    finally:
        elastic.setLevel(level)
        shutil.rmtree(logs, ignore_errors=True)


def _report(e, logs: Path, echo) -> int:
    """The failing rank's exit code; its one-line error echoed unless rank 0 printed its own."""
    failures = {int(r): f for r, f in e.failures.items()}
    own = failures.get(0)
    if own is not None and own.exitcode in OWN_EXITS[:2]:
        return own.exitcode  # rank 0 printed its error on the terminal already
    r = min((r for r in failures if r), default=min(failures))
    f = failures[r]
    log = logs / f"rank{r}.log"
    lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()] \
        if log.is_file() else []
    error = next((ln for ln in lines if ln.startswith("error:")), None)
    if error is None:
        how = f"was killed by signal {-f.exitcode}" if f.exitcode < 0 else f"exited with code {f.exitcode}"
        error = (f"error: training rank {r} {how}" + (f": {lines[-1]}" if lines else "")
                 + "; rerun without --nproc to see the error of a single process")
    echo(error)
    return f.exitcode if f.exitcode > 0 else 1
