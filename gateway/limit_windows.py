"""What the limits count and report, whichever backend counts it (gateway/limits_memory.py, limits_redis.py).

Requests use the moving window of the `limits` package (exact: one timestamp per request); tokens its
sliding window counter (a moving window stores one entry per unit, and a request can cost thousands of
tokens). The figures are computed as `limits`' get_window_stats computes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from limits import RateLimitItemPerMinute

from errors import RateLimited

__all__ = ["EXPIRY", "LABEL", "Admission", "Backend", "LimitRefused", "LimitSpec", "WindowState", "refusal",
           "request_state", "tightest", "token_state"]

EXPIRY = 60  # seconds: every limit here is per minute
LABEL = {"user": "this end user", "key": "this API key", "global": "the whole service"}


@dataclass(frozen=True)
class LimitSpec:
    """One pair of limits for one subject: `scope` is user, key or global; `ident` names the subject."""

    scope: str
    ident: str
    rpm: int
    tpm: int

    def request_key(self) -> str:
        return _key_for(self.rpm, self.scope, self.ident)

    def token_key(self) -> str:
        return _key_for(self.tpm, self.scope, self.ident)


@lru_cache(maxsize=4096)
def _key_for(amount: int, scope: str, ident: str) -> str:
    """The storage key `limits` uses for a per-minute limit of `amount` on (scope, ident)."""
    return RateLimitItemPerMinute(amount, namespace="skymarket").key_for(scope, ident)


@dataclass(frozen=True)
class WindowState:
    """What the X-RateLimit-* headers say about one kind of limit (the tightest that applies)."""

    limit: int
    remaining: int
    reset_s: int


@dataclass
class Admission:
    """An admitted request: what it reserved, on which backend, and the header figures."""

    reserved: list[LimitSpec] = field(default_factory=list)
    tokens: int = 0
    backend: Backend | None = None
    requests: WindowState | None = None
    token_state: WindowState | None = None
    settled: bool = False


class LimitRefused(RateLimited):
    """A 429 that knows which limit refused: `limit` is user_rpm, key_tpm, global_rpm, ..."""

    def __init__(self, message: str, *, limit: str, kind: str, window: WindowState) -> None:
        super().__init__(message, retry_after=window.reset_s)
        self.limit = limit
        self.kind = kind  # requests | tokens
        self.window = window


class Backend(Protocol):
    name: str

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission: ...

    def settle(self, specs: Sequence[LimitSpec], amount: int) -> None: ...

    async def flush(self) -> None: ...

    async def aclose(self) -> None: ...


def request_state(limit: int, count: int, oldest: float, now: float) -> WindowState:
    """A moving window holding `count` requests, the oldest at `oldest`."""
    return WindowState(limit, max(0, limit - count), max(0, math.ceil(oldest + EXPIRY - now)))


def token_state(limit: int, prev: int, prev_ttl: float, cur: int, cur_ttl: float) -> WindowState:
    """A sliding window counter: previous window's count weighted by its remaining time, plus the current."""
    weighted = prev * prev_ttl / EXPIRY + cur
    reset = 0.0
    if prev > 0 or cur > 0:
        reset = min(prev_ttl % (EXPIRY / prev) if prev > 0 else math.inf, cur_ttl % EXPIRY if cur > 0 else math.inf)
    return WindowState(limit, max(0, limit - math.floor(weighted)), max(0, math.ceil(reset)))


def tightest(states: list[WindowState]) -> WindowState | None:
    return min(states, key=lambda s: s.remaining) if states else None  # min keeps the first of equals


def refusal(spec: LimitSpec, kind: str, reset_in: float) -> LimitRefused:
    amount = spec.rpm if kind == "requests" else spec.tpm
    wait = max(1, math.ceil(reset_in))
    return LimitRefused(
        f"rate limit reached: {amount} {kind} per minute for {LABEL[spec.scope]}; retry in {wait} s",
        limit=f"{spec.scope}_{'rpm' if kind == 'requests' else 'tpm'}", kind=kind,
        window=WindowState(amount, 0, wait),
    )
