"""Fan a stage's blocks out to Dask workers (``dask.distributed``), and merge their results in order.

riotvit schedules nothing itself: tile and predict cut their grid into independent blocks, and
this module hands those blocks to a Dask cluster, either a :class:`~distributed.LocalCluster`
of ``workers`` processes on this machine or a running scheduler at ``scheduler`` (a SLURM or
Kubernetes cluster, see the README's "Running on a cluster"). Dask moves the tasks, restarts a
worker that dies and reruns the blocks it held; riotvit only keeps every block idempotent and
merges results in block order, so a distributed run gives the same bytes as a single-process one.

Workers are separate processes started by Dask (spawned, never forked from a process where GDAL
is running); they open rasters and bundles themselves from paths. Each worker runs one task at
a time on one thread by default: GDAL, NumPy and torch inside a task are given the worker's
threads (Dask's nanny sets ``OMP_NUM_THREADS`` and friends to 1 before a worker starts).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import Field, model_validator

from riotvit.config import StrictModel
from riotvit.errors import ClusterError, RiotvitError


class ClusterConfig(StrictModel):
    """Where a stage's blocks run: this process (the default), local Dask workers, or a Dask scheduler."""

    workers: int | None = Field(None, ge=1, le=512, description="Run the blocks on a local Dask cluster of this many worker processes (one thread each), e.g. --workers 2. Default: one process, no Dask.")
    scheduler: str | None = Field(None, description="Address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (started by dask scheduler, dask-jobqueue or the Dask Kubernetes operator); its workers must see the inputs and the output folder at the same paths.")
    threads_per_worker: int = Field(1, ge=1, le=256, description="Threads per local Dask worker (GDAL, NumPy and torch inside one block).")
    train_nproc: int = Field(1, ge=1, le=1024, description="Training processes on this machine (torch DDP, started by torchrun; gloo on CPU, one GPU per process with CUDA). A pipeline setting; on the command line it is riotvit train --nproc N.")

    @model_validator(mode="after")
    def _one_engine(self) -> ClusterConfig:
        if self.workers is not None and self.scheduler:
            raise ValueError("give either workers (a local Dask cluster) or scheduler (a running one), not both")
        return self

    @property
    def enabled(self) -> bool:
        """True when the blocks go to Dask."""
        return bool(self.workers) or bool(self.scheduler)

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if self.workers:
            return f"local Dask cluster, {self.workers} worker process{'es' if self.workers > 1 else ''}"
        return "one process"


@contextmanager
def dask_client(cluster: ClusterConfig | Any | None) -> Iterator[Any | None]:
    """A ``distributed.Client`` for ``cluster``; None when it asks for no Dask.

    ``cluster`` may also be a ``Client`` the caller already holds (it is used, not closed).

    Raises:
        ClusterError: no scheduler answers at the address, or Dask is not installed.
    """
    if cluster is None or (isinstance(cluster, ClusterConfig) and not cluster.enabled):
        yield None
        return
    if not isinstance(cluster, ClusterConfig):  # a Client of the caller's
        yield cluster
        return
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency
        raise ClusterError("dask.distributed is not installed; pip install 'dask[distributed]' or drop --workers/--scheduler") from None
    if cluster.scheduler:
        try:
            client = Client(cluster.scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(f"--scheduler {cluster.scheduler}: no Dask scheduler answers there ({str(e).splitlines()[0][:120]}); "
                               "start one (`dask scheduler`, dask-jobqueue, the Kubernetes operator) or use --workers N "
                               "for a local cluster") from None
        try:
            yield client
        finally:
            client.close()
        return
    lc = local_cluster(cluster.workers, cluster.threads_per_worker)
    client = Client(lc)
    try:
        yield client
    finally:
        client.close()
        lc.close()


def worker_environ(threads: int = 1) -> dict[str, str]:
    """What Dask's nanny sets before a worker starts: the BLAS/OpenMP threads, and not ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets ``MALLOC_TRIM_THRESHOLD_=65536`` by default. Setting it at all turns off glibc's
    adaptive mmap threshold, so every large NumPy or torch array is a fresh mmap and its pages
    fault in again: on this machine that made a tiling block 29% slower (6.6 s against 8.5 s for
    the 25 blocks of a 48 km province, one process). Workers started by hand (``dask worker``)
    should leave it unset as well.
    """
    t = str(threads)
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


def local_cluster(workers: int, threads_per_worker: int = 1) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes for riotvit's blocks (quiet, no dashboard)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(threads_per_worker)}):
        return LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                            dashboard_address=None, silence_logs=logging.CRITICAL)


