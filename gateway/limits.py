"""Requests and tokens per minute, per API key, per end user and for the whole service.

Requests use the moving window of the `limits` package (exact: one timestamp per request); tokens its
sliding window counter (a moving window stores one entry per unit, and a request can cost thousands of
tokens). Tokens are reserved before the call (prompt tokens counted offline + the max tokens the answer may
take) and settled afterwards with the real usage, so concurrent requests can never together exceed a limit.

One request is one admission, all or nothing: every limit that applies (user, key, service; requests, and
tokens when the route is paid) is checked first, and only when all have room is anything counted. A refusal
costs no limit anything. The X-RateLimit-* figures come from the same pass, not from extra reads.

    memory  `limits`' MemoryStorage, driven through its public storage calls, synchronously on the event
            loop (no await between check and count, so the admission is atomic). Its expiry runs inline
            every few seconds instead of in a new thread every 10 ms (see `_QuietMemoryStorage`).
    Redis   one Lua script per admission and one per settlement (gateway/limits_lua.py): a single round
            trip, atomic in Redis. The script is `limits`' own acquire scripts for both strategies, run for
            every limit in one call, on `limits`' key layout (`LIMITS:` prefix, `{key}`/`{key}/-1` sliding
            windows), so `limits`' strategies read the same state (tests check they agree).

Redis calls have short timeouts and no retries; when Redis fails, GATEWAY_REDIS_FAILURE decides: `fallback`
(default) counts in this process for GATEWAY_REDIS_RETRY_S, then tries Redis again; `deny` answers 503.
Either way the outage is logged and alerted once, and its end logged once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.storage import MemoryStorage

from errors import InputRejected, NotReady, RateLimited
from gateway.limits_lua import ADMIT, SETTLE

__all__ = ["Admission", "LimitRefused", "LimitSpec", "Limiter", "WindowState"]

log = logging.getLogger("skymarket.gateway.limits")

_LABEL = {"user": "this end user", "key": "this API key", "global": "the whole service"}
_EXPIRY = 60  # seconds: every limit here is per minute
_EXPIRE_EVERY_S = 5.0  # how often the memory backend drops expired entries (inline, on the event loop)
_REDIS_PREFIX = RedisStorage.PREFIX  # the same keys as `limits`' own Redis storage uses


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
    backend: _Backend | None = None
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


class _Backend(Protocol):
    name: str

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission: ...

    async def settle(self, specs: Sequence[LimitSpec], amount: int) -> None: ...


# --- the figures, as `limits`' get_window_stats computes them ---
def _request_state(limit: int, count: int, oldest: float, now: float) -> WindowState:
    """A moving window holding `count` requests, the oldest at `oldest`."""
    return WindowState(limit, max(0, limit - count), max(0, math.ceil(oldest + _EXPIRY - now)))


def _token_state(limit: int, prev: int, prev_ttl: float, cur: int, cur_ttl: float) -> WindowState:
    """A sliding window counter: previous window's count weighted by its remaining time, plus the current."""
    weighted = prev * prev_ttl / _EXPIRY + cur
    reset = 0.0
    if prev > 0 or cur > 0:
        reset = min(prev_ttl % (_EXPIRY / prev) if prev > 0 else math.inf, cur_ttl % _EXPIRY if cur > 0 else math.inf)
    return WindowState(limit, max(0, limit - math.floor(weighted)), max(0, math.ceil(reset)))


def _tightest(states: list[WindowState]) -> WindowState | None:
    return min(states, key=lambda s: s.remaining) if states else None  # min keeps the first of equals


def _refusal(spec: LimitSpec, kind: str, reset_in: float) -> LimitRefused:
    amount = spec.rpm if kind == "requests" else spec.tpm
    wait = max(1, math.ceil(reset_in))
    return LimitRefused(
        f"rate limit reached: {amount} {kind} per minute for {_LABEL[spec.scope]}; retry in {wait} s",
        limit=f"{spec.scope}_{'rpm' if kind == 'requests' else 'tpm'}", kind=kind,
        window=WindowState(amount, 0, wait),
    )


