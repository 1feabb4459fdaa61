"""Micro-batching: concurrent calls share one call of the function, results go back to their own caller,
a failure reaches every caller of that batch, and an event loop can await a submission."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from retrieval.batching import Batcher


class Gate:
    """A batch function that holds its first batch until released, so that the next callers queue up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.started.set()
        self.release.wait(5)
        return [i * 10 for i in items]


def test_waiting_calls_run_as_one_batch_in_order() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, max_batch=4)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher, 0)
        assert gate.started.wait(5)
        rest = [pool.submit(batcher, i) for i in range(1, 7)]
        while batcher._queue.qsize() < 6:  # all six are waiting behind the first batch
            threading.Event().wait(0.01)
        gate.release.set()
        assert first.result(5) == 0 and [f.result(5) for f in rest] == [i * 10 for i in range(1, 7)]
    assert gate.batches[0] == [0] and [len(b) for b in gate.batches[1:]] == [4, 2]
    assert (batcher.batches, batcher.items) == (3, 7)
    batcher.close()


def test_a_failure_reaches_every_caller_of_the_batch() -> None:
    def boom(items: list[str]) -> list[str]:
        raise ValueError(f"bad batch of {len(items)}")

    batcher: Batcher[str, str] = Batcher(boom, max_batch=8)
    with pytest.raises(ValueError, match="bad batch"):
        batcher("x")
    batcher.close()


def test_wrong_result_count_is_an_error_and_the_worker_survives() -> None:
    calls: list[list[int]] = []

    def short(items: list[int]) -> list[int]:
        calls.append(items)
        return [] if len(calls) == 1 else items

    batcher: Batcher[int, int] = Batcher(short, max_batch=2)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        batcher(1)
    assert batcher(2) == 2
    batcher.close()


def test_awaitable_from_an_event_loop_and_restarts_after_close() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: [i + 1 for i in items], max_batch=1)

    async def run() -> list[int]:
        return list(await asyncio.gather(*(asyncio.wrap_future(batcher.submit(i)) for i in range(5))))

    assert asyncio.run(run()) == [1, 2, 3, 4, 5]
    assert batcher.batches == 5  # max_batch=1: each alone
    batcher.close()
    assert batcher(41) == 42
    batcher.close()
