"""The limits in this process: `limits`' MemoryStorage, driven through its public storage calls,
synchronously on the event loop (no await between check and count, so an admission is atomic)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import limits
from limits.storage import MemoryStorage

from gateway.limit_windows import EXPIRY, Admission, LimitSpec, refusal, request_state, tightest, token_state

__all__ = ["MemoryBackend"]

log = logging.getLogger("skymarket.gateway.limits")

_EXPIRE_EVERY_S = 5.0  # how often expired entries are dropped (inline, on the event loop)
# MemoryStorage's private expiry pass and the hook every storage operation calls to schedule it (limits 5.x).
_EXPIRE = "_MemoryStorage__expire_events"
_SCHEDULE = "_MemoryStorage__schedule_expiry"


def _quiet_memory_storage(storage_class: type[MemoryStorage] = MemoryStorage) -> MemoryStorage:
    """`limits`' MemoryStorage without its expiry thread, or as upstream made it if its internals changed.

    Upstream starts a `threading.Timer` every 10 ms while there is traffic. Besides the thread start (up to
    a few ms), the timer thread takes the GIL from the event loop mid-request, and the token counter releases
    the GIL on every count, so the loop then waits for the switch interval (5 ms): that was the memory
    backend's p99. Here the same expiry pass runs inline, at most every `_EXPIRE_EVERY_S` (entries only need
    dropping to bound memory; counts ignore expired entries anyway). The hook replaced is the name-mangled
    method every storage operation calls, on this instance only (a subclass would wrap every method once
    more). If a `limits` release renames or drops either method, or the `timer`, the storage is left exactly
    as upstream built it (its expiry thread included) and a warning says so: slower at p99, never broken.

    Args:
        storage_class: the storage to build (tests pass one whose internals differ).
    """
    storage = storage_class()
    expire = getattr(storage, _EXPIRE, None)
    cancel = getattr(getattr(storage, "timer", None), "cancel", None)
    if not callable(expire) or not callable(getattr(storage, _SCHEDULE, None)) or not callable(cancel):
        log.warning("limits %s: MemoryStorage's expiry internals changed; keeping its expiry thread "
                    "(in-process limits work as before, with a slower p99)", getattr(limits, "__version__", "?"))
        return storage
    cancel()
    due = time.monotonic() + _EXPIRE_EVERY_S

    def schedule_expiry() -> None:
        nonlocal due
        now = time.monotonic()
        if now >= due:
            due = now + _EXPIRE_EVERY_S
            expire()

    setattr(storage, _SCHEDULE, schedule_expiry)
    return storage


class MemoryBackend:
    name = "memory"

    def __init__(self, storage_class: type[MemoryStorage] = MemoryStorage) -> None:
        self.storage = _quiet_memory_storage(storage_class)

    async def admit(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        return self.admit_now(specs, tokens, own)  # no await inside: atomic on the event loop

    def admit_now(self, specs: Sequence[LimitSpec], tokens: int, own: Sequence[bool]) -> Admission:
        s, now = self.storage, time.time()
        req_keys = [spec.request_key() for spec in specs]
        tok_keys = [spec.token_key() for spec in specs]
        requests, token_windows = [], []
        for spec, key, mine in zip(specs, req_keys, own, strict=True):
            oldest, count = s.get_moving_window(key, spec.rpm, EXPIRY)
            if count >= spec.rpm:
                raise refusal(spec, "requests", oldest + EXPIRY - now)
            if mine:
                requests.append(request_state(spec.rpm, count + 1, oldest if count else now, now))
        for spec, key, mine in zip(specs, tok_keys, own, strict=True):
            if not tokens and not mine:
                continue
            prev, prev_ttl, cur, cur_ttl = s.get_sliding_window(key, EXPIRY)
            if tokens and math.floor(prev * prev_ttl / EXPIRY) + cur + tokens > spec.tpm:
                raise refusal(spec, "tokens", token_state(spec.tpm, prev, prev_ttl, cur, cur_ttl).reset_s)
            if mine:
                token_windows.append(token_state(spec.tpm, prev, prev_ttl, cur + tokens, cur_ttl))
        for spec, key, tok_key in zip(specs, req_keys, tok_keys, strict=True):  # every limit has room: count
            s.acquire_entry(key, spec.rpm, EXPIRY)
            if tokens:
                s.incr(_current_window(s, tok_key), 2 * EXPIRY, amount=tokens)
        return Admission(reserved=list(specs) if tokens else [], tokens=tokens, backend=self,
                         requests=tightest(requests), token_state=tightest(token_windows))

    def settle(self, specs: Sequence[LimitSpec], amount: int) -> None:
        for spec in specs:
            if amount < 0:  # giving back always applies
                self.storage.incr(_current_window(self.storage, spec.token_key()), 2 * EXPIRY, amount=amount)
            else:  # an overshoot is charged when it still fits (the window is full anyway otherwise)
                self.storage.acquire_sliding_window_entry(spec.token_key(), spec.tpm, EXPIRY, amount)

    async def flush(self) -> None:
        """Nothing waits here: settlements apply at once."""

    async def aclose(self) -> None:
        """Nothing to close."""


def _current_window(storage: MemoryStorage, key: str) -> str:
    return storage.sliding_window_keys(key, EXPIRY, time.time())[1]
