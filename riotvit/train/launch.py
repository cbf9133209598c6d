"""``riotvit train --nproc N`` and :func:`train_distributed`: N training processes started by torchrun.

torchrun (``torch.distributed.run``) is the engine: it starts ``python -m riotvit.train ARGS``
N times on this machine (``--standalone``), each as one DDP rank (:mod:`riotvit.train.ddp`),
and waits. It runs in this process so that its own logs and its failure traceback stay quiet:
rank 0's progress and errors reach the terminal as in a single-process run (and are copied to
a temporary folder), the other ranks' stderr goes only to that folder, and when rank 0 did not
print an error, the first failing rank's one-line error is printed: once, however many ranks
failed. :func:`train_distributed` (the library's way, e.g. for pipelines) runs every rank quietly
and raises that error as a :class:`~riotvit.errors.ClusterError`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from riotvit.errors import ClusterError
from riotvit.io import refuse_existing
from riotvit.train.config import TrainConfig
from riotvit.train.ddp import check_world
from riotvit.train.trainer import TrainResult

LOGS_ENV = "RIOTVIT_DDP_LOGS"
"""Where the ranks copy their stderr (``rank{N}.log``), set by :func:`launch`."""

QUIET_ENV = "RIOTVIT_DDP_QUIET"
"""Set (non-empty) by :func:`launch`: rank 0 writes only to its log, not to the terminal."""


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


def log_rank_output() -> None:
    """In a rank started by :func:`launch`: its output to the launcher's log folder (rank 0's stderr: also the
    terminal, and its stdout stays there, unless :func:`launch` runs the ranks quietly)."""
    logs, rank = os.environ.get(LOGS_ENV), int(os.environ.get("RANK", "0"))
    if not logs:
        return
    log = open(Path(logs) / f"rank{rank}.log", "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the process)
    if rank == 0 and not os.environ.get(QUIET_ENV):
        sys.stderr = _Tee(sys.stderr, log)
    else:
        sys.stderr = sys.stdout = log


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


@dataclass(frozen=True)
class Launch:
    """How a torchrun job ended."""

    code: int  # 0: every rank succeeded; else the first failing rank's exit code (130: interrupted)
    error: str | None = None  # that rank's one-line error, "error: ..."
    shown: bool = False  # rank 0 printed it on the terminal already


def launch(nproc: int, args: list[str], module: str = "riotvit.train", terminal: bool = True) -> Launch:
    """Run ``torchrun --standalone --nproc_per_node NPROC -m MODULE ARGS`` and wait for it.

    Args:
        nproc: processes (ranks) on this machine; one GPU each on CUDA.
        args: the module's command-line arguments.
        module: the module each rank runs.
        terminal: rank 0 prints to this process's stderr (progress, its error); else every rank
            writes only to the log folder and the error comes back in :class:`Launch` alone.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    logs = Path(tempfile.mkdtemp(prefix="riotvit-ddp-"))
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.CRITICAL)
    targs = get_args_parser().parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", module, *args])
    env = {LOGS_ENV: str(logs), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           QUIET_ENV: "" if terminal else "1"}
    try:
        with _env(**env):
            run(targs)
        return Launch(0)
    except ChildFailedError as e:
        return _report(e, logs, terminal)
    except (KeyboardInterrupt, SignalException):
        # rank 0 says what an interrupted run left behind
        return Launch(130, "error: interrupted; finished epochs are kept in OUT.partial: rerun to resume", terminal)
    finally:
        elastic.setLevel(level)
        shutil.rmtree(logs, ignore_errors=True)


def _lines(log: Path) -> list[str]:
    if not log.is_file():
        return []
    return [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def _error_line(log: Path) -> str | None:
    return next((ln for ln in _lines(log) if ln.startswith("error:")), None)


def _report(e, logs: Path, terminal: bool = True) -> Launch:
    """The first rank that failed by itself: its exit code and one-line error, and whether rank 0 showed one."""
    failures = {int(r): f for r, f in e.failures.items()}
    # it exited with an error, or died of a signal torchrun did not send
    r = min(failures, key=lambda k: (failures[k].exitcode <= 0, failures[k].exitcode == -signal.SIGTERM, k))
    f = failures[r]
    code = f.exitcode if f.exitcode > 0 else 1
    own = _error_line(logs / "rank0.log")
    if own is not None:  # all ranks check the same inputs: rank 0's error is theirs
        return Launch(code, own, shown=terminal)
    error = _error_line(logs / f"rank{r}.log")
    if error is None:
        lines = _lines(logs / f"rank{r}.log")
        how = f"was killed by signal {-f.exitcode}" if f.exitcode < 0 else f"exited with code {f.exitcode}"
        how += " (out of memory?)" if f.exitcode == -9 else ""
        last = f": {lines[-1]}" if lines and r else ""  # rank 0's log ends with its progress
        error = (f"error: training rank {r} {how}{last}"
                 "; rerun without --nproc to see the error of a single process")
    return Launch(code, error)


def train_distributed(tileset: str | Path, samples: str | Path, out: str | Path, config, nproc: int, *,
                      overwrite: bool = False) -> TrainResult:
    """:func:`riotvit.train.trainer.train` on ``nproc`` DDP processes of this machine, started by torchrun.

    The ranks run quietly (no progress); the resolved config travels as YAML in a temporary file.
    The result is read back from the bundle rank 0 wrote (``table`` is None).

    Raises:
        ConfigError: ``data.batch_size`` does not split over ``nproc`` processes.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
        ClusterError: a rank failed; the message is that rank's error.
    """
    cfg = config if config is not None else TrainConfig()
    check_world(cfg.data.batch_size, nproc)
    out = Path(out)
    refuse_existing(out, overwrite, "model bundle")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="riotvit-ddp-cfg-") as tmp:
        cfg_path = Path(tmp) / "train.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        args = [str(tileset), str(samples), "--out", str(out), "--config", str(cfg_path), "--quiet"]
        res = launch(nproc, args + (["--overwrite"] if overwrite else []), terminal=False)
    if res.code:
        raise ClusterError(f"training on {nproc} processes failed: {(res.error or '').removeprefix('error: ')}")
    return bundle_result(out, time.perf_counter() - t0)


def bundle_result(out: Path, seconds: float) -> TrainResult:
    """A :class:`TrainResult` read back from a finished bundle."""
    meta = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    tr = meta["training"]
    return TrainResult(out, json.loads((out / "metrics.json").read_text(encoding="utf-8")),
                       (out / "metrics.md").read_text(encoding="utf-8"), tr["best_epoch"], tr["epochs_run"], seconds,
                       tr["images_per_s"], tr["device"])
