"""A background writer: outputs are merged in a thread, in the order they were handed over.

Prediction hands each batch's output (cells to append to the GeoPackage, values to accumulate
into ``risk.tif``) to :class:`BackgroundWriter` and goes on to the next batch; one thread merges
them in order, so the files are the ones a synchronous loop writes, byte for byte, and the
model never waits for a write unless the writer falls ``depth`` batches behind (memory stays
bounded). An error in the writer is raised in the caller at its next ``put`` or at ``close``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_STOP = object()


class BackgroundWriter(Generic[T]):
    """Call ``write(item)`` for every ``put(item)``, in order, in one background thread.

    Use as a context manager: leaving it normally waits for every item to be written (and raises
    the writer's error, if any); leaving it by an exception stops the writer without waiting
    for the rest.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 4):
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None  # raised once in the caller
        self._failed = threading.Event()  # stays set: nothing is written after a failure
        self._abandon = threading.Event()
        self._t = threading.Thread(target=self._run, name="riotvit-writer", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            if self._failed.is_set() or self._abandon.is_set():
                continue  # drain: the caller learns of the error, nothing more is written
            try:
                self._write(item)
            except BaseException as e:  # handed to the caller
                self._error = e
                self._failed.set()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def put(self, item: T) -> None:
        """Queue ``item`` (waits while ``depth`` items are pending); raises an earlier write's error."""
        self._raise()
        self._q.put(item)

    def close(self) -> None:
        """Wait until every item is written; raises the writer's error, if any."""
        if self._t.is_alive():
            self._q.put(_STOP)
            self._t.join()
        self._raise()

    def abandon(self) -> None:
        """Stop without writing what is still queued (after a failure elsewhere)."""
        self._abandon.set()
        if self._t.is_alive():
            self._q.put(_STOP)
            self._t.join()
        self._error = None

    def __enter__(self) -> BackgroundWriter[T]:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()
