"""Micro-batching: calls made at the same time from many threads run as one batch, in one worker thread.

One query embedding costs about 5.8 ms of CPU on one core here; eight embedded in one ONNX run cost 2.6 ms
each, and one Chroma query for eight vectors costs about half of eight queries (BENCHMARKS.md, Search). Under
concurrent load requests wait for each other anyway, so the waiting is spent batching: the worker takes
whatever has queued up while the previous batch ran, never waits for more, so a lone request is not delayed
(beyond handing it to the worker thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs `fn` over the items submitted from many threads, one call per batch.

    The worker thread starts on the first call (nothing runs at import or construction) and is a daemon;
    `close()` stops it. With `max_batch=1` each item runs alone, still in the worker.

    Args:
        fn: maps a batch of items to their results, in the same order.
        max_batch: the most items per call of `fn`.
        name: the worker thread's name.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int, name: str = "batcher") -> None:
        self.fn = fn
        self.max_batch = max(1, max_batch)
        self.name = name
        self.batches = 0
        self.items = 0
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, item: T) -> R:
        """The result of `fn` for `item`, computed in a batch with whatever else is waiting (blocks)."""
        return self.submit(item).result()

    def submit(self, item: T) -> Future[R]:
        """Queues `item`; the future gets its result (an event loop awaits it with `asyncio.wrap_future`)."""
        future: Future[R] = Future()
        self._start()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Stops the worker once the queued items are done (it starts again on the next call)."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self.batches += 1
            self.items += len(batch)
            try:
                results = self.fn([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
            # Whatever fails belongs to the callers: each waiting request re-raises it in its own thread.
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    future.set_result(result)
            if stop:
                return
