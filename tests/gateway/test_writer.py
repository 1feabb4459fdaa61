"""The batch writer: everything submitted is written once, in order, in batches; flush and stop lose nothing;
a failing batch does not stop the writer; it lingers for more items, but never past a flush or a stop; it calls
its idle task while nothing is queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from gateway.writer import BatchWriter


class Sink:
    """Records batches; can be told to block (to let a queue build up) or to fail once."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_next = False

    def __call__(self, batch: Sequence[Any]) -> None:
        self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database down")
        self.batches.append(list(batch))

    @property
    def items(self) -> list[Any]:
        return [x for b in self.batches for x in b]


def test_items_queued_while_the_writer_is_busy_go_in_one_batch() -> None:
    sink = Sink()
    w = BatchWriter(sink, linger_s=0)
    w.start()
    sink.gate.clear()
    w.submit("first")  # taken at once; the writer then blocks on the gate inside write
    for i in range(100):
        w.submit(i)
    sink.gate.set()
    assert w.flush(10)
    assert sink.items == ["first", *range(100)]
    assert len(sink.batches) <= 3  # "first", then the 100 that queued up behind it (one or two batches)
    w.stop()


def test_stop_writes_everything_queued() -> None:
    sink = Sink()
    w = BatchWriter(sink, max_batch=7)
    w.start()
    sink.gate.clear()
    for i in range(50):
        w.submit(i)
    sink.gate.set()
    w.stop()
    assert sink.items == list(range(50)) and max(len(b) for b in sink.batches) <= 7
    assert not w.running


def test_a_failing_batch_is_logged_and_the_writer_goes_on(caplog: Any) -> None:
    sink = Sink()
    w = BatchWriter(sink)
    w.start()
    sink.fail_next = True
    w.submit("lost")
    assert w.flush(10)
    w.submit("kept")
    assert w.flush(10)
    w.stop()
    assert sink.items == ["kept"] and "failed" in caplog.text


def test_without_a_thread_items_are_written_at_once() -> None:
    sink = Sink()
    w = BatchWriter(sink)
    w.submit("now")
    assert sink.items == ["now"] and w.flush()


def test_the_writer_waits_a_little_for_more_and_a_flush_cuts_the_wait_short() -> None:
    sink = Sink()
    w = BatchWriter(sink, linger_s=30.0)
    w.start()
    try:
        for i in range(5):
            w.submit(i)
        t0 = time.monotonic()
        assert w.flush(10)
        assert time.monotonic() - t0 < 10  # not the 30 s linger
        assert sink.batches == [[0, 1, 2, 3, 4]]
    finally:
        w.stop()


def test_stop_does_not_wait_for_the_linger() -> None:
    sink = Sink()
    w = BatchWriter(sink, linger_s=30.0)
    w.start()
    w.submit("a")
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 10 and sink.items == ["a"]


def test_idle_runs_while_nothing_is_queued_and_a_failing_one_does_not_stop_the_writer() -> None:
    sink, ticks = Sink(), []

    def idle() -> None:
        ticks.append(time.monotonic())
        if len(ticks) == 2:
            raise RuntimeError("retry failed")

    w = BatchWriter(sink, idle=idle, idle_s=0.01)
    w.start()
    try:
        deadline = time.monotonic() + 10
        while len(ticks) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        w.submit("still written")
        assert w.flush(10)
    finally:
        w.stop()
    assert len(ticks) >= 4 and sink.items == ["still written"]
