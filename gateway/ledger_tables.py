"""The usage ledger's tables (SQLAlchemy Core, SQLite and PostgreSQL): the rows, the alerts claimed, and the
rollups written beside the rows (gateway/rollups.py writes and reads them; gateway/ledger.py explains them).
"""

from __future__ import annotations

import math
from typing import Any

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
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

NONE = "(none)"  # the group name of rows without a key or without a model (refused before any call)

metadata = MetaData()
usage_table = Table(
    "usage_requests", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),  # the caller's X-Request-ID (can repeat) or ours
    Column("record_id", String(32)),  # ours, unique: what makes a retried write land once (NULL: older rows)
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
    Index("ux_usage_record_id", "record_id", unique=True),
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
SPANS = ("hour", "day")


def sum_columns() -> list[Column[Any]]:
    return [Column(n, Float if n == "cost_usd" else BigInteger, nullable=False, default=0) for n in SUMS]


hourly_table = Table(
    "usage_hourly", metadata,
    Column("hour", DateTime, primary_key=True),  # ts truncated to the hour, naive UTC
    Column("model", String(96), primary_key=True),  # NONE for rows without one
    Column("route", String(32), primary_key=True),
    Column("key_name", String(64), primary_key=True),  # NONE for rows without one
    Column("day", Date, nullable=False),
    *sum_columns(),
    sqlite_with_rowid=False,
)
marginals_table = Table(
    "usage_marginals", metadata,
    Column("span", String(4), primary_key=True),  # hour | day
    Column("start", DateTime, primary_key=True),  # the hour's or the day's start, naive UTC
    Column("dim", String(8), primary_key=True),  # model | route | key
    Column("value", String(96), primary_key=True),
    Column("day", Date, nullable=False),
    *sum_columns(),
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
ROLLUPS = (hourly_table, marginals_table, latency_table)

# Latency histogram bins: in each decade below `limit` ms, bins are `width` ms wide (5% of the decade's start),
# so a bin's midpoint is within 2.5% of any latency in it; above 100 s, 5 s wide.
BINS = ((10.0, 0.05), (100.0, 0.5), (1_000.0, 5.0), (10_000.0, 50.0), (100_000.0, 500.0))
TOP_WIDTH = 5_000.0


def latency_bin(ms: float) -> float:
    """The lower edge of the histogram bin of `ms` (the same float as `gateway.rollups.bin_sql` computes)."""
    for limit, width in BINS:
        if ms < limit:
            return math.floor(ms / width) * width
    return math.floor(ms / TOP_WIDTH) * TOP_WIDTH


def add_record_ids(engine: Engine, *, is_sqlite: bool) -> None:
    """Gives a ledger made before `record_id` existed the column and its unique index (idempotent; two
    processes starting together both succeed). Older rows keep NULL, which the unique index allows."""
    if "record_id" not in {c["name"] for c in inspect(engine).get_columns("usage_requests")}:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE usage_requests ADD COLUMN record_id VARCHAR(32)")
        except (OperationalError, ProgrammingError):  # another process added it first
            if "record_id" not in {c["name"] for c in inspect(engine).get_columns("usage_requests")}:
                raise
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ux_usage_record_id ON usage_requests (record_id)")


# The longest text each column of `usage_requests` holds (PostgreSQL refuses longer; SQLite would keep it).
TEXT_LIMITS = {c.name: c.type.length for c in usage_table.c if isinstance(c.type, String) and c.type.length}
