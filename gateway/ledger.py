"""The usage ledger: one row per request, in SQLite (default, a file under data/) or PostgreSQL.

One SQLAlchemy Core table serves both; `DATABASE_URL` picks PostgreSQL for several replicas. Reports group
by day, key, model or route over a time window: requests, tokens, cost, error and fallback rates, p50/p95
latency. Percentiles are nearest-rank (the same definition as PostgreSQL's `percentile_disc`), computed with
the latencies of the window streamed out of the database and ranked here (one exact code path; faster on
SQLite than window functions, measured in bench/usage_bench.py), so both backends give the same figures.

Rollups, written in the same transaction as the rows they count (`Ledger.record`), so they always agree:

- `usage_hourly`: per hour and (model, route, key) the sums of `SUMS` (the hourly rollup; reports' sums);
- `usage_marginals`: per hour and per day, the same sums by model, by route and by key separately (the
  dashboard's buckets, budgets' spend, alerts' totals: a handful of rows per day whatever the traffic);
- `usage_latency`: per hour and per day, a latency histogram (`latency_bin`) for approximate percentiles.

A window's sums come from whole days and hours of the rollups plus the rows of its partial hours (`_cover`),
so they are exact (up to the order of float additions). Rows without a key or a model are rolled up under
`NONE`. Indexes are chosen for months of rows: every report filters on `ts` and groups by one column, so each
grouping column has an index led by it or by `ts`; the rollups are clustered by their keys (SQLite: WITHOUT
ROWID) so a range of hours or days is one sequential read.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    and_,
    case,
    cast,
    create_engine,
    event,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["BINS", "DIMS", "GROUPS", "NONE", "SUMS", "TOP_WIDTH", "Ledger", "ReportRow", "UsageRow", "alerts_table",
           "bin_sql", "build_ledger", "database_url", "hourly_table", "latency_bin", "latency_table",
           "marginals_table", "row_sums", "trunc_sql", "usage_table"]

Group = Literal["day", "key", "model", "route"]
GROUPS: tuple[Group, ...] = ("day", "key", "model", "route")
NONE = "(none)"  # the group name of rows without a key or without a model (refused before any call)

metadata = MetaData()
usage_table = Table(
    "usage_requests", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("ts", DateTime, nullable=False),  # request start, naive UTC
    Column("day", Date, nullable=False),  # UTC date of ts: portable, indexable grouping by day
    Column("key_name", String(64)),
    Column("user_hash", String(64)),
    Column("route", String(32), nullable=False),
    Column("endpoint", String(16), nullable=False, default=""),
    Column("model", String(96)),  # the model that answered
    Column("models_tried", String(512), nullable=False, default=""),
    Column("fallback", Boolean, nullable=False, default=False),
    Column("status", SmallInteger, nullable=False),
    Column("error", Boolean, nullable=False, default=False),
    Column("error_type", String(64)),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("priced", Boolean, nullable=False, default=True),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("cache_hit", Boolean, nullable=False, default=False),
    Column("guard_action", String(16)),
    Column("refusal", String(32)),
    Index("ix_usage_ts", "ts"),
    Index("ix_usage_key_ts", "key_name", "ts"),
    Index("ix_usage_model_ts", "model", "ts"),
    Index("ix_usage_route_ts", "route", "ts"),
    Index("ix_usage_request_id", "request_id"),
)
# One row per alert and period: the unique pair makes "once per period" hold across replicas.
alerts_table = Table(
    "usage_alerts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("period", String(32), nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("value", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    UniqueConstraint("kind", "period", name="uq_usage_alerts_kind_period"),
)

# The rollups' sums, in this order everywhere (the dashboard's buckets use the first ten).
SUMS = ("requests", "input_tokens", "cached_tokens", "output_tokens", "cost_usd", "errors", "fallbacks",
        "rate_limited", "guard_blocks", "cache_hits", "unpriced")
DIMS = ("model", "route", "key")  # the marginals' dimensions
_SPANS = ("hour", "day")


def _sum_columns() -> list[Column[Any]]:
    return [Column(n, Float if n == "cost_usd" else BigInteger, nullable=False, default=0) for n in SUMS]


hourly_table = Table(
    "usage_hourly", metadata,
    Column("hour", DateTime, primary_key=True),  # ts truncated to the hour, naive UTC
    Column("model", String(96), primary_key=True),  # NONE for rows without one
    Column("route", String(32), primary_key=True),
    Column("key_name", String(64), primary_key=True),  # NONE for rows without one
    Column("day", Date, nullable=False),
    *_sum_columns(),
    sqlite_with_rowid=False,
)
marginals_table = Table(
    "usage_marginals", metadata,
    Column("span", String(4), primary_key=True),  # hour | day
    Column("start", DateTime, primary_key=True),  # the hour's or the day's start, naive UTC
    Column("dim", String(8), primary_key=True),  # model | route | key
    Column("value", String(96), primary_key=True),
    Column("day", Date, nullable=False),
    *_sum_columns(),
    sqlite_with_rowid=False,
)
latency_table = Table(
    "usage_latency", metadata,
    Column("span", String(4), primary_key=True),
    Column("start", DateTime, primary_key=True),
    Column("bin", Float, primary_key=True),  # the bin's lower edge, ms (`latency_bin`)
    Column("n", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
_ROLLUPS = (hourly_table, marginals_table, latency_table)

# Latency histogram bins: in each decade below `limit` ms, bins are `width` ms wide (5% of the decade's start),
# so a bin's midpoint is within 2.5% of any latency in it; above 100 s, 5 s wide.
BINS = ((10.0, 0.05), (100.0, 0.5), (1_000.0, 5.0), (10_000.0, 50.0), (100_000.0, 500.0))
TOP_WIDTH = 5_000.0


def latency_bin(ms: float) -> float:
    """The lower edge of the histogram bin of `ms` (the same float as `_bin_sql` computes)."""
    for limit, width in BINS:
        if ms < limit:
            return math.floor(ms / width) * width
    return math.floor(ms / TOP_WIDTH) * TOP_WIDTH


@dataclass
class UsageRow:
    """What one request cost. `ts` is any datetime (naive = UTC)."""

    request_id: str
    ts: dt.datetime
    route: str
    status: int
    latency_ms: float
    endpoint: str = ""
    key_name: str | None = None
    user_hash: str | None = None
    model: str | None = None
    models_tried: str = ""
    fallback: bool = False
    error: bool = False
    error_type: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    ttft_ms: float | None = None
    cache_hit: bool = False
    guard_action: str | None = None
    refusal: str | None = None

    def values(self) -> dict[str, Any]:
        out = dict(self.__dict__)  # shallow: every field is immutable (dataclasses.asdict deep-copies, 10x slower)
        ts = _utc(self.ts)
        out.update(ts=ts, day=ts.date(), models_tried=self.models_tried[:512])
        return out

    def sums(self) -> list[float]:
        """This row's contribution to each of `SUMS`."""
        return [1, self.input_tokens, self.cached_tokens, self.output_tokens, self.cost_usd, int(self.error),
                int(self.fallback), int(self.status == 429), int(self.guard_action == "block"),
                int(self.cache_hit), int(not self.priced)]


