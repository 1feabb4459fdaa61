"""The limits on Redis, shared by every worker and machine: one Lua script call (gateway/limits_lua.py) per
admission, a single round trip on one pipelined connection (gateway/redis_pipe.py), atomic in Redis. The
scripts are `limits`' own acquire scripts for both strategies, run for every limit in one call, on
`limits`' key layout (`LIMITS:` prefix, `{key}`/`{key}/-1` sliding windows), so `limits`' strategies read
the same state (tests check they agree).

Settlements (a token reservation replaced by the real usage, after the response) do not cost a round trip
of their own: they wait in this process, summed per token counter, and the next admission's script applies
them before it checks anything. When no admission comes within `SETTLE_LINGER_S`, one SETTLE call sends
all that waited. Until then the reservation stays counted, which can only make a limit stricter, never let
a request through that would not fit.

When Redis fails, the settlements a call carried are put back and sent with the next admission that reaches
Redis again, or alone every `retry_s`. A settlement older than its window (`EXPIRY`, 60 s) is given up and
counted (`expired`): the counter it corrects has rolled over, so applying it then would miscount the next
window. (A call that timed out after Redis ran it is applied twice when retried: the limit then errs by that
request's reservation for one window.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from limits.aio.storage import RedisStorage

from gateway.limit_windows import (
    EXPIRY,
    Admission,
    LimitSpec,
    refusal,
    request_state,
    tightest,
    token_state,
)
from gateway.limits_lua import ADMIT, SETTLE
from gateway.redis_pipe import RedisPipe, script_sha

__all__ = ["SETTLE_LINGER_S", "RedisBackend"]

log = logging.getLogger("skymarket.gateway.limits")

SETTLE_LINGER_S = 0.02  # the longest a settlement waits for an admission to carry it
_PREFIX = RedisStorage.PREFIX  # the same keys as `limits`' own Redis storage uses
_EXPIRY_ARG = str(EXPIRY).encode()


Slot = tuple[bytes, bytes, bytes]  # a token counter's previous and current keys, and its limit


@dataclass(frozen=True)
class _Keys:
    """One limit's Redis keys and script arguments, encoded once (redis-py would encode them per call)."""

    requests: bytes
    prev: bytes
    cur: bytes
    rpm: bytes
    tpm: bytes


@lru_cache(maxsize=4096)
def _keys(spec: LimitSpec) -> _Keys:
    tok = f"{_PREFIX}:{{{spec.token_key()}}}"
    return _Keys(f"{_PREFIX}:{spec.request_key()}".encode(), f"{tok}/-1".encode(), tok.encode(),
                 str(spec.rpm).encode(), str(spec.tpm).encode())


