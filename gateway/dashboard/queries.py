"""The dashboard's aggregated queries over the usage ledger: two GROUP BY queries per window, never the rows.

A window is a whole number of buckets ending with the current one (1h: 60 minutes, 24h: 24 hours, 7d and 30d:
7 and 30 UTC days), so every bucket but the last is closed. Per bucket the database returns:

- sums grouped by (model, route, key): requests, tokens, cost, errors, fallbacks, rate-limited (429),
  guard blocks, cache hits; enough for every figure by model, route or key;
- a latency histogram (bins 5% of their decade's start wide, 180 per decade), from which p50/p95 are read.
  These percentiles are approximate (the bin's midpoint: within 2.5% of the exact nearest-rank value); exact
  ones come from `/usage`.

`gateway/dashboard/cache.py` keeps closed buckets, so a refresh reads only the open hour. Bucket keys are ISO
strings, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Float, Integer, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger import Ledger, usage_table

__all__ = ["SETTLE", "STEP", "WINDOWS", "Bucket", "Window", "bin_midpoint", "bucket_key", "bucket_start", "percentile",
           "query_buckets", "window_buckets"]

Window = Literal["1h", "24h", "7d", "30d"]
# window -> (bucket unit, number of buckets)
WINDOWS: dict[str, tuple[str, int]] = {"1h": ("minute", 60), "24h": ("hour", 24), "7d": ("day", 7),
                                       "30d": ("day", 30)}
STEP = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
SETTLE = dt.timedelta(hours=1)  # a bucket is cached once it ended this long ago (rows carry the start time)
# Histogram bins: in each decade below `limit` ms, bins are `width` ms wide (5% of the decade's start).
_BINS = ((10.0, 0.05), (100.0, 0.5), (1_000.0, 5.0), (10_000.0, 50.0), (100_000.0, 500.0))
_TOP_WIDTH = 5_000.0


@dataclass
class Bucket:
    """One bucket's partial aggregates (mergeable)."""

    start: str  # ISO, naive UTC
    # (model, route, key) -> [requests, input, cached, output, cost, errors, fallbacks, limited, blocked, hits]
    groups: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    latency: dict[float, int] = field(default_factory=dict)  # bin lower edge -> count


def _floor(ledger: Ledger, x: ColumnElement[Any]) -> ColumnElement[Any]:
    # SQLite may lack floor(); CAST truncates, the same as floor for latencies (never negative).
    return cast(x, Integer) if ledger.is_sqlite else func.floor(x)


def _bin(ledger: Ledger) -> ColumnElement[Any]:
    lat = usage_table.c.latency_ms
    whens = [(lat < limit, cast(_floor(ledger, lat / width), Float) * width) for limit, width in _BINS]
    return case(*whens, else_=cast(_floor(ledger, lat / _TOP_WIDTH), Float) * _TOP_WIDTH)


def bin_midpoint(edge: float) -> float:
    """The middle of the histogram bin whose lower edge is `edge`."""
    for limit, width in _BINS:
        if edge < limit:
            return edge + width / 2
    return edge + _TOP_WIDTH / 2


def _bucket_expr(ledger: Ledger, unit: str) -> ColumnElement[Any]:
    t = usage_table.c
    if unit == "day":
        return t.day
    if ledger.is_sqlite:  # ts is stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        return func.substr(t.ts, 1, 13 if unit == "hour" else 16)
    return func.date_trunc(unit, t.ts)


def bucket_key(value: Any, unit: str) -> str:
    if isinstance(value, dt.datetime):
        if unit == "day":
            return value.date().isoformat()
        return value.replace(tzinfo=None).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).replace(" ", "T")
    return text if unit == "day" else (text + ":00")[:16]


def bucket_start(t: dt.datetime, unit: str) -> dt.datetime:
    """The start of the bucket holding `t` (naive UTC)."""
    t = t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t
    if unit == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(second=0, microsecond=0)


def window_buckets(window: str, now: dt.datetime) -> tuple[str, list[dt.datetime]]:
    """The bucket unit and the bucket starts of a window ending with the bucket holding `now`."""
    unit, n = WINDOWS[window]
    last = bucket_start(now, unit)
    return unit, [last - STEP[unit] * (n - 1 - i) for i in range(n)]


def query_buckets(ledger: Ledger, unit: str, since: dt.datetime, until: dt.datetime) -> dict[str, Bucket]:
    """Aggregates of the rows with since <= ts < until, by bucket (two queries).

    Args:
        ledger: the usage ledger.
        unit: minute | hour | day.
        since: the first bucket's start (naive UTC).
        until: the end of the last bucket (naive UTC).
    """
    t = usage_table.c
    b = _bucket_expr(ledger, unit).label("b")
    one = 1

    def count_if(cond: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((cond, one), else_=0))

    model, key = func.coalesce(t.model, "(none)"), func.coalesce(t.key_name, "(none)")
    where = (t.ts >= since, t.ts < until)
    sums = select(
        b, model, t.route, key, func.count(), func.sum(t.input_tokens), func.sum(t.cached_tokens),
        func.sum(t.output_tokens), func.sum(t.cost_usd), count_if(t.error), count_if(t.fallback),
        count_if(t.status == 429), count_if(t.guard_action == "block"), count_if(t.cache_hit),
    ).where(*where).group_by(b, model, t.route, key)
    lat_bin = _bin(ledger).label("bin")
    hist = select(b, lat_bin, func.count()).where(*where).group_by(b, lat_bin)
    out: dict[str, Bucket] = {}
    with ledger.engine.connect() as conn:
        for row in conn.execute(sums):
            k = bucket_key(row[0], unit)
            bucket = out.setdefault(k, Bucket(start=k))
            bucket.groups[(str(row[1]), str(row[2]), str(row[3]))] = [float(v or 0) for v in row[4:]]
        for bv, edge, n in conn.execute(hist):
            k = bucket_key(bv, unit)
            out.setdefault(k, Bucket(start=k)).latency[float(edge)] = int(n)
    return out


def percentile(hist: dict[float, int], pct: int) -> float | None:
    """Nearest-rank percentile of a histogram, as the midpoint of the bin it falls in."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, (total * pct + 99) // 100)
    seen = 0
    for edge in sorted(hist):
        seen += hist[edge]
        if seen >= rank:
            return bin_midpoint(edge)
    return None  # unreachable
