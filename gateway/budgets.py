"""Hard daily budgets in USD: per API key (its `daily_budget_usd`) and for the whole service
(GATEWAY_DAILY_BUDGET_USD), per UTC day, read from the usage ledger (`Ledger.spend_since`).

What happens over budget: routes that call a paid model (chat, describe; search only with its LLM parser)
are refused with 402 `budget_exceeded` before anything runs; routes without a paid call (search, guard)
keep working, and so does everything when the service runs on the local model only (it costs 0, so spend
does not grow). The first refusal of a period raises one alert (`budget_exhausted`). The soft alert when
daily spend crosses AI_COST_ALERT_THRESHOLD is raised by `gateway.alerts` (once per day, across replicas).

Spend is re-read at most every GATEWAY_BUDGET_CACHE_S per key, in a worker thread. A request never waits
for that read once a figure is known: a figure older than the cache time (but under `_STALE_S`) is used
while the fresh one is read in the background, and the cost of every request this process serves is added
to the cached figures as it settles (`add_spend`). So a budget can be overshot by what *other* processes
spend within that time (plus calls already running): a hard stop, not a to-the-cent one.
GATEWAY_BUDGET_CACHE_S=0 reads the ledger on every check.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import anyio

from errors import BudgetExceeded

__all__ = ["Budgets", "SpendSource", "day_start"]

log = logging.getLogger("skymarket.gateway.budgets")

_STALE_S = 60.0  # a figure up to this old is used while a fresh one is read; older ones are waited for


class SpendSource(Protocol):
    """What budgets need from the usage ledger (`gateway.ledger.Ledger`)."""

    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float: ...


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the current UTC day: the budget period."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class _Cached:
    value: float  # the ledger's figure, plus what this process spent since it was read
    at: float  # monotonic time of the read
    day: dt.datetime
    refreshing: bool = False


class Budgets:
    """Checks today's spend against the hard budgets that apply to a request."""

    def __init__(self, *, ledger: SpendSource | None, daily_budget_usd: float | None, cache_s: float = 5.0,
                 alert: Callable[[str, str], None] | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.ledger = ledger
        self.daily_budget_usd = daily_budget_usd
        self.cache_s = cache_s
        self.alert = alert or (lambda kind, message: None)
        self.clock = clock
        self._cache: dict[str | None, _Cached] = {}
        self._alerted: set[tuple[str | None, dt.datetime]] = set()
        self._executor: ThreadPoolExecutor | None = None

    async def spend_today(self, key_name: str | None = None) -> float:
        """Today's spend (UTC), by one key or all. A failing ledger counts as 0 spent (or the last figure),
        logged: budgets must not take the service down with the database."""
        day = day_start(self.clock())
        hit = self._cache.get(key_name)
        if hit is not None and hit.day == day and self.cache_s > 0:
            age = time.monotonic() - hit.at
            if age < self.cache_s:
                return hit.value
            if age < max(_STALE_S, self.cache_s):
                if not hit.refreshing:
                    hit.refreshing = True
                    self._pool().submit(self._read, key_name, day)
                return hit.value
        if self.ledger is None:
            return 0.0
        return await anyio.to_thread.run_sync(self._read, key_name, day)

    def _read(self, key_name: str | None, day: dt.datetime) -> float:
        """Reads the ledger (in a worker thread) and caches the figure."""
        assert self.ledger is not None
        old = self._cache.get(key_name)
        known = old.value if old is not None and old.day == day else 0.0
        try:
            value = max(float(self.ledger.spend_since(day, key_name=key_name)), known)
        except Exception as exc:
            log.error("budget check could not read the ledger (%s); not enforcing until it can",
                      type(exc).__name__)
            value = known
        # max: this process's own spend added since the last read may not be in the ledger yet
        self._cache[key_name] = _Cached(value, time.monotonic(), day)
        return value

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budget-read")
        return self._executor

    def add_spend(self, key_name: str | None, usd: float) -> None:
        """Adds the cost of a request this process served to the cached figures of its key and the service,
        so budgets see it before the next ledger read."""
        if usd <= 0:
            return
        for who in {key_name, None}:
            hit = self._cache.get(who)
            if hit is not None:
                hit.value += usd

    async def check(self, *, key_name: str, key_budget_usd: float | None) -> None:
        """Raises `BudgetExceeded` when the key's or the service's budget for today is spent.

        Args:
            key_name: the API key's name (its spend is summed from the ledger by name).
            key_budget_usd: the key's own daily budget, None for none.
        """
        if key_budget_usd is not None:
            spent = await self.spend_today(key_name)
            if spent >= key_budget_usd:
                self._refuse(key_name, f"this API key's daily budget (${key_budget_usd:.2f}) is spent")
        if self.daily_budget_usd is not None:
            spent = await self.spend_today(None)
            if spent >= self.daily_budget_usd:
                self._refuse(None, f"the service's daily budget (${self.daily_budget_usd:.2f}) is spent")

    def _refuse(self, who: str | None, what: str) -> None:
        day = day_start(self.clock())
        if (who, day) not in self._alerted:
            self._alerted.add((who, day))
            message = f"{what}: paid model calls refused until 00:00 UTC"
            log.error(message)
            self.alert("budget_exhausted", message)
        tomorrow = day + dt.timedelta(days=1)
        wait = max(1.0, (tomorrow - self.clock()).total_seconds())
        raise BudgetExceeded(f"{what}; paid AI features are paused until 00:00 UTC (search still works)",
                             retry_after=wait)
