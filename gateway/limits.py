"""Requests and tokens per minute, per API key, per end user and for the whole service (the `limits` package).

Requests use the moving window (exact: one timestamp per request). Tokens use the sliding window counter,
because a moving window stores one entry per unit and a request can cost thousands of tokens. Tokens are
reserved before the call (prompt tokens counted offline + the max tokens the answer may take) and settled
afterwards with the real usage: the unused part is given back with a negative hit on the same counter, an
atomic Lua script on Redis, so concurrent requests can never together exceed a limit.

Limits are checked from the most specific to the most general (user, key, service), so a refusal by a
user's own limit costs neither the key nor the service anything. A refusal by a later limit does not give
back the requests already counted by earlier ones (a moving window cannot take one back): the error is on
the side of refusing. Tokens reserved before a refusal are given back.

State lives in memory, or on Redis when REDIS_URL is set (shared by every worker and machine). Redis calls
have short timeouts and no retries; when Redis fails, GATEWAY_REDIS_FAILURE decides: `fallback` (default)
counts in this process for GATEWAY_REDIS_RETRY_S, then tries Redis again; `deny` answers 503. Either way
the outage is logged and alerted once, and its end logged once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import MemoryStorage as SyncMemoryStorage
from limits.strategies import MovingWindowRateLimiter as SyncMovingWindow
from limits.strategies import SlidingWindowCounterRateLimiter as SyncSlidingWindow

from errors import InputRejected, NotReady, RateLimited

__all__ = ["Admission", "LimitRefused", "LimitSpec", "Limiter", "WindowState"]

log = logging.getLogger("skymarket.gateway.limits")

_LABEL = {"user": "this end user", "key": "this API key", "global": "the whole service"}


@dataclass(frozen=True)
class LimitSpec:
    """One pair of limits for one subject: `scope` is user, key or global; `ident` names the subject."""

    scope: str
    ident: str
    rpm: int
    tpm: int


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
    backend: _Backend | None = None
    requests: WindowState | None = None
    token_state: WindowState | None = None
    settled: bool = False


class _Sync:
    """A synchronous `limits` strategy behind the async interface. Used for memory: the async memory
    storage holds each key's lock across a thread hop on every expiry pass (milliseconds per request under
    load); the sync one is plain dict work, done without awaiting, so it is also atomic on the event loop."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return bool(self.limiter.hit(item, *identifiers, cost=cost))

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> Any:
        return self.limiter.get_window_stats(item, *identifiers)


class _Backend:
    def __init__(self, storage: Storage | SyncMemoryStorage, name: str) -> None:
        self.name = name
        self.requests: Any
        self.tokens: Any
        if isinstance(storage, SyncMemoryStorage):
            self.requests = _Sync(SyncMovingWindow(storage))
            self.tokens = _Sync(SyncSlidingWindow(storage))
        else:
            self.requests = MovingWindowRateLimiter(storage)
            self.tokens = SlidingWindowCounterRateLimiter(storage)


def _item(amount: int) -> RateLimitItemPerMinute:
    return RateLimitItemPerMinute(amount, namespace="skymarket")


