"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from chains.breaker import BreakerRegistry, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: float) -> CircuitBreaker:
    opts = {"failure_threshold": 3, "window_s": 10.0, "reset_timeout_s": 5.0} | kw
    return CircuitBreaker("m", clock=clock, **opts)  # type: ignore[arg-type]


def test_opens_after_threshold_failures_within_window() -> None:
    clock = Clock()
    b = make(clock)
    b.failure()
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    with pytest.raises(CircuitOpen) as info:
        b.check()
    assert info.value.status == 503 and info.value.retry_after >= 1


def test_failures_outside_the_window_do_not_count() -> None:
    clock = Clock()
    b = make(clock)
    b.failure()
    b.failure()
    clock.now += 11
    b.failure()
    assert b.state == "closed"


def test_success_resets_the_count() -> None:
    clock = Clock()
    b = make(clock)
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state == "closed"


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    b = make(clock)
    for _ in range(3):
        b.failure()
    assert 4.9 <= b.retry_after() <= 5.0
    clock.now += 5
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one probe at a time
    b.success()
    assert b.state == "closed" and b.allow()


def test_failed_probe_opens_again() -> None:
    clock = Clock()
    b = make(clock)
    for _ in range(3):
        b.failure()
    clock.now += 5
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()


def test_released_probe_frees_the_slot() -> None:
    clock = Clock()
    b = make(clock)
    for _ in range(3):
        b.failure()
    clock.now += 5
    assert b.allow()
    b.release()
    assert b.allow()


def test_registry_shares_breakers_and_reports_changes() -> None:
    seen: list[tuple[str, str]] = []
    reg = BreakerRegistry(failure_threshold=1)
    reg.listeners.append(lambda name, state: seen.append((name, state)))
    assert reg.get("a") is reg.get("a")
    reg.get("a").failure()
    assert reg.states() == {"a": "open"} and seen == [("a", "open")]
