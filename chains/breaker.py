"""A circuit breaker per model: stop calling a model that keeps failing, probe it again later.

    closed ──(failure_threshold failures within window_s)──> open
    open ──(reset_timeout_s passed)──> half_open: one probe call is let through
    half_open ──probe succeeds──> closed        half_open ──probe fails──> open again

While a breaker is open, `allow()` is False and callers fail fast with `CircuitOpen`, so the fallback model
answers at once instead of after a full timeout. Thread-safe; time comes from an injectable clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from errors import ProviderUnavailable

__all__ = ["BreakerRegistry", "CircuitBreaker", "CircuitOpen", "State"]

State = Literal["closed", "open", "half_open"]


class CircuitOpen(ProviderUnavailable):
    """Raised instead of calling a model whose breaker is open (503 with Retry-After if no fallback answers)."""

    code = "circuit_open"

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__("the AI provider is unavailable; try again shortly", retry_after=max(1.0, retry_after))
        self.name = name


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        window_s: float = 30.0,
        reset_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, State], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._on_change = on_change
        self._failures: deque[float] = deque()
        self._state: State = "closed"
        self._opened_at = 0.0
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def retry_after(self) -> float:
        """Seconds until the next probe may go through (0 when closed)."""
        with self._lock:
            if self._state != "open":
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout_s - self._clock())

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one probe at a time is allowed."""
        with self._lock:
            self._maybe_half_open()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def check(self) -> None:
        """`allow()` or raise `CircuitOpen`."""
        if not self.allow():
            raise CircuitOpen(self.name, self.retry_after())

    def success(self) -> None:
        with self._lock:
            self._failures.clear()
            self._probing = False
            self._set("closed")

    def failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._probing = False
            if self._state == "half_open":
                self._open(now)
                return
            self._failures.append(now)
            while self._failures and self._failures[0] < now - self.window_s:
                self._failures.popleft()
            if len(self._failures) >= self.failure_threshold:
                self._open(now)

    def release(self) -> None:
        """A call that neither succeeded nor failed as a provider (e.g. cancelled) frees the probe slot."""
        with self._lock:
            self._probing = False

    # --- internals (lock held) ---
    def _open(self, now: float) -> None:
        self._opened_at = now
        self._failures.clear()
        self._set("open")

    def _maybe_half_open(self) -> None:
        if self._state == "open" and self._clock() >= self._opened_at + self.reset_timeout_s:
            self._set("half_open")

    def _set(self, state: State) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)


class BreakerRegistry:
    """One breaker per model name, shared by every use case of one app."""

    def __init__(self, **options: object) -> None:
        self._options = options
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str, State], None]] = []

    def get(self, name: str) -> CircuitBreaker:
        with self._lock:
            if name not in self._breakers:
                self._breakers[name] = CircuitBreaker(name, on_change=self._changed, **self._options)  # type: ignore[arg-type]
            return self._breakers[name]

    def states(self) -> dict[str, State]:
        with self._lock:
            breakers = list(self._breakers.values())
        return {b.name: b.state for b in breakers}

    def _changed(self, name: str, state: State) -> None:
        for listener in list(self.listeners):
            listener(name, state)