# --- memory ---
def _quiet_memory_storage() -> MemoryStorage:
    """`limits`' MemoryStorage without its expiry thread.

    Upstream starts a `threading.Timer` every 10 ms while there is traffic. Besides the thread start (up to
    a few ms), the timer thread takes the GIL from the event loop mid-request, and tiktoken releases the GIL
    on every count, so the loop then waits for the switch interval (5 ms): that was the memory backend's
    p99. Here the same expiry pass runs inline, at most every `_EXPIRE_EVERY_S` (entries only need dropping
    to bound memory; counts ignore expired entries anyway). The hook replaced is the name-mangled method
    every storage operation calls, on this instance only (a subclass would wrap every method once more);
    if a `limits` release renames it, upstream behaviour (the thread) simply comes back.
    """
    storage = MemoryStorage()
    storage.timer.cancel()
    expire: Callable[[], None] = getattr(storage, "_MemoryStorage__expire_events")  # noqa: B009
    due = time.monotonic() + _EXPIRE_EVERY_S

    def schedule_expiry() -> None:
        nonlocal due
        now = time.monotonic()
        if now >= due:
            due = now + _EXPIRE_EVERY_S
            expire()

    setattr(storage, "_MemoryStorage__schedule_expiry", schedule_expiry)  # noqa: B010
    return storage


