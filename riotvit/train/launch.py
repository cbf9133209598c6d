"""``riotvit train --nproc N``: start N training processes with torchrun and report how they ended.

torchrun (``torch.distributed.run``) is the engine: it starts ``python -m riotvit.train ARGS``
N times on this machine (``--standalone``), each as one DDP rank (:mod:`riotvit.train.ddp`),
and waits. It runs in this process so that its own logs and its failure traceback stay quiet:
rank 0's progress and errors reach the terminal as in a single-process run (and are copied to
a temporary folder), the other ranks' stderr goes only to that folder, and when rank 0 did not
print an error, the first failing rank's one-line error is printed: once, however many ranks
failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGS_ENV = "RIOTVIT_DDP_LOGS"
"""Where the ranks copy their stderr (``rank{N}.log``), set by :func:`launch`."""


def launched() -> bool:
    """This process is a rank that torchrun started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


class _Tee:
    """A text stream that also copies what is written to a file (rank 0's stderr)."""

    def __init__(self, stream, copy):
        self._stream, self._copy = stream, copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._copy.flush()
        self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def log_rank_stderr() -> None:
    """In a rank started by :func:`launch`: stderr to the launcher's log folder (rank 0: also the terminal)."""
    logs, rank = os.environ.get(LOGS_ENV), int(os.environ.get("RANK", "0"))
    if not logs:
        return
    log = open(Path(logs) / f"rank{rank}.log", "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the process)
    sys.stderr = _Tee(sys.stderr, log) if rank == 0 else log


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


def _lines(log: Path) -> list[str]:
    if not log.is_file():
        return []
    return [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def _report(e, logs: Path, echo) -> int:
    """The first failing rank's exit code; its one-line error echoed unless rank 0 printed one."""
    failures = {int(r): f for r, f in e.failures.items()}
    # the first rank that failed by itself: it exited with an error, or died of a signal torchrun did not send
    r = min(failures, key=lambda k: (failures[k].exitcode <= 0, failures[k].exitcode == -signal.SIGTERM, k))
    f = failures[r]
    code = f.exitcode if f.exitcode > 0 else 1
    if any(ln.startswith("error:") for ln in _lines(logs / "rank0.log")):
        return code  # rank 0 printed its error on the terminal
    lines = _lines(logs / f"rank{r}.log")
    error = next((ln for ln in lines if ln.startswith("error:")), None)
    if error is None:
        how = f"was killed by signal {-f.exitcode}" if f.exitcode < 0 else f"exited with code {f.exitcode}"
        how += " (out of memory?)" if f.exitcode == -9 else ""
        last = f": {lines[-1]}" if lines and r else ""  # rank 0's log ends with its progress
        error = (f"error: training rank {r} {how}{last}"
                 + "; rerun without --nproc to see the error of a single process")
    echo(error)
    return code
