"""`BatchWriter`: one background thread that writes finished requests down in batches.

Every recorded request ends with a ledger row, an audit line, metrics and an alert check. Handing each one
to a worker thread of its own (`anyio.to_thread.run_sync`) cost more CPU on the event loop than the writes
themselves (bench/overhead.py), and wrote one database transaction per request. Here the event loop only
puts the request on a queue; the writer thread takes whatever has queued up (one item when idle, dozens
under load) and writes it in one go (one ledger transaction per batch). The request then waits for its
batch with a plain future, resolved by one `call_soon_threadsafe` per batch: when the middleware returns,
the request is written down, as before (a test or a script reading the ledger right after a response sees
it), but the client already has its response by then.

Nothing is lost at shutdown: `stop()` drains the queue before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BatchWriter"]

log = logging.getLogger("skymarket.recording")

_STOP = object()


class BatchWriter:
    """Writes items with `write(batch)` on one thread; `submit()` from any thread, `wait()` from a loop."""

    def __init__(self, write: Callable[[Sequence[Any]], None], *, max_batch: int = 512, name: str = "writer") -> None:
        """Args:
        write: writes a batch; must not raise (it is logged and the batch is dropped if it does).
        max_batch: the most items one `write` call gets.
        name: the thread's name.
        """
        self._write = write
        self._max = max_batch
        self._name = name
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

    def submit(self, item: Any, done: asyncio.Future[None] | None = None) -> None:
        """Queues `item`; `done` (a future of a running loop) is resolved once its batch is written."""
        if not self.running:  # not started (a test or a script using the app without its lifespan)
            self._write([item])
            if done is not None:
                done.set_result(None)
            return
        self._queue.put((item, done))

    async def wait_written(self, item: Any, *, timeout: float = 5.0) -> None:
        """Queues `item` and returns once it is written, or after `timeout` s (a stuck database must not
        hold the request open; the item stays queued)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(timeout, _set_all, [done])
        self.submit(item, done)
        try:
            await done
        finally:
            timer.cancel()

    def flush(self, timeout: float = 10.0) -> bool:
        """Blocks until everything queued so far is written (True) or `timeout` passes (False)."""
        if not self.running:
            return True
        ev = threading.Event()
        self._queue.put(ev)
        return ev.wait(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            items, events, stop = [], [], False
            nxt: Any = first
            while True:
                if nxt is _STOP:
                    stop = True
                elif isinstance(nxt, threading.Event):
                    events.append(nxt)
                else:
                    items.append(nxt)
                if len(items) >= self._max:
                    break
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
            if items:
                try:
                    self._write([item for item, _ in items])
                except Exception:  # the writer must outlive a bad batch
                    log.exception("writing a batch of %d requests failed", len(items))
                _resolve([done for _, done in items if done is not None])
            for ev in events:
                ev.set()
            if stop:
                self._drain()
                return

    def _drain(self) -> None:
        rest: list[Any] = []
        while True:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(nxt, threading.Event):
                nxt.set()
            elif nxt is not _STOP:
                rest.append(nxt)
        if rest:
            try:
                self._write([item for item, _ in rest])
            except Exception:
                log.exception("writing the last %d requests failed", len(rest))
            _resolve([done for _, done in rest if done is not None])


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    """Resolves the waiting requests' futures: one wake-up per loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for fut in futures:
        by_loop.setdefault(fut.get_loop(), []).append(fut)
    for loop, futs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_set_all, futs)


def _set_all(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
