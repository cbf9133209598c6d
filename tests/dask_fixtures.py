"""A two-process local Dask cluster for the tests of tile and predict on Dask.

``LocalCluster(n_workers=2, processes=True)``: real worker processes, as on a cluster, so what
a task needs must travel to it (paths, plans, arrays) and nothing is shared by accident.
"""

from __future__ import annotations

import os
import signal

import pytest

from riotvit.cluster import local_cluster

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def dask_client():
    """A client of a fresh two-worker local cluster (one thread per worker), closed after the module."""
    cluster = local_cluster(2)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def worker_pids(client) -> list[int]:
    """The process ids of the client's workers."""
    return sorted(client.run(os.getpid).values())


class KillOneWorker:
    """A progress reporter that kills one worker process (SIGKILL) the first time work advances.

    The run is then mid-way, with blocks in flight on the killed worker: Dask's nanny restarts
    the worker and the scheduler reruns its blocks elsewhere.
    """

    def __init__(self, client):
        self.pid = worker_pids(client)[0]
        self.killed = False

    def start(self, total, description, unit="crops", per_item=None):
        pass

    def advance(self, n=1):
        if not self.killed:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)

    def log(self, message):
        pass

    def stop(self):
        pass
