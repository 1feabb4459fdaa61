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

A window's sums come from whole days and hours of the rollups plus the rows of its partial hours (`window_cover`),
so they are exact (up to the order of float additions). Rows without a key or a model are rolled up under
`NONE`. Indexes are chosen for months of rows: every report filters on `ts` and groups by one column, so each
grouping column has an index led by it or by `ts`; the rollups are clustered by their keys (SQLite: WITHOUT
ROWID) so a range of hours or days is one sequential read.

The tables are in gateway/ledger_tables.py, the rollups' SQL and arithmetic in gateway/rollups.py; this
module re-exports the names other modules use.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sqlalchemy import (
    and_,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from gateway.db import create_tables, database_url, open_engine
from gateway.ledger_tables import (
    BINS,
    DIMS,
    NONE,
    SPANS,
    SUMS,
    TEXT_LIMITS,
    TOP_WIDTH,
    add_record_ids,
    alerts_table,
    hourly_table,
    latency_bin,
    latency_table,
    marginals_table,
    metadata,
    usage_table,
)
from gateway.model_names import unify_model_names
from gateway.rollups import (
    accumulate,
    add_sums,
    bin_sql,
    fill_rollups,
    insert_new_statement,
    needs_backfill,
    row_sums,
    trunc_sql,
    upsert_params,
    upsert_statement,
    window_cover,
    within,
)

__all__ = ["BINS", "DIMS", "GROUPS", "NONE", "SUMS", "TOP_WIDTH", "Ledger", "ReportRow", "UsageRow", "alerts_table",
           "bin_sql", "build_ledger", "database_url", "hourly_table", "latency_bin", "latency_table",
           "marginals_table", "new_record_id", "row_sums", "trunc_sql", "usage_table"]

Group = Literal["day", "key", "model", "route"]
GROUPS: tuple[Group, ...] = ("day", "key", "model", "route")
def new_record_id() -> str:
    return uuid.uuid4().hex


@dataclass
class UsageRow:
    """What one request cost. `ts` is any datetime (naive = UTC). `record_id` is made once per row and kept
    through retries and the spool: the ledger stores each record id once (`Ledger.record`)."""

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
    record_id: str = field(default_factory=new_record_id)

    def values(self) -> dict[str, Any]:
        out = dict(self.__dict__)  # shallow: every field is immutable (dataclasses.asdict deep-copies, 10x slower)
        ts = _utc(self.ts)
        out.update(ts=ts, day=ts.date())
        for name, limit in TEXT_LIMITS.items():  # e.g. an odd model name from a provider: cut, never refused
            v = out.get(name)
            if v is not None and len(v) > limit:
                out[name] = v[:limit]
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


class Ledger:
    """The usage store. `create()` makes the table (idempotent); nothing connects before it."""

    def __init__(self, url: str, *, local_model_name: str | None = None) -> None:
        """Args:
        url: the database's SQLAlchemy URL.
        local_model_name: the embedded model's configured name: rows an older version wrote under its file
            path are renamed to it when the ledger is opened (`gateway/model_names.py`).
        """
        self.url = url
        self.local_model_name = local_model_name
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
        # NORMAL: batches all day; a power cut may lose the last ones, never corrupt the file (gateway/db.py)
        return open_engine(self.url, synchronous="NORMAL", pool_size=5, max_overflow=5)

    def create(self) -> Ledger:
        """Makes the tables (idempotent), adds `record_id` to an older ledger, and, for a ledger older than the
        rollups, fills them (`backfill`)."""
        create_tables(metadata, self.engine)
        add_record_ids(self.engine, is_sqlite=self.is_sqlite)
        self.backfill()
        if self.local_model_name:
            unify_model_names(self.engine, is_sqlite=self.is_sqlite, name=self.local_model_name)
        return self

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- writing ---
    def record(self, *rows: UsageRow) -> int:
        """Stores the rows not stored yet and adds those to the rollups, in one transaction; returns how many
        were new.

        Idempotent on `record_id`: a batch retried after a commit whose answer was lost, or a spool file
        replayed twice (gateway/durable.py), inserts nothing twice, and only the rows this call inserted (the
        INSERT returns their ids) are added to the rollups, so nothing is counted twice either. A batch is
        summed here first, so each rollup gets one upsert per (hour or day, group) however many of the rows
        share it. Groups are written in sorted order, so concurrent writers on PostgreSQL lock rollup rows in
        the same order (no deadlock).
        """
        if not rows:
            return 0
        values = [r.values() for r in rows]
        by_id = {v["record_id"]: r for r, v in zip(rows, values, strict=True)}
        with self.engine.begin() as conn:
            new = [by_id[rid] for (rid,) in conn.execute(insert_new_statement(self.is_sqlite), values)]
            if not new:
                return 0
            hourly, marginals, latency = _rollup_sums(new)
            upsert = functools.partial(upsert_statement, is_sqlite=self.is_sqlite)
            conn.execute(upsert(hourly_table), upsert_params(("hour", "model", "route", "key_name"), hourly))
            conn.execute(upsert(marginals_table), upsert_params(("span", "start", "dim", "value"), marginals))
            conn.execute(upsert(latency_table), [
                {"span": k[0], "start": k[1], "bin": k[2], "n": n} for k, n in sorted(latency.items())])
        return len(new)

    def backfill(self) -> bool:
        """Fills the rollups from the rows, once: for a ledger written before the rollups existed.

        Runs only when `usage_hourly` is empty but rows exist: one INSERT..SELECT GROUP BY per rollup and span
        (seconds per million rows). It holds writers off (SQLite: BEGIN IMMEDIATE; PostgreSQL: an exclusive lock
        on the rollups) and checks again inside, so two processes starting together fill them once. Rows written
        later by a process without rollups (an older version) are not counted: upgrade every replica together.
        Returns True if it filled them.
        """
        with self.engine.connect() as conn:
            if not needs_backfill(conn):  # the common case, without any lock
                return False
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("LOCK TABLE usage_hourly, usage_marginals, usage_latency IN EXCLUSIVE MODE"))
            filled = needs_backfill(conn)
            if filled:
                fill_rollups(conn, self.is_sqlite)
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
        cover = window_cover(_utc(since), _utc(until) if until is not None else None, days=True)
        m, t = marginals_table.c, usage_table.c
        out = [0.0] * len(SUMS)
        with self.engine.connect() as conn:
            spans = [and_(m.span == span, within(m.start, cover[span])) for span in SPANS if cover[span]]
            if spans:
                cond = [m.dim == "route", or_(*spans)] if key_name is None else [m.dim == "key", m.value == key_name,
                                                                                   or_(*spans)]
                accumulate(out, conn.execute(select(*[func.sum(m[n]) for n in SUMS]).where(*cond)).one())
            if cover["rows"]:
                cond = [within(t.ts, cover["rows"])] + ([t.key_name == key_name] if key_name is not None else [])
                accumulate(out, conn.execute(select(*row_sums()).where(*cond)).one())
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
        cover = window_cover(lo, hi, days=False)
        g, hg = _group(by), {"day": h.day, "key": h.key_name, "model": h.model, "route": h.route}[by]
        rows_cond: list[ColumnElement[bool]] = [t.ts >= lo] + ([t.ts < hi] if hi is not None else [])
        hourly_cond = [within(h.hour, cover["hour"])]
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
                edge = [within(t.ts, cover["rows"]), *rows_cond[1 + (hi is not None):]]
                queries.append(select(g, *[row_sums()[i] for i in pick]).where(*edge).group_by(g))
            for q in queries:
                for row in conn.execute(q):
                    accumulate(sums.setdefault(row[0], [0.0] * len(wanted)), row[1:])
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