class RedisBackend:
    name = "redis"

    def __init__(self, pipe: RedisPipe, *, on_error: Callable[[BaseException], None], retry_s: float = 5.0) -> None:
        self.pipe = pipe
        self.on_error = on_error  # a settlement sent alone failed (there is no request to fail)
        self.retry_s = retry_s  # while Redis fails, waiting settlements are sent alone this often
        self._admit_sha, self._settle_sha = script_sha(ADMIT), script_sha(SETTLE)
        self._pending: dict[Slot, int] = {}  # (prev, cur, tpm) -> tokens to add
        self._since: dict[Slot, float] = {}  # (prev, cur, tpm) -> when its oldest settlement was queued
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.expired = 0  # settlements given up: Redis was down past their window

    @property
    def waiting(self) -> int:
        """Token counters with a settlement waiting in this process."""
        return sum(1 for amount in self._pending.values() if amount)

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        now = time.time()
        pending, since = self._take()
        keys: list[bytes] = []
        args: list[Any] = [repr(now), _EXPIRY_ARG, tokens, len(specs), 0]
        for spec, mine in zip(specs, own, strict=True):
            k = _keys(spec)
            keys += (k.requests, k.prev, k.cur)
            args += (k.rpm, k.tpm, b"1" if mine else b"0")
        args[4] = _add_settlements(pending, keys, args)
        try:
            out = await self.pipe.eval_script(ADMIT, self._admit_sha, keys, args)
        except BaseException:  # the settlements it carried wait for the next call
            self._put_back(pending, since)
            raise
        if int(out[0]) == 0:  # refused: index of the limit, kind, and what its reset is computed from
            spec, kind = specs[int(out[1]) - 1], "requests" if int(out[2]) == 1 else "tokens"
            if kind == "requests":
                raise refusal(spec, kind, float(out[3]) + EXPIRY - now)
            prev_n, prev_ttl, cur_n, cur_ttl = (int(v) for v in out[3:7])
            raise refusal(spec, kind, token_state(spec.tpm, prev_n, prev_ttl / 1000, cur_n, cur_ttl / 1000).reset_s)
        requests, token_windows = [], []
        figures = iter(out[1:])
        for spec, mine in zip(specs, own, strict=True):
            if not mine:
                continue
            count, oldest, prev_n, prev_ttl, cur_n, cur_ttl = (next(figures) for _ in range(6))
            requests.append(request_state(spec.rpm, int(count), float(oldest), now))
            token_windows.append(token_state(spec.tpm, int(prev_n), int(prev_ttl) / 1000, int(cur_n),
                                             int(cur_ttl) / 1000))
        return Admission(reserved=list(specs) if tokens else [], tokens=tokens, backend=self,
                         requests=tightest(requests), token_state=tightest(token_windows))

    def settle(self, specs: Sequence[LimitSpec], amount: int) -> None:
        """Queues `amount` (< 0: given back) for each limit's token counter; the next admission sends it.
        Called on the event loop (the timer needs it)."""
        now = time.monotonic()
        for spec in specs:
            k = _keys(spec)
            slot = (k.prev, k.cur, k.tpm)
            self._pending[slot] = self._pending.get(slot, 0) + amount
            self._since.setdefault(slot, now)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SETTLE_LINGER_S, self._linger_over)

    def _take(self) -> tuple[dict[Slot, int], dict[Slot, float]]:
        """The waiting settlements, for a call to carry; those older than their window are given up."""
        pending, since = self._pending, self._since
        self._pending, self._since = {}, {}
        cutoff = time.monotonic() - EXPIRY
        stale = [slot for slot, t in since.items() if t < cutoff]
        for slot in stale:
            del since[slot]
            if pending.pop(slot, 0):
                self.expired += 1
        if stale:
            log.warning("gave up %d token settlement(s) older than their %d s window (Redis was down)",
                        len(stale), EXPIRY)
        return pending, since

    def _put_back(self, pending: dict[Slot, int], since: dict[Slot, float]) -> None:
        """Settlements a failed call carried wait again (before any queued since), and are retried alone."""
        for slot, amount in pending.items():
            self._pending[slot] = self._pending.get(slot, 0) + amount
            self._since[slot] = min(since.get(slot, time.monotonic()), self._since.get(slot, float("inf")))
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.retry_s, self._linger_over)

    def _linger_over(self) -> None:
        self._timer = None
        if self._pending:
            task = asyncio.ensure_future(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Sends what waits, then closes the connection (what Redis does not take then is given up, logged:
        those reservations stay counted until their window ends, at most a minute)."""
        await self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiting:
            log.warning("%d token settlement(s) not sent at shutdown: Redis did not take them", self.waiting)
        await self.pipe.aclose()

    async def flush(self) -> None:
        """Sends the settlements waiting in this process now, and waits for one the timer sent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tasks:
            await asyncio.gather(*self._tasks)
        await self._send()

    async def _send(self) -> None:
        """One SETTLE call with all that waits; put back if Redis fails (and `on_error`: the outage)."""
        pending, since = self._take()
        keys: list[bytes] = []
        args: list[Any] = [_EXPIRY_ARG]
        if not _add_settlements(pending, keys, args):
            return
        try:
            await self.pipe.eval_script(SETTLE, self._settle_sha, keys, args)
        except Exception as exc:
            self._put_back(pending, since)
            self.on_error(exc)

def _add_settlements(pending: dict[Slot, int], keys: list[bytes], args: list[Any]) -> int:
    """Appends each non-zero settlement's keys (previous, current counter) and args (tpm, amount); how many."""
    count = 0
    for (prev, cur, tpm), amount in pending.items():
        if amount:
            keys += (prev, cur)
            args += (tpm, amount)
            count += 1
    return count
