"""Requests and tokens per minute, per API key, per end user and for the whole service.

Requests use the moving window of the `limits` package (exact: one timestamp per request); tokens its
sliding window counter (a moving window stores one entry per unit, and a request can cost thousands of
tokens). Tokens are reserved before the call (prompt tokens counted offline + the max tokens the answer may
take) and settled afterwards with the real usage, so concurrent requests can never together exceed a limit.

One request is one admission, all or nothing: every limit that applies (user, key, service; requests, and
tokens when the route is paid) is checked first, and only when all have room is anything counted. A refusal
costs no limit anything. The X-RateLimit-* figures come from the same pass, not from extra reads.

    memory  gateway/limits_memory.py: `limits`' MemoryStorage, on the event loop (atomic: no await inside).
    Redis   gateway/limits_redis.py: one Lua script call per admission, which also carries the settlements
            of earlier requests (so one round trip per request, not two), on `limits`' own key layout.

Redis calls have short timeouts and no retries; when Redis fails, GATEWAY_REDIS_FAILURE decides: `fallback`
(default) counts in this process for GATEWAY_REDIS_RETRY_S, then tries Redis again; `deny` answers 503.
Either way the outage is logged and alerted once, and its end logged once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from errors import InputRejected, NotReady, RateLimited
from gateway.limit_windows import LABEL, Admission, Backend, LimitRefused, LimitSpec, WindowState
from gateway.limits_memory import MemoryBackend

if TYPE_CHECKING:
    from gateway.limits_redis import RedisBackend

__all__ = ["Admission", "LimitRefused", "LimitSpec", "Limiter", "WindowState"]

log = logging.getLogger("skymarket.gateway.limits")


class Limiter:
    """Admits or refuses requests against their limits; settles token reservations afterwards."""

    def __init__(self, *, redis_url: str | None = None, timeout_s: float = 1.0, on_failure: str = "fallback",
                 retry_s: float = 5.0, alert: Callable[[str, str], None] | None = None) -> None:
        self.redis_url = redis_url
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.retry_s = retry_s
        self.alert = alert or (lambda kind, message: None)
        self.memory: Backend = MemoryBackend()
        self.redis: RedisBackend | None = None
        self._down_until = 0.0
        self._outage = False
        self._outage_at: dt.datetime | None = None
        self._error: str | None = None

    def start(self) -> None:
        """Builds the Redis connection (it connects on first use, in the serving event loop)."""
        if self.redis_url and self.redis is None:
            from gateway.limits_redis import RedisBackend
            from gateway.redis_pipe import RedisPipe

            # No retries, short timeouts: a dead Redis costs one quick failure, then the fallback decides.
            self.redis = RedisBackend(RedisPipe(self.redis_url, timeout_s=self.timeout_s), on_error=self._failed,
                                      retry_s=self.retry_s)

    @property
    def backend_name(self) -> str:
        return self._pick().name

    def _pick(self) -> Backend:
        if self.redis is None:
            return self.memory
        if time.monotonic() < self._down_until:
            if self.on_failure == "deny":
                raise NotReady("rate limiting is unavailable; try again shortly", code="limits_unavailable",
                               retry_after=self.retry_s)
            return self.memory
        return self.redis

    def status(self) -> dict[str, Any] | None:
        """None while Redis answers (or is not used); else what /readyz shows under `degraded.rate_limits`."""
        if not self._outage:
            return None
        return {"store": "redis", "counting": "per process" if self.on_failure == "fallback" else "refusing (503)",
                "error": self._error, "since": self._outage_at.isoformat() if self._outage_at else None,
                "settlements_waiting": self.redis.waiting if self.redis is not None else 0}

    def settlement_figures(self) -> tuple[int, int]:
        """(settlements waiting for Redis, settlements given up past their window): for /metrics."""
        if self.redis is None:
            return 0, 0
        return self.redis.waiting, self.redis.expired

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_s
        self._error = type(exc).__name__
        if not self._outage:
            self._outage = True
            self._outage_at = dt.datetime.now(dt.UTC)
            what = "per-process limits" if self.on_failure == "fallback" else "refusing requests (503)"
            message = f"Redis unreachable for rate limits ({type(exc).__name__}): {what} until it is back"
            log.error(message)
            self.alert("rate_limit_store_down", message)

    def _ok(self, backend: Backend) -> None:
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
                    f"allowed for {LABEL[spec.scope]}: send less text or ask for fewer max_tokens",
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

    def settle(self, admission: Admission, *, used_tokens: int | None) -> None:
        """Replaces a reservation by the real usage; None (usage unknown) keeps the reservation.

        Synchronous, so nothing can cancel it halfway (a client leaving mid-stream): in memory it is counted
        at once, on Redis it waits for the next admission to carry it (gateway/limits_redis.py). Never raises:
        a store failing only leaves the reservation counted until its window ends.
        """
        if admission.settled or admission.backend is None or not admission.reserved:
            return
        admission.settled = True
        if used_tokens is None or used_tokens == admission.tokens:
            return
        try:
            # < 0: give back the unused part; > 0: charge the overshoot (when it fits: else the window is full)
            admission.backend.settle(admission.reserved, used_tokens - admission.tokens)
        except Exception:  # Redis only queues here; a failed send later is an outage (`_failed`, via on_error)
            log.exception("settling a token reservation failed")

    async def flush(self) -> None:
        """Sends the settlements still waiting for an admission to carry them (Redis)."""
        if self.redis is not None:
            await self.redis.flush()

    async def aclose(self) -> None:
        """Sends what waits and closes the Redis connection: on shutdown."""
        if self.redis is not None:
            await self.redis.aclose()
