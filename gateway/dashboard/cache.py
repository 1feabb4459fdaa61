"""The dashboard's bucket cache: closed buckets kept in memory, open ones queried on every refresh.

A bucket is closed an hour after its end (rows carry the request's start time and are written when it ends,
so late rows land within that hour). An open day is put together from its hours, and the merge of its settled
hours is kept too: once warm, a refresh of any window reads only the current hour's rows. Each replica keeps
its own cache; rows of closed buckets never change, so replicas agree.
"""

from __future__ import annotations

import datetime as dt
import operator
import threading
from collections.abc import Iterable

from gateway.dashboard.queries import SETTLE, STEP, Bucket, bucket_key, bucket_start, query_buckets
from gateway.ledger import Ledger

__all__ = ["BucketCache", "merge"]


def merge(start: str, parts: Iterable[Bucket]) -> Bucket:
    """One bucket holding the sums of `parts` (e.g. a day from its hours)."""
    out = Bucket(start=start)
    for part in parts:
        for g, v in part.groups.items():
            have = out.groups.get(g)
            out.groups[g] = list(v) if have is None else list(map(operator.add, have, v))
        for edge, n in part.latency.items():
            out.latency[edge] = out.latency.get(edge, 0) + n
    return out


class BucketCache:
    """Closed buckets, kept in memory per (unit, start); open ones are always queried.

    An open day is put together from its hours, so that once they are cached a refresh of the 7- or 30-day
    view reads only the current hour's rows.
    """

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
        settled = [s + step + SETTLE <= now for s in starts]
        missing = [s for s, k, done in zip(starts, keys, settled, strict=True)
                   if k not in cached and (done or unit != "day")]
        fresh: dict[str, Bucket] = {}
        if missing:
            fresh = query_buckets(ledger, unit, missing[0], missing[-1] + step)
        for s, k, done in zip(starts, keys, settled, strict=True):
            if unit == "day" and not done and k not in cached:
                fresh[k] = self._open_day(ledger, s, k, now)
        out = [cached.get(k) or fresh.get(k) or Bucket(start=k) for k in keys]
        with self._lock:
            for k, bucket, done in zip(keys, out, settled, strict=True):
                if k not in cached and done:
                    self._items[(unit, k)] = bucket
            while len(self._items) > self.max_buckets:
                self._items.pop(next(iter(self._items)))
        return out

    def _open_day(self, ledger: Ledger, start: dt.datetime, key: str, now: dt.datetime) -> Bucket:
        """An open day: the merged settled hours (kept, so each refresh merges once) plus the open ones."""
        hour = STEP["hour"]
        last = min(start + STEP["day"], bucket_start(now, "hour") + hour)
        hours = [start + hour * i for i in range(int((last - start) / hour))]
        settled = [h for h in hours if h + hour + SETTLE <= now]
        part_key = (f"day-part-{len(settled)}", key)
        with self._lock:
            part = self._items.get(part_key)
        if part is None:
            part = merge(key, self.buckets(ledger, "hour", settled, now)) if settled else Bucket(start=key)
            with self._lock:
                self._items[part_key] = part
        return merge(key, [part, *self.buckets(ledger, "hour", hours[len(settled):], now)])
