"""Run a generator in a background thread, one or two items ahead of its consumer.

Used where the producer spends its time in GDAL or NumPy code that releases the GIL (decoding,
warping), so producing the next item overlaps with consuming the current one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class Prefetch(Iterator[T]):
    """Iterate ``make()`` in a daemon thread; exceptions re-raise in the consumer.

    Use as a context manager (or call ``close``) so an early exit stops the producer.
    """

    def __init__(self, make: Callable[[], Iterator[T]], depth: int = 2):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(make,), daemon=True)
        self._t.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make) -> None:
        try:
            for item in make():
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        item = self._q.get()
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        while self._t.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._t.join(0.05)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
