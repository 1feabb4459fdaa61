"""`BatchWriter`: one background thread that writes finished requests down in batches.

Every recorded request ends with a ledger row, an audit line, metrics and an alert check. Handing each one
to a worker thread of its own (`anyio.to_thread.run_sync`) cost more CPU on the event loop than the writes
themselves (bench/overhead.py), and wrote one database transaction (four statements with the rollups) per
request. Here the event loop only puts the request on a queue; the writer thread waits up to `linger_s`
for more to arrive and writes them together (one ledger transaction per batch).

So the ledger, the audit log and the metrics trail the responses by up to `linger_s`. Readers that need
every finished request call `flush()` first (the /usage, /metrics and /dashboard routes do, server.py);
budgets read a cached spend anyway. Nothing queued is lost at shutdown: `stop()` drains the queue.
While the queue is empty the thread calls `idle()` every `idle_s` (the ledger's backlog retries its writes
there, gateway/durable.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BatchWriter"]

log = logging.getLogger("skymarket.recording")

_STOP = object()


class BatchWriter:
    """Writes items with `write(batch)` on one thread; `submit()` and `flush()` from any thread."""

    def __init__(self, write: Callable[[Sequence[Any]], None], *, max_batch: int = 512, linger_s: float = 0.2,
                 name: str = "writer", idle: Callable[[], None] | None = None, idle_s: float = 0.5) -> None:
        """Args:
        write: writes a batch; should not raise (it is logged and the batch is dropped if it does).
        max_batch: the most items one `write` call gets.
        linger_s: how long the writer waits for more items after the first one (0: write what is there).
        name: the thread's name.
        idle: called on the thread every `idle_s` while nothing is queued; should not raise (logged).
        idle_s: see `idle`.
        """
        self._write = write
        self._max = max_batch
        self._linger = linger_s
        self._name = name
        self._idle = idle
        self._idle_s = idle_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if not self.running:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Writes everything queued so far, then ends the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def submit(self, item: Any) -> None:
        """Queues `item` (from any thread; never blocks). Written at once when the writer is not running."""
        if not self.running:  # not started (a test or a script using the app without its lifespan)
            self._write([item])
            return
        self._queue.put(item)

    def flush(self, timeout: float = 10.0) -> bool:
        """Blocks until everything queued so far is written (True) or `timeout` passes (False)."""
        if not self.running:
            return True
        ev = threading.Event()
        self._queue.put(ev)
        return ev.wait(timeout)

    def _next(self) -> Any:
        """The next queued item; calls `idle` while there is none."""
        if self._idle is None:
            return self._queue.get()
        while True:
            try:
                return self._queue.get(timeout=self._idle_s)
            except queue.Empty:
                try:
                    self._idle()
                except Exception:  # the writer must outlive it
                    log.exception("the writer's idle task failed")

    def _run(self) -> None:
        while True:
            items: list[Any] = []
            events: list[threading.Event] = []
            stop = self._collect(self._next(), items, events)
            if items:
                try:
                    self._write(items)
                except Exception:  # the writer must outlive a bad batch
                    log.exception("writing a batch of %d requests failed", len(items))
            for ev in events:
                ev.set()
            if stop:
                return

    def _collect(self, first: Any, items: list[Any], events: list[threading.Event]) -> bool:
        """Gathers a batch starting with `first`: until `max_batch` items, `linger_s` after the first, a flush
        or a stop (both end the wait at once). Returns True on stop (after taking everything queued)."""
        nxt, stop = first, False
        deadline = time.monotonic() + self._linger
        while True:
            if nxt is _STOP:
                stop = True
            elif isinstance(nxt, threading.Event):
                events.append(nxt)
            else:
                items.append(nxt)
            if len(items) >= self._max and not stop:
                return False
            wait = 0.0 if (stop or events) else deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                return stop
