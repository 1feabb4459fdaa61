"""The dashboard's aggregated queries: per-bucket sums read from the ledger's rollups, never the rows.

A window is a whole number of buckets ending with the current one (1h: 60 minutes, 24h: 24 hours, 7d and 30d:
7 and 30 UTC days), so every bucket but the last is closed. Per bucket:

- sums by model, by route and by key (each dimension adds up to the bucket's totals): requests, tokens,
  cost, errors, fallbacks, rate-limited (429), guard blocks, cache hits; enough for every figure;
- a latency histogram (`gateway.ledger.latency_bin`: bins 5% of their decade's start wide), from which p50/p95
  are read. These percentiles are approximate (the bin's midpoint: within 2.5% of the exact nearest-rank
  value); exact ones come from `/usage`.

Hour and day buckets are rows of `usage_marginals` and `usage_latency` (written with each request, so open
buckets are current too): a 30-day view reads a few dozen rows per day plus its histograms. Minute buckets
(the 1h view) have no rollup and are summed from the last hour's rows (`query_row_buckets`, also the
reference the rollup is tested against). `gateway/dashboard/cache.py` keeps closed buckets. Bucket keys are
ISO strings, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import String, cast, func, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger import (
    BINS,
    DIMS,
    NONE,
    SUMS,
    TOP_WIDTH,
    Ledger,
    bin_sql,
    latency_table,
    marginals_table,
    row_sums,
    usage_table,
)

__all__ = ["SETTLE", "STEP", "WINDOWS", "Bucket", "Window", "bin_midpoint", "bucket_key", "bucket_start", "percentile",
           "query_buckets", "query_row_buckets", "window_buckets"]

Window = Literal["1h", "24h", "7d", "30d"]
# window -> (bucket unit, number of buckets)
WINDOWS: dict[str, tuple[str, int]] = {"1h": ("minute", 60), "24h": ("hour", 24), "7d": ("day", 7),
                                       "30d": ("day", 30)}
STEP = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
SETTLE = dt.timedelta(hours=1)  # a bucket is cached once it ended this long ago (rows carry the start time)
VALUES = 10  # the first ten of SUMS: requests .. cache_hits


@dataclass
class Bucket:
    """One bucket's partial aggregates (mergeable)."""

    start: str  # ISO, naive UTC
    # (dimension, name) -> [requests, input, cached, output, cost, errors, fallbacks, limited, blocked, hits];
    # dimension is model, route or key, and each dimension's entries add up to the bucket's totals
    groups: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    latency: dict[float, int] = field(default_factory=dict)  # bin lower edge -> count

    def add(self, key: tuple[str, str], values: list[float]) -> None:
        have = self.groups.get(key)
        if have is None:
            self.groups[key] = list(values)
        else:
            for i, x in enumerate(values):
                have[i] += x

    def totals(self) -> list[float]:
        """The bucket's sums over every request (its routes' entries added up)."""
        out = [0.0] * VALUES
        for (dim, _), v in self.groups.items():
            if dim == "route":
                for i, x in enumerate(v):
                    out[i] += x
        return out


def bin_midpoint(edge: float) -> float:
    """The middle of the histogram bin whose lower edge is `edge`."""
    for limit, width in BINS:
        if edge < limit:
            return edge + width / 2
    return edge + TOP_WIDTH / 2


def bucket_key(value: Any, unit: str) -> str:
    if isinstance(value, dt.datetime):
        if unit == "day":
            return value.date().isoformat()
        return value.replace(tzinfo=None).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return bucket_key(dt.datetime.fromisoformat(str(value)), unit)  # e.g. SQLite's '2026-11-20 13:00:00.000000'


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
    """Aggregates of the requests with since <= ts < until, by bucket: hours and days from the rollups (two
    range reads), minutes from the rows.

    Args:
        ledger: the usage ledger.
        unit: minute | hour | day.
        since: the first bucket's start (naive UTC).
        until: the end of the last bucket (naive UTC).
    """
    if unit == "minute":
        return query_row_buckets(ledger, unit, since, until)
    m, lt = marginals_table.c, latency_table.c
    # `start` is read as stored (no DateTime parsing of thousands of rows): one bucket key per distinct value.
    start = type_coerce(m.start, String)
    sums = select(start, m.dim, m.value, *[m[n] for n in SUMS[:VALUES]]).where(
        m.span == unit, m.start >= since, m.start < until)
    # A bucket's histogram comes back as two lists joined into strings (bins, counts; the same order, as both
    # aggregate the same rows): one row per bucket, not one per bin (the 30-day view has ~400 bins a day).
    hist = select(type_coerce(lt.start, String), func.aggregate_strings(cast(lt.bin, String), ","),
                  func.aggregate_strings(cast(lt.n, String), ",")).where(
        lt.span == unit, lt.start >= since, lt.start < until).group_by(lt.start)
    out: dict[str, Bucket] = {}
    keys: dict[Any, Bucket] = {}

    def bucket(value: Any) -> Bucket:
        b = keys.get(value)
        if b is None:
            k = bucket_key(value, unit)
            b = keys[value] = out.setdefault(k, Bucket(start=k))
        return b

    with ledger.engine.connect() as conn:  # fetchall: one driver call, not one per row
        for row in conn.execute(sums).all():
            bucket(row[0]).groups[(row[1], row[2])] = [float(v) for v in row[3:]]
        for value, edges, counts in conn.execute(hist).all():
            bucket(value).latency.update(zip(map(_edge, edges.split(",")), map(int, counts.split(",")), strict=True))
    return out


def _edge(text: str) -> float:
    """A bin edge read back from text: the exact float of `latency_bin` (SQLite prints 15 digits, so the
    edges below 10 ms, multiples of 0.05, are rebuilt from their index; the others print exactly)."""
    x = float(text)
    return x if x >= 10.0 else round(x / BINS[0][1]) * BINS[0][1]


def _bucket_expr(ledger: Ledger, unit: str) -> ColumnElement[Any]:
    t = usage_table.c
    if unit == "day":
        return t.day
    if ledger.is_sqlite:  # ts is stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        return func.substr(t.ts, 1, 13 if unit == "hour" else 16)
    return func.date_trunc(unit, t.ts)


def query_row_buckets(ledger: Ledger, unit: str, since: dt.datetime, until: dt.datetime) -> dict[str, Bucket]:
    """`query_buckets` summed from the rows themselves (two GROUP BY queries over every row of the span).

    Args:
        ledger: the usage ledger.
        unit: minute | hour | day.
        since: the first bucket's start (naive UTC).
        until: the end of the last bucket (naive UTC).
    """
    t = usage_table.c
    b = _bucket_expr(ledger, unit).label("b")
    model, key = func.coalesce(t.model, NONE), func.coalesce(t.key_name, NONE)
    where = (t.ts >= since, t.ts < until)
    sums = select(b, model, t.route, key, *row_sums()[:VALUES]).where(*where).group_by(b, model, t.route, key)
    lat_bin = bin_sql(ledger.is_sqlite).label("bin")
    hist = select(b, lat_bin, func.count()).where(*where).group_by(b, lat_bin)
    out: dict[str, Bucket] = {}
    with ledger.engine.connect() as conn:
        for row in conn.execute(sums):
            k = bucket_key(row[0], unit)
            bucket = out.setdefault(k, Bucket(start=k))
            values = [float(v or 0) for v in row[4:]]
            for dim, name in zip(DIMS, row[1:4], strict=True):
                bucket.add((dim, str(name)), values)
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
