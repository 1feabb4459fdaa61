"""The rollups' SQL and arithmetic for gateway/ledger.py: summing a batch per group, upserts, the one-time
backfill from older rows, and which whole days, hours and partial hours cover a time window (`cover`)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Table,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger_tables import (
    BINS,
    DIMS,
    NONE,
    SPANS,
    SUMS,
    TOP_WIDTH,
    hourly_table,
    latency_table,
    marginals_table,
    usage_table,
)


def add_sums(into: dict[tuple[Any, ...], list[float]], key: tuple[Any, ...], sums: list[float]) -> None:
    have = into.get(key)
    into[key] = list(sums) if have is None else [a + b for a, b in zip(have, sums, strict=True)]


def upsert_params(names: tuple[str, ...], groups: dict[tuple[Any, ...], list[float]]) -> list[dict[str, Any]]:
    """Upsert parameters of summed groups, in key order; `day` is the date of the key's datetime."""
    out = []
    for key, sums in sorted(groups.items()):
        p = dict(zip(names, key, strict=True))
        p.update(zip(SUMS, sums, strict=True))
        p["day"] = next(k for k in key if isinstance(k, dt.datetime)).date()
        out.append(p)
    return out


def accumulate(into: list[float], values: Any) -> None:
    for i, x in enumerate(values):
        into[i] += float(x or 0)


def row_sums() -> list[ColumnElement[Any]]:
    """`SUMS` over rows, in SQL (the same as `UsageRow.sums` adds up)."""
    t = usage_table.c

    def count_if(cond: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((cond, 1), else_=0))

    return [func.count(), func.sum(t.input_tokens), func.sum(t.cached_tokens), func.sum(t.output_tokens),
            func.sum(t.cost_usd), count_if(t.error), count_if(t.fallback), count_if(t.status == 429),
            count_if(t.guard_action == "block"), count_if(t.cache_hit), func.sum(case((t.priced, 0), else_=1))]


def bin_sql(is_sqlite: bool) -> ColumnElement[Any]:
    """`latency_bin` of `usage_requests.latency_ms`, in SQL (the same float on SQLite and PostgreSQL)."""
    lat = usage_table.c.latency_ms

    def floor(x: ColumnElement[Any]) -> ColumnElement[Any]:
        # SQLite may lack floor(); CAST truncates, the same as floor for latencies (never negative).
        return cast(x, Integer) if is_sqlite else func.floor(x)

    whens = [(lat < limit, cast(floor(lat / width), Float) * width) for limit, width in BINS]
    return case(*whens, else_=cast(floor(lat / TOP_WIDTH), Float) * TOP_WIDTH)


def trunc_sql(col: Any, unit: str, is_sqlite: bool) -> ColumnElement[Any]:
    """A naive UTC DateTime column truncated to the hour or the day, as the same DateTime type stores it."""
    if is_sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
        return func.substr(col, 1, 13 if unit == "hour" else 10).concat(
            ":00:00.000000" if unit == "hour" else " 00:00:00.000000")
    return func.date_trunc(unit, col)


def needs_backfill(conn: Connection) -> bool:
    if conn.execute(select(hourly_table.c.hour).limit(1)).first() is not None:
        return False
    return conn.execute(select(usage_table.c.id).limit(1)).first() is not None


def fill_rollups(conn: Connection, is_sqlite: bool) -> None:
    """The rollups from the rows: usage_hourly and the hourly histogram from the rows, the rest from those."""
    t, h, lt = usage_table.c, hourly_table.c, latency_table.c
    hour, lat_bin = trunc_sql(t.ts, "hour", is_sqlite), bin_sql(is_sqlite)
    group = [hour, func.coalesce(t.model, NONE), t.route, func.coalesce(t.key_name, NONE), t.day]
    conn.execute(hourly_table.insert().from_select(
        ["hour", "model", "route", "key_name", "day", *SUMS], select(*group, *row_sums()).group_by(*group)))
    for span in SPANS:
        start = h.hour if span == "hour" else trunc_sql(h.hour, "day", is_sqlite)
        for dim, col in zip(DIMS, (h.model, h.route, h.key_name), strict=True):
            conn.execute(marginals_table.insert().from_select(
                ["span", "start", "dim", "value", "day", *SUMS],
                select(literal(span), start, literal(dim), col, h.day, *[func.sum(h[n]) for n in SUMS])
                .group_by(start, col, h.day)))
    conn.execute(latency_table.insert().from_select(
        ["span", "start", "bin", "n"], select(literal("hour"), hour, lat_bin, func.count()).group_by(hour, lat_bin)))
    day = trunc_sql(lt.start, "day", is_sqlite)
    conn.execute(latency_table.insert().from_select(
        ["span", "start", "bin", "n"],
        select(literal("day"), day, lt.bin, func.sum(lt.n)).where(lt.span == "hour").group_by(day, lt.bin)))


@functools.cache
def insert_new_statement(is_sqlite: bool) -> Any:
    """INSERT of request rows that skips a `record_id` already stored, returning the record ids it inserted
    (so a retried batch adds only its new rows to the rollups)."""
    ins = sqlite.insert(usage_table) if is_sqlite else postgresql.insert(usage_table)
    return ins.on_conflict_do_nothing(index_elements=["record_id"]).returning(usage_table.c.record_id)


@functools.cache
def upsert_statement(table: Table, is_sqlite: bool) -> Any:
    """INSERT .. ON CONFLICT (the key) DO UPDATE adding the new sums to the stored ones."""
    ins = sqlite.insert(table) if is_sqlite else postgresql.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    adds = {c.name: c + ins.excluded[c.name] for c in table.c if c.name not in keys and c.name != "day"}
    return ins.on_conflict_do_update(index_elements=keys, set_=adds)


Span = tuple[dt.datetime, dt.datetime | None]


def floor_to(t: dt.datetime, unit: str) -> dt.datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if unit == "day" else t


def ceil_to(t: dt.datetime, unit: str) -> dt.datetime:
    f = floor_to(t, unit)
    return f if f == t else f + (dt.timedelta(days=1) if unit == "day" else dt.timedelta(hours=1))


def window_cover(since: dt.datetime, until: dt.datetime | None, *, days: bool) -> dict[str, list[Span]]:
    """[since, until) (until None: no end) as ranges of rows (its partial hours), whole hours and whole days.

    Each range is [lo, hi); rollup ranges are of rollup starts, so together they count every row once.
    """
    out: dict[str, list[Span]] = {"rows": [], "hour": [], "day": []}
    h0, h1 = ceil_to(since, "hour"), (None if until is None else floor_to(until, "hour"))
    if h1 is not None and h0 >= h1:
        out["rows"].append((since, until))
        return out
    if since < h0:
        out["rows"].append((since, h0))
    if h1 is not None and until is not None and h1 < until:
        out["rows"].append((h1, until))
    d0, d1 = ceil_to(h0, "day"), (None if h1 is None else floor_to(h1, "day"))
    if not days or (d1 is not None and d0 >= d1):
        out["hour"].append((h0, h1))
        return out
    if h0 < d0:
        out["hour"].append((h0, d0))
    if d1 is not None and h1 is not None and d1 < h1:
        out["hour"].append((d1, h1))
    out["day"].append((d0, d1))
    return out


def within(col: Any, spans: list[Span]) -> ColumnElement[bool]:
    return or_(*[and_(col >= lo, col < hi) if hi is not None else col >= lo for lo, hi in spans])
