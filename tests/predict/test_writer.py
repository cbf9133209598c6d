"""The background writer merges outputs in order, and its errors reach the caller."""

from __future__ import annotations

import threading
import time

import pytest

from riotvit.errors import OutputPathError
from riotvit.predict.writer import BackgroundWriter


def test_items_are_written_in_order_in_another_thread():
    seen, threads = [], set()

    def write(i):
        if i % 7 == 0:
            time.sleep(0.002)  # a slow write does not reorder the rest
        seen.append(i)
        threads.add(threading.get_ident())

    with BackgroundWriter(write, depth=3) as w:
        for i in range(200):
            w.put(i)
    assert seen == list(range(200))
    assert threads and threading.get_ident() not in threads


def test_a_write_error_is_raised_in_the_caller_and_later_items_are_not_written():
    seen = []

    def write(i):
        if i == 5:
            raise OutputPathError("cells.gpkg: disk full; free space and rerun")
        seen.append(i)

    w = BackgroundWriter(write, depth=2)
    with pytest.raises(OutputPathError, match="disk full"):
        for i in range(100):
            w.put(i)
        w.close()
    time.sleep(0.05)  # items still queued when the caller learnt of the error stay unwritten
    w.close()  # the error was raised once; closing again waits and raises nothing
    assert seen == [0, 1, 2, 3, 4]


def test_leaving_by_an_exception_abandons_the_queue():
    seen = []
    gate = threading.Event()

    def write(i):
        gate.wait(0.3)  # the first write is still running when the caller fails
        seen.append(i)

    with pytest.raises(KeyError), BackgroundWriter(write, depth=8) as w:
        for i in range(5):
            w.put(i)
        raise KeyError("model failed")
    assert seen in ([], [0])  # at most the write in progress; the 4 queued items are dropped