class Limiter:
    """Admits or refuses requests against their limits; settles token reservations afterwards."""

    def __init__(self, *, redis_url: str | None = None, timeout_s: float = 1.0, on_failure: str = "fallback",
                 retry_s: float = 5.0, alert: Callable[[str, str], None] | None = None) -> None:
        self.redis_url = redis_url
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.retry_s = retry_s
        self.alert = alert or (lambda kind, message: None)
        self.memory = _Backend(SyncMemoryStorage(), "memory")
        self.redis: _Backend | None = None
        self._down_until = 0.0
        self._outage = False

    def start(self) -> None:
        """Builds the Redis client (it connects on first use, in the serving event loop)."""
        if self.redis_url and self.redis is None:
            from redis.asyncio import ConnectionPool
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No retries, short timeouts: a dead Redis costs one quick failure, then the fallback decides.
            pool = ConnectionPool.from_url(
                self.redis_url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0), max_connections=256,
            )
            storage = RedisStorage("async+" + self.redis_url, implementation="redispy", connection_pool=pool,  # type: ignore[arg-type]
                                   wrap_exceptions=True)
            self.redis = _Backend(storage, "redis")

    @property
    def backend_name(self) -> str:
        return self._pick().name

    def _pick(self) -> _Backend:
        if self.redis is None:
            return self.memory
        if time.monotonic() < self._down_until:
            if self.on_failure == "deny":
                raise NotReady("rate limiting is unavailable; try again shortly", code="limits_unavailable",
                               retry_after=self.retry_s)
            return self.memory
        return self.redis

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_s
        if not self._outage:
            self._outage = True
            what = "per-process limits" if self.on_failure == "fallback" else "refusing requests (503)"
            message = f"Redis unreachable for rate limits ({type(exc).__name__}): {what} until it is back"
            log.error(message)
            self.alert("rate_limit_store_down", message)

    def _ok(self, backend: _Backend) -> None:
        if backend is self.redis and self._outage:
            self._outage = False
            log.warning("Redis reachable again: rate limits are shared again")

    async def admit(self, specs: list[LimitSpec], *, tokens: int) -> Admission:
        """Counts one request and reserves `tokens` against every limit in `specs` (most specific first).

        Args:
            specs: the limits that apply, e.g. user, key, global.
            tokens: the reservation: estimated prompt tokens + the answer's max tokens (0: no model call).

        Raises:
            RateLimited: a limit is reached (429; `retry_after` set, the message names the limit).
            InputRejected: the reservation alone is larger than a tokens-per-minute limit.
            NotReady: Redis is down and GATEWAY_REDIS_FAILURE is `deny`.
        """
        backend = self._pick()
        try:
            admission = await self._admit(backend, specs, tokens)
        except (RateLimited, InputRejected):
            self._ok(backend)
            raise
        except Exception as exc:  # the storage failed, whatever the client library calls it
            if backend is self.memory:
                raise
            self._failed(exc)
            return await self.admit(specs, tokens=tokens)
        self._ok(backend)
        return admission

    async def _admit(self, b: _Backend, specs: list[LimitSpec], tokens: int) -> Admission:
        for spec in specs:
            if tokens > spec.tpm:
                raise InputRejected(
                    f"this request may use up to {tokens} tokens, more than the {spec.tpm} tokens per minute "
                    f"allowed for {_LABEL[spec.scope]}: send less text or ask for fewer max_tokens",
                    code="token_estimate_over_limit",
                )
        for spec in specs:
            item = _item(spec.rpm)
            if not await b.requests.hit(item, spec.scope, spec.ident):
                stats = await b.requests.get_window_stats(item, spec.scope, spec.ident)
                raise _refusal(spec, "requests", spec.rpm, stats.reset_time)
        admission = Admission(tokens=tokens, backend=b)
        if tokens:
            for spec in specs:
                item = _item(spec.tpm)
                if not await b.tokens.hit(item, spec.scope, spec.ident, cost=tokens):
                    await self._give_back(b, admission.reserved, tokens)
                    stats = await b.tokens.get_window_stats(item, spec.scope, spec.ident)
                    raise _refusal(spec, "tokens", spec.tpm, stats.reset_time)
                admission.reserved.append(spec)
        # Headers describe the caller's own limits: the tightest of user and key (global is everyone's).
        own = [s for s in specs if s.scope != "global"] or specs
        admission.requests = await self._state(b.requests, own, "rpm")
        admission.token_state = await self._state(b.tokens, own, "tpm")
        return admission

    async def _state(self, limiter: Any, specs: list[LimitSpec], kind: str) -> WindowState:
        best: WindowState | None = None
        now = time.time()
        for spec in specs:
            amount = spec.rpm if kind == "rpm" else spec.tpm
            stats = await limiter.get_window_stats(_item(amount), spec.scope, spec.ident)
            state = WindowState(amount, max(0, stats.remaining), max(0, math.ceil(stats.reset_time - now)))
            if best is None or state.remaining < best.remaining:
                best = state
        assert best is not None
        return best

    async def _give_back(self, b: _Backend, specs: list[LimitSpec], tokens: int) -> None:
        for spec in specs:
            # A negative hit: the same atomic acquire script, lowering the counter.
            await b.tokens.hit(_item(spec.tpm), spec.scope, spec.ident, cost=-tokens)

    async def settle(self, admission: Admission, *, used_tokens: int | None) -> None:
        """Replaces a reservation by the real usage; None (usage unknown) keeps the reservation.

        Never raises: a store failing here only leaves the reservation counted until its window ends.
        """
        if admission.settled or admission.backend is None or not admission.reserved:
            return
        admission.settled = True
        if used_tokens is None:
            return
        delta = admission.tokens - used_tokens
        if delta == 0:
            return
        try:
            for spec in admission.reserved:
                # delta > 0: give back the unused part; < 0: charge the overshoot (refused if it no longer
                # fits, as the window is then full anyway).
                await admission.backend.tokens.hit(_item(spec.tpm), spec.scope, spec.ident, cost=-delta)
        except Exception as exc:
            if admission.backend is self.redis:
                self._failed(exc)
            else:
                log.exception("settling a token reservation failed")


class LimitRefused(RateLimited):
    """A 429 that knows which limit refused: `limit` is user_rpm, key_tpm, global_rpm, ..."""

    def __init__(self, message: str, *, limit: str, kind: str, window: WindowState) -> None:
        super().__init__(message, retry_after=window.reset_s)
        self.limit = limit
        self.kind = kind  # requests | tokens
        self.window = window


def _refusal(spec: LimitSpec, kind: str, amount: int, reset_time: float) -> LimitRefused:
    wait = max(1, math.ceil(reset_time - time.time()))
    return LimitRefused(
        f"rate limit reached: {amount} {kind} per minute for {_LABEL[spec.scope]}; retry in {wait} s",
        limit=f"{spec.scope}_{'rpm' if kind == 'requests' else 'tpm'}", kind=kind,
        window=WindowState(amount, 0, wait),
    )