class _MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.storage = _quiet_memory_storage()

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        return self.admit_now(specs, tokens, own)  # no await inside: atomic on the event loop

    def admit_now(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        s, now = self.storage, time.time()
        req_keys = [spec.request_key() for spec in specs]
        tok_keys = [spec.token_key() for spec in specs]
        requests, token_windows = [], []
        for spec, key in zip(specs, req_keys, strict=True):
            oldest, count = s.get_moving_window(key, spec.rpm, _EXPIRY)
            if count >= spec.rpm:
                raise _refusal(spec, "requests", oldest + _EXPIRY - now)
            requests.append(_request_state(spec.rpm, count + 1, oldest if count else now, now))
        for spec, key, mine in zip(specs, tok_keys, own, strict=True):
            if not tokens and not mine:
                continue
            prev, prev_ttl, cur, cur_ttl = s.get_sliding_window(key, _EXPIRY)
            if tokens and math.floor(prev * prev_ttl / _EXPIRY) + cur + tokens > spec.tpm:
                raise _refusal(spec, "tokens", _token_state(spec.tpm, prev, prev_ttl, cur, cur_ttl).reset_s)
            if mine:
                token_windows.append(_token_state(spec.tpm, prev, prev_ttl, cur + tokens, cur_ttl))
        for spec, key, tok_key in zip(specs, req_keys, tok_keys, strict=True):  # every limit has room: count
            s.acquire_entry(key, spec.rpm, _EXPIRY)
            if tokens:
                s.incr(_current_window(s, tok_key), 2 * _EXPIRY, amount=tokens)
        own_requests = [r for r, mine in zip(requests, own, strict=True) if mine]
        return Admission(reserved=list(specs) if tokens else [], tokens=tokens, backend=self,
                         requests=_tightest(own_requests), token_state=_tightest(token_windows))

    async def settle(self, specs: Sequence[LimitSpec], amount: int) -> None:
        for spec in specs:
            if amount < 0:  # giving back always applies
                self.storage.incr(_current_window(self.storage, spec.token_key()), 2 * _EXPIRY, amount=amount)
            else:  # an overshoot is charged when it still fits (the window is full anyway otherwise)
                self.storage.acquire_sliding_window_entry(spec.token_key(), spec.tpm, _EXPIRY, amount)


def _current_window(storage: MemoryStorage, key: str) -> str:
    return storage.sliding_window_keys(key, _EXPIRY, time.time())[1]


# --- Redis ---


class _RedisBackend:
    name = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    @staticmethod
    def _keys(spec: LimitSpec) -> list[str]:
        tok = f"{_REDIS_PREFIX}:{{{spec.token_key()}}}"
        return [f"{_REDIS_PREFIX}:{spec.request_key()}", tok + "/-1", tok]

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        now = time.time()
        keys = [k for spec in specs for k in self._keys(spec)]
        args: list[Any] = [repr(now), _EXPIRY, tokens, len(specs)]
        for spec, mine in zip(specs, own, strict=True):
            args += [spec.rpm, spec.tpm, int(mine)]
        out = await self._admit(keys=keys, args=args)
        if int(out[0]) == 0:  # refused: index of the limit, kind, and what its reset is computed from
            spec, kind = specs[int(out[1]) - 1], "requests" if int(out[2]) == 1 else "tokens"
            if kind == "requests":
                raise _refusal(spec, kind, float(out[3]) + _EXPIRY - now)
            prev, prev_ttl, cur, cur_ttl = (int(v) for v in out[3:7])
            raise _refusal(spec, kind, _token_state(spec.tpm, prev, prev_ttl / 1000, cur, cur_ttl / 1000).reset_s)
        requests, token_windows = [], []
        figures = iter(out[1:])
        for spec, mine in zip(specs, own, strict=True):
            if not mine:
                continue
            count, oldest, prev, prev_ttl, cur, cur_ttl = (next(figures) for _ in range(6))
            requests.append(_request_state(spec.rpm, int(count), float(oldest), now))
            token_windows.append(_token_state(spec.tpm, int(prev), int(prev_ttl) / 1000, int(cur), int(cur_ttl) / 1000))
        return Admission(reserved=list(specs) if tokens else [], tokens=tokens, backend=self,
                         requests=_tightest(requests), token_state=_tightest(token_windows))

    async def settle(self, specs: Sequence[LimitSpec], amount: int) -> None:
        keys = [k for spec in specs for k in self._keys(spec)[1:]]
        await self._settle(keys=keys, args=[_EXPIRY, amount, *(spec.tpm for spec in specs)])


class Limiter:
    """Admits or refuses requests against their limits; settles token reservations afterwards."""

    def __init__(self, *, redis_url: str | None = None, timeout_s: float = 1.0, on_failure: str = "fallback",
                 retry_s: float = 5.0, alert: Callable[[str, str], None] | None = None) -> None:
        self.redis_url = redis_url
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.retry_s = retry_s
        self.alert = alert or (lambda kind, message: None)
        self.memory: _Backend = _MemoryBackend()
        self.redis: _Backend | None = None
        self._down_until = 0.0
        self._outage = False

    def start(self) -> None:
        """Builds the Redis client (it connects on first use, in the serving event loop)."""
        if self.redis_url and self.redis is None:
            from redis.asyncio import ConnectionPool, Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No retries, short timeouts: a dead Redis costs one quick failure, then the fallback decides.
            pool = ConnectionPool.from_url(
                self.redis_url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0), max_connections=256,
            )
            self.redis = _RedisBackend(Redis(connection_pool=pool))

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
        """Counts one request and reserves `tokens` against every limit in `specs`, or none of them.

        Args:
            specs: the limits that apply, most specific first, e.g. user, key, global.
            tokens: the reservation: estimated prompt tokens + the answer's max tokens (0: no model call).

        Raises:
            RateLimited: a limit is reached (429; `retry_after` set, the message names the limit).
            InputRejected: the reservation alone is larger than a tokens-per-minute limit.
            NotReady: Redis is down and GATEWAY_REDIS_FAILURE is `deny`.
        """
        for spec in specs:
            if tokens > spec.tpm:
                raise InputRejected(
                    f"this request may use up to {tokens} tokens, more than the {spec.tpm} tokens per minute "
                    f"allowed for {_LABEL[spec.scope]}: send less text or ask for fewer max_tokens",
                    code="token_estimate_over_limit",
                )
        # Headers describe the caller's own limits: the tightest of user and key (global is everyone's).
        own = [s.scope != "global" for s in specs]
        if not any(own):
            own = [True] * len(specs)
        backend = self._pick()
        try:
            admission = await backend.admit(specs, tokens, own)
        except RateLimited:
            self._ok(backend)
            raise
        except Exception as exc:  # the store failed, whatever the client library calls it
            if backend is self.memory:
                raise
            self._failed(exc)
            return await self.admit(specs, tokens=tokens)
        self._ok(backend)
        return admission

    async def settle(self, admission: Admission, *, used_tokens: int | None) -> None:
        """Replaces a reservation by the real usage; None (usage unknown) keeps the reservation.

        Never raises: a store failing here only leaves the reservation counted until its window ends.
        """
        if admission.settled or admission.backend is None or not admission.reserved:
            return
        admission.settled = True
        if used_tokens is None or used_tokens == admission.tokens:
            return
        try:
            # < 0: give back the unused part; > 0: charge the overshoot (when it fits: else the window is full)
            await admission.backend.settle(admission.reserved, used_tokens - admission.tokens)
        except Exception as exc:
            if admission.backend is self.redis:
                self._failed(exc)
            else:
                log.exception("settling a token reservation failed")
