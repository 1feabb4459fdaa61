"""The usage ledger: one row per request, in SQLite (default, a file under data/) or PostgreSQL.

One SQLAlchemy Core table serves both; `DATABASE_URL` picks PostgreSQL for several replicas. Reports group
by day, key, model or route over a time window: requests, tokens, cost, error and fallback rates, p50/p95
latency. Percentiles are nearest-rank (the same definition as PostgreSQL's `percentile_disc`), computed with
the latencies of the window streamed out of the database and ranked here (one exact code path; faster on
SQLite than window functions, measured in bench/usage_bench.py), so both backends give the same figures.

Indexes are chosen for months of rows: every report filters on `ts` and groups by one column, so each
grouping column has an index led by it or by `ts`.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, fields
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
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["GROUPS", "Ledger", "ReportRow", "UsageRow", "alerts_table", "build_ledger", "database_url", "usage_table"]

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
        out = asdict(self)
        ts = _utc(self.ts)
        out.update(ts=ts, day=ts.date(), models_tried=self.models_tried[:512])
        return out


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
        metadata.create_all(self.engine, checkfirst=True)
        return self

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- writing ---
    def record(self, *rows: UsageRow) -> None:
        """Stores rows (one transaction)."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(usage_table.insert(), [r.values() for r in rows])

    # --- reading ---
    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        """USD spent since `since` (naive = UTC), by one key or by all. For the gateway's budgets.

        Args:
            since: the start of the window, e.g. today's midnight UTC.
            key_name: one API key's name; None for everyone.
        """
        t = usage_table.c
        cond = [t.ts >= _utc(since)]
        if key_name is not None:
            cond.append(t.key_name == key_name)
        with self.engine.connect() as conn:
            value = conn.execute(select(func.coalesce(func.sum(t.cost_usd), 0.0)).where(*cond)).scalar()
        return float(value or 0.0)

    def totals(self, since: dt.datetime, until: dt.datetime) -> tuple[int, int, int]:
        """(requests, errors, fallbacks) in [since, until): the alerts' rates."""
        t = usage_table.c
        q = select(func.count(), func.sum(case((t.error, 1), else_=0)), func.sum(case((t.fallback, 1), else_=0)))
        with self.engine.connect() as conn:
            row = conn.execute(q.where(t.ts >= _utc(since), t.ts < _utc(until))).one()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

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

        Args:
            by: day | key | model | route.
            since: window start (naive = UTC).
            until: window end; None for now.
            key_name: only this key's requests.
            route: only this route's requests.
        """
        if by not in GROUPS:
            raise ValueError(f"cannot group by {by!r}: use one of {', '.join(GROUPS)}")
        t = usage_table.c
        g = _group(by)
        cond: list[ColumnElement[bool]] = [t.ts >= _utc(since)]
        if until is not None:
            cond.append(t.ts < _utc(until))
        if key_name is not None:
            cond.append(t.key_name == key_name)
        if route is not None:
            cond.append(t.route == route)
        where = and_(*cond)
        n = func.count()
        totals = select(
            g.label("g"), n, func.sum(t.input_tokens), func.sum(t.cached_tokens), func.sum(t.output_tokens),
            func.sum(t.cost_usd), func.sum(case((t.error, 1), else_=0)), func.sum(case((t.fallback, 1), else_=0)),
            func.sum(case((t.priced, 0), else_=1)),
        ).where(where).group_by(g)
        with self.engine.connect() as conn:
            latencies: dict[Any, list[float]] = {}
            for gv, lat in conn.execute(select(g, t.latency_ms).where(where)):
                latencies.setdefault(gv, []).append(lat)
            percentiles = {gv: (_rank(v, 50), _rank(v, 95)) for gv, v in latencies.items()}
            out = [
                ReportRow(
                    group=_name(row[0]), requests=int(row[1]), input_tokens=int(row[2] or 0),
                    cached_tokens=int(row[3] or 0), output_tokens=int(row[4] or 0), cost_usd=float(row[5] or 0),
                    errors=int(row[6] or 0), fallbacks=int(row[7] or 0), unpriced=int(row[8] or 0),
                    p50_ms=_f(percentiles.get(row[0], (None, None))[0]),
                    p95_ms=_f(percentiles.get(row[0], (None, None))[1]),
                )
                for row in conn.execute(totals)
            ]
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
    return values[max(1, (len(values) * pct + 99) // 100) - 1]


def _f(value: Any) -> float | None:
    return float(value) if value is not None else None


def build_ledger(settings: Any) -> Ledger:
    """The ledger of the settings: PostgreSQL when DATABASE_URL is set, else the SQLite file USAGE_DB_FILE."""
    return Ledger(database_url(database_url=settings.database_url, sqlite_file=settings.usage_db_file))