@dataclass(frozen=True)
class ReportRow:
    group: str
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_usd: float
    errors: int
    fallbacks: int
    unpriced: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(tokens=self.tokens, error_rate=round(self.error_rate, 6),
                   fallback_rate=round(self.fallback_rate, 6), cost_usd=round(self.cost_usd, 8))
        return out


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def database_url(*, database_url: str | None, sqlite_file: Path) -> str:
    """The SQLAlchemy URL: DATABASE_URL (postgres:// and postgresql:// get the psycopg 3 driver) or SQLite."""
    if not database_url:
        return f"sqlite:///{sqlite_file}"
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url


class Ledger:
    """The usage store. `create()` makes the table (idempotent); nothing connects before it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._connect()
            return self._engine

    def _connect(self) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        path = self.url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 10})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _: Any) -> None:  # WAL: readers (reports, budgets) never block the writer
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine

    def create(self) -> Ledger:
        """Makes the tables (idempotent) and, for a ledger older than the rollups, fills them (`backfill`)."""
        metadata.create_all(self.engine, checkfirst=True)
        self.backfill()
        return self

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- writing ---
    def record(self, *rows: UsageRow) -> None:
        """Stores rows and adds them to the rollups, in one transaction.

        A batch is summed here first, so each rollup gets one upsert per (hour or day, group) however many of
        the rows share it. Groups are written in sorted order, so concurrent writers on PostgreSQL lock rollup
        rows in the same order (no deadlock).
        """
        if not rows:
            return
        values = [r.values() for r in rows]
        hourly: dict[tuple[Any, ...], list[float]] = {}
        latency: dict[tuple[Any, ...], int] = {}
        for row, v in zip(rows, values, strict=True):
            hour = v["ts"].replace(minute=0, second=0, microsecond=0)
            _add(hourly, (hour, row.model or NONE, row.route, row.key_name or NONE), row.sums())
            edge = latency_bin(row.latency_ms)
            for key in (("hour", hour, edge), ("day", hour.replace(hour=0), edge)):
                latency[key] = latency.get(key, 0) + 1
        marginals: dict[tuple[Any, ...], list[float]] = {}  # from the hourly groups: fewer than the rows
        for (hour, model, route, key), sums in hourly.items():
            for span, start in (("hour", hour), ("day", hour.replace(hour=0))):
                for dim, name in (("model", model), ("route", route), ("key", key)):
                    _add(marginals, (span, start, dim, name), sums)
        with self.engine.begin() as conn:
            conn.execute(usage_table.insert(), values)
            upsert = functools.partial(_upsert, is_sqlite=self.is_sqlite)
            conn.execute(upsert(hourly_table), _params(("hour", "model", "route", "key_name"), hourly))
            conn.execute(upsert(marginals_table), _params(("span", "start", "dim", "value"), marginals))
            conn.execute(upsert(latency_table), [
                {"span": k[0], "start": k[1], "bin": k[2], "n": n} for k, n in sorted(latency.items())])

    def backfill(self) -> bool:
        """Fills the rollups from the rows, once: for a ledger written before the rollups existed.

        Runs only when `usage_hourly` is empty but rows exist: one INSERT..SELECT GROUP BY per rollup and span
        (seconds per million rows). It holds writers off (SQLite: BEGIN IMMEDIATE; PostgreSQL: an exclusive lock
        on the rollups) and checks again inside, so two processes starting together fill them once. Rows written
        later by a process without rollups (an older version) are not counted: upgrade every replica together.
        Returns True if it filled them.
        """
        with self.engine.connect() as conn:
            if not _needs_backfill(conn):  # the common case, without any lock
                return False
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("LOCK TABLE usage_hourly, usage_marginals, usage_latency IN EXCLUSIVE MODE"))
            filled = _needs_backfill(conn)
            if filled:
                _fill(conn, self.is_sqlite)
            conn.commit()
        return filled

    # --- reading ---
    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        """USD spent since `since` (naive = UTC), by one key or by all. For the gateway's budgets.

        Exact: whole days and hours from `usage_marginals` (since midnight: one row per route or one for the
        key), the rows of a partial first hour from `usage_requests`.

        Args:
            since: the start of the window, e.g. today's midnight UTC.
            key_name: one API key's name; None for everyone.
        """
        return self._sums(since, None, key_name=key_name)[SUMS.index("cost_usd")]

    def totals(self, since: dt.datetime, until: dt.datetime) -> tuple[int, int, int]:
        """(requests, errors, fallbacks) in [since, until): the alerts' rates. Exact, as `spend_since`."""
        s = self._sums(since, until, key_name=None)
        return int(s[0]), int(s[SUMS.index("errors")]), int(s[SUMS.index("fallbacks")])

    def _sums(self, since: dt.datetime, until: dt.datetime | None, *, key_name: str | None) -> list[float]:
        """Every one of `SUMS` over [since, until): rollup days and hours, rows for partial hours."""
        cover = _cover(_utc(since), _utc(until) if until is not None else None, days=True)
        m, t = marginals_table.c, usage_table.c
        out = [0.0] * len(SUMS)
        with self.engine.connect() as conn:
            spans = [and_(m.span == span, _within(m.start, cover[span])) for span in _SPANS if cover[span]]
            if spans:
                cond = [m.dim == "route", or_(*spans)] if key_name is None else [m.dim == "key", m.value == key_name,
                                                                                   or_(*spans)]
                _accumulate(out, conn.execute(select(*[func.sum(m[n]) for n in SUMS]).where(*cond)).one())
            if cover["rows"]:
                cond = [_within(t.ts, cover["rows"])] + ([t.key_name == key_name] if key_name is not None else [])
                _accumulate(out, conn.execute(select(*row_sums()).where(*cond)).one())
        return out

    def claim_alert(self, kind: str, period: str, *, value: float, threshold: float) -> bool:
        """Records an alert for (kind, period); False if this or another replica already did."""
        try:
            with self.engine.begin() as conn:
                conn.execute(alerts_table.insert().values(
                    kind=kind, period=period, ts=_utc(dt.datetime.now(dt.UTC)), value=value, threshold=threshold))
        except IntegrityError:
            return False
        return True

    def report(self, by: Group, *, since: dt.datetime, until: dt.datetime | None = None,
               key_name: str | None = None, route: str | None = None) -> list[ReportRow]:
        """Aggregates over [since, until), one row per group.

        Sums (requests, tokens, cost, errors, fallbacks, unpriced) come from `usage_hourly` for the window's
        whole hours and from the rows for its partial ones: exact. The p50/p95 latencies are exact too, so they
        still read every row of the window (its latencies, ranked here): they are most of a report's time.

        Args:
            by: day | key | model | route.
            since: window start (naive = UTC).
            until: window end; None for now.
            key_name: only this key's requests.
            route: only this route's requests.
        """
        if by not in GROUPS:
            raise ValueError(f"cannot group by {by!r}: use one of {', '.join(GROUPS)}")
        t, h = usage_table.c, hourly_table.c
        lo, hi = _utc(since), _utc(until) if until is not None else None
        cover = _cover(lo, hi, days=False)
        g, hg = _group(by), {"day": h.day, "key": h.key_name, "model": h.model, "route": h.route}[by]
        rows_cond: list[ColumnElement[bool]] = [t.ts >= lo] + ([t.ts < hi] if hi is not None else [])
        hourly_cond = [_within(h.hour, cover["hour"])]
        if key_name is not None:
            rows_cond.append(t.key_name == key_name)
            hourly_cond.append(h.key_name == key_name)
        if route is not None:
            rows_cond.append(t.route == route)
            hourly_cond.append(h.route == route)
        wanted = ("requests", "input_tokens", "cached_tokens", "output_tokens", "cost_usd", "errors", "fallbacks",
                  "unpriced")
        pick = [SUMS.index(n) for n in wanted]
        sums: dict[Any, list[float]] = {}
        with self.engine.connect() as conn:
            latencies: dict[Any, list[float]] = {}
            for gv, lat in conn.execute(select(g, t.latency_ms).where(*rows_cond)):
                latencies.setdefault(gv, []).append(lat)
            queries = []
            if cover["hour"]:
                queries.append(select(hg, *[func.sum(h[n]) for n in wanted]).where(*hourly_cond).group_by(hg))
            if cover["rows"]:
                edge = [_within(t.ts, cover["rows"]), *rows_cond[1 + (hi is not None):]]
                queries.append(select(g, *[row_sums()[i] for i in pick]).where(*edge).group_by(g))
            for q in queries:
                for row in conn.execute(q):
                    _accumulate(sums.setdefault(row[0], [0.0] * len(wanted)), row[1:])
        out = []
        for gv, v in sums.items():
            if not v[0]:
                continue
            p50, p95 = (_rank(latencies[gv], 50), _rank(latencies[gv], 95)) if gv in latencies else (None, None)
            out.append(ReportRow(
                group=_name(gv), requests=int(v[0]), input_tokens=int(v[1]), cached_tokens=int(v[2]),
                output_tokens=int(v[3]), cost_usd=float(v[4]), errors=int(v[5]), fallbacks=int(v[6]),
                unpriced=int(v[7]), p50_ms=p50, p95_ms=p95,
            ))
        if by == "day":
            return sorted(out, key=lambda r: r.group)
        return sorted(out, key=lambda r: (-r.cost_usd, -r.requests, r.group))