Sums = dict[tuple[Any, ...], list[float]]


def _rollup_sums(rows: list[UsageRow]) -> tuple[Sums, Sums, dict[tuple[Any, ...], int]]:
    """The rows summed per hourly group, per marginal (hour and day; model, route, key) and per latency bin."""
    hourly: dict[tuple[Any, ...], list[float]] = {}
    latency: dict[tuple[Any, ...], int] = {}
    for row in rows:
        hour = _utc(row.ts).replace(minute=0, second=0, microsecond=0)
        add_sums(hourly, (hour, row.model or NONE, row.route, row.key_name or NONE), row.sums())
        edge = latency_bin(row.latency_ms)
        for key in (("hour", hour, edge), ("day", hour.replace(hour=0), edge)):
            latency[key] = latency.get(key, 0) + 1
    marginals: dict[tuple[Any, ...], list[float]] = {}  # from the hourly groups: fewer than the rows
    for (hour, model, route, key), sums in hourly.items():
        for span, start in (("hour", hour), ("day", hour.replace(hour=0))):
            for dim, name in (("model", model), ("route", route), ("key", key)):
                add_sums(marginals, (span, start, dim, name), sums)
    return hourly, marginals, latency


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


def build_ledger(settings: Any) -> Ledger:
    """The ledger of the settings: PostgreSQL when DATABASE_URL is set, else the SQLite file USAGE_DB_FILE."""
    return Ledger(database_url(database_url=settings.database_url, sqlite_file=settings.usage_db_file),
                  local_model_name=settings.local_model_name)
