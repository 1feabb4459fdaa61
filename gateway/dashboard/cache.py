"""The dashboard's bucket cache: closed buckets kept in memory, open ones read again on every refresh.

A bucket is closed an hour after its end (rows carry the request's start time and are written when it ends,
so late rows land within that hour). Open hour and day buckets are single rollup rows per group (the rollups
are written with each request), so a refresh of any window reads only its open buckets: for the 7- and 30-day
views, today's few dozen rows. Each replica keeps its own cache; closed buckets never change, so replicas agree.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable

from gateway.dashboard.queries import SETTLE, STEP, Bucket, bucket_key, query_buckets
from gateway.ledger import Ledger

__all__ = ["BucketCache", "merge"]


def merge(start: str, parts: Iterable[Bucket]) -> Bucket:
    """One bucket holding the sums of `parts` (e.g. a day from its hours)."""
    out = Bucket(start=start)
    for part in parts:
        for g, v in part.groups.items():
            out.add(g, v)
        for edge, n in part.latency.items():
            out.latency[edge] = out.latency.get(edge, 0) + n
    return out


class BucketCache:
    """Closed buckets, kept in memory per (unit, start); open ones are always queried."""

    def __init__(self, max_buckets: int = 5_000) -> None:
        self._items: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()
        self.max_buckets = max_buckets

    def buckets(self, ledger: Ledger, unit: str, starts: list[dt.datetime], now: dt.datetime) -> list[Bucket]:
        """Every bucket of `starts` (empty ones included), from the cache or one query of the missing span.

        Args:
            ledger: the usage ledger.
            unit: minute | hour | day.
            starts: consecutive bucket starts (naive UTC), oldest first.
            now: the current time.
        """
        now = now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now
        step = STEP[unit]
        keys = [bucket_key(s, unit) for s in starts]
        with self._lock:
            cached = {k: self._items[(unit, k)] for k in keys if (unit, k) in self._items}
        missing = [s for s, k in zip(starts, keys, strict=True) if k not in cached]
        fresh = query_buckets(ledger, unit, missing[0], missing[-1] + step) if missing else {}
        out = [cached.get(k) or fresh.get(k) or Bucket(start=k) for k in keys]
        with self._lock:
            for s, k, bucket in zip(starts, keys, out, strict=True):
                if k not in cached and s + step + SETTLE <= now:
                    self._items[(unit, k)] = bucket
            while len(self._items) > self.max_buckets:
                self._items.pop(next(iter(self._items)))
        return out