def _group(by: Group) -> ColumnElement[Any]:
    t = usage_table.c
    col = {"day": t.day, "key": t.key_name, "model": t.model, "route": t.route}[by]
    return col if by in ("day", "route") else func.coalesce(col, NONE)


def _name(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _rank(values: list[float], pct: int) -> float:
    """Nearest-rank percentile (PostgreSQL's percentile_disc): the ceil(pct/100 * n)-th smallest value."""
    values.sort()
    return float(values[max(1, (len(values) * pct + 99) // 100) - 1])


def _add(into: dict[tuple[Any, ...], list[float]], key: tuple[Any, ...], sums: list[float]) -> None:
    have = into.get(key)
    into[key] = list(sums) if have is None else [a + b for a, b in zip(have, sums, strict=True)]


def _params(names: tuple[str, ...], groups: dict[tuple[Any, ...], list[float]]) -> list[dict[str, Any]]:
    """Upsert parameters of summed groups, in key order; `day` is the date of the key's datetime."""
    out = []
    for key, sums in sorted(groups.items()):
        p = dict(zip(names, key, strict=True))
        p.update(zip(SUMS, sums, strict=True))
        p["day"] = next(k for k in key if isinstance(k, dt.datetime)).date()
        out.append(p)
    return out


def _accumulate(into: list[float], values: Any) -> None:
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


def _needs_backfill(conn: Connection) -> bool:
    if conn.execute(select(hourly_table.c.hour).limit(1)).first() is not None:
        return False
    return conn.execute(select(usage_table.c.id).limit(1)).first() is not None


def _fill(conn: Connection, is_sqlite: bool) -> None:
    """The rollups from the rows: usage_hourly and the hourly histogram from the rows, the rest from those."""
    t, h, lt = usage_table.c, hourly_table.c, latency_table.c
    hour, lat_bin = trunc_sql(t.ts, "hour", is_sqlite), bin_sql(is_sqlite)
    group = [hour, func.coalesce(t.model, NONE), t.route, func.coalesce(t.key_name, NONE), t.day]
    conn.execute(hourly_table.insert().from_select(
        ["hour", "model", "route", "key_name", "day", *SUMS], select(*group, *row_sums()).group_by(*group)))
    for span in _SPANS:
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
def _upsert(table: Table, is_sqlite: bool) -> Any:
    """INSERT .. ON CONFLICT (the key) DO UPDATE adding the new sums to the stored ones."""
    ins = sqlite.insert(table) if is_sqlite else postgresql.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    adds = {c.name: c + ins.excluded[c.name] for c in table.c if c.name not in keys and c.name != "day"}
    return ins.on_conflict_do_update(index_elements=keys, set_=adds)


Span = tuple[dt.datetime, dt.datetime | None]


def _floor(t: dt.datetime, unit: str) -> dt.datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if unit == "day" else t


def _ceil(t: dt.datetime, unit: str) -> dt.datetime:
    f = _floor(t, unit)
    return f if f == t else f + (dt.timedelta(days=1) if unit == "day" else dt.timedelta(hours=1))


def _cover(since: dt.datetime, until: dt.datetime | None, *, days: bool) -> dict[str, list[Span]]:
    """[since, until) (until None: no end) as ranges of rows (its partial hours), whole hours and whole days.

    Each range is [lo, hi); rollup ranges are of rollup starts, so together they count every row once.
    """
    out: dict[str, list[Span]] = {"rows": [], "hour": [], "day": []}
    h0, h1 = _ceil(since, "hour"), (None if until is None else _floor(until, "hour"))
    if h1 is not None and h0 >= h1:
        out["rows"].append((since, until))
        return out
    if since < h0:
        out["rows"].append((since, h0))
    if h1 is not None and until is not None and h1 < until:
        out["rows"].append((h1, until))
    d0, d1 = _ceil(h0, "day"), (None if h1 is None else _floor(h1, "day"))
    if not days or (d1 is not None and d0 >= d1):
        out["hour"].append((h0, h1))
        return out
    if h0 < d0:
        out["hour"].append((h0, d0))
    if d1 is not None and h1 is not None and d1 < h1:
        out["hour"].append((d1, h1))
    out["day"].append((d0, d1))
    return out


def _within(col: Any, spans: list[Span]) -> ColumnElement[bool]:
    return or_(*[and_(col >= lo, col < hi) if hi is not None else col >= lo for lo, hi in spans])


def build_ledger(settings: Any) -> Ledger:
    """The ledger of the settings: PostgreSQL when DATABASE_URL is set, else the SQLite file USAGE_DB_FILE."""
    return Ledger(database_url(database_url=settings.database_url, sqlite_file=settings.usage_db_file))