def n_workers(client: Any) -> int:
    """Workers currently attached to the client's scheduler (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def ordered_map(client: Any, fn: Callable[..., Any], items: Sequence[Any], *args: Any, ahead: int | None = None,
                name: str = "riotvit-block") -> Iterator[tuple[int, Any]]:
    """Run ``fn(item, *args)`` for every item on the cluster; yield ``(index, result)`` in item order.

    At most ``ahead`` tasks (default: four per worker) are in flight past the next result to
    yield, so the results waiting to be merged stay bounded however large the region is. A task
    whose worker dies is rerun by Dask on another worker; ``fn`` must therefore be idempotent.
    ``args`` are sent to the cluster once (scattered) and shared by every task.

    Raises:
        RiotvitError: the first one a task raised, unchanged (the same one-line error as in one process).
        ClusterError: a task failed for a reason of the cluster's (a worker killed too often).
    """
    from distributed import as_completed

    n = len(items)
    if n == 0:
        return
    ahead = ahead or 4 * n_workers(client)
    shared = [client.scatter(a, broadcast=True) for a in args]
    token = os.urandom(4).hex()
    done: dict[int, Any] = {}
    ac = as_completed(loop=client.loop)
    index: dict[str, int] = {}
    submitted = nxt = 0
    try:
        while nxt < n:
            while submitted < n and submitted - nxt < ahead:
                f = client.submit(_call, fn, items[submitted], *shared, key=f"{name}-{token}-{submitted}", pure=False)
                index[f.key] = submitted
                ac.add(f)
                submitted += 1
            f = next(ac)
            i = index.pop(f.key)
            done[i] = _result(f)
            f.release()
            while nxt in done:
                yield nxt, done.pop(nxt)
                nxt += 1
    finally:
        for f in list(ac.futures):
            f.cancel()


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a task; an error leaves the worker as a plain, picklable exception without its chain.

    A RiotvitError keeps its class and its one line; anything else becomes a RuntimeError naming
    its type. (A chained GDAL error may not unpickle on the client, and Dask would then replace
    the whole error by its repr.)
    """
    err: BaseException | None = None
    try:
        return fn(*args)
    except RiotvitError as e:
        err = type(e).__new__(type(e))
        Exception.__init__(err, str(e))
    except Exception as e:
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        at = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
        err = RuntimeError(f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}{at}")
    raise err


def _result(f: Any) -> Any:
    """The task's result; its exception re-raised as riotvit's own error (never a Dask traceback)."""
    if f.status != "error":
        return f.result()
    e = f.exception()
    if isinstance(e, RiotvitError):
        raise e.with_traceback(None)
    name = type(e).__name__
    if name == "KilledWorker":
        raise ClusterError(f"a block's task was lost with its worker more often than Dask allows ({str(e)[:120]}); "
                           "give the workers more memory (--memory-limit on dask worker) or smaller blocks (--block-crops)") from None
    text = str(e).splitlines()[0][:300] if str(e) else name
    raise ClusterError(f"a Dask worker failed on a block: {text}; this is a riotvit bug if the inputs are readable: "
                       "please report it with the command") from None


def worker_threads() -> int | None:
    """Threads of the Dask worker this runs in; None outside one (without importing distributed to ask)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        w = get_worker()
    except ValueError:
        return None
    return int(getattr(w, "nthreads", None) or w.state.nthreads)


def worker_cache() -> dict:
    """A dict that lives as long as the current worker process (models, readers opened once per worker)."""
    return _CACHE


_CACHE: dict = {}
