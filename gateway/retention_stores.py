"""How each store is pruned (gateway/retention.py runs them by the settings and explains what "older" means
for each): ledger rows and rollups through the ledger's engine (SQLite or PostgreSQL) in short transactions,
describe cache entries in SQLite or Redis, eval report files. Each takes its cutoff and `dry_run` (count only)
and returns how many items went (or would go)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger_tables import alerts_table, hourly_table, latency_table, marginals_table, usage_table

__all__ = ["prune_describe_cache", "prune_eval_reports", "prune_redis_cache", "prune_rollups", "prune_usage"]

ROW_CHUNK = 5_000  # ledger rows per DELETE transaction
ROLLUP_STEP = dt.timedelta(days=7)  # rollup days per DELETE transaction
EXPIRY_SLACK_S = 60.0  # clock differences between the processes that wrote the cache


# --- the ledger (SQLite or PostgreSQL) ---
def prune_usage(engine: Engine, cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Deletes ledger rows with `ts` before `cutoff` (naive UTC), `ROW_CHUNK` per transaction; returns how many."""
    t = usage_table.c
    if dry_run:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(t.ts < cutoff)).scalar_one())
    total = 0
    while True:
        ids = select(t.id).where(t.ts < cutoff).limit(ROW_CHUNK).scalar_subquery()
        with engine.begin() as conn:
            n = conn.execute(delete(usage_table).where(t.id.in_(ids))).rowcount
        total += n
        if n < ROW_CHUNK:
            return total


def _delete_before(engine: Engine, table: Table, col: ColumnElement[Any], cutoff: dt.datetime, dry_run: bool) -> int:
    with engine.connect() as conn:
        if dry_run:
            return int(conn.execute(select(func.count()).select_from(table).where(col < cutoff)).scalar_one())
        oldest = conn.execute(select(func.min(col))).scalar_one()
    total = 0
    if oldest is None:
        return 0
    edge = oldest if isinstance(oldest, dt.datetime) else dt.datetime.fromisoformat(str(oldest))
    while edge < cutoff:  # a week per transaction: a first prune of years never holds the writers up long
        edge = min(edge + ROLLUP_STEP, cutoff)
        with engine.begin() as conn:
            total += conn.execute(delete(table).where(col < edge)).rowcount
    return total


def prune_rollups(engine: Engine, cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Deletes the rollups (and claimed alerts) of the whole UTC days before `cutoff`'s day; returns how many rows."""
    day = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    return sum(_delete_before(engine, table, col, day, dry_run) for table, col in (
        (hourly_table, hourly_table.c.hour), (marginals_table, marginals_table.c.start),
        (latency_table, latency_table.c.start), (alerts_table, alerts_table.c.ts)))


# --- the describe cache ---
def prune_describe_cache(path: Path, *, now: float, keep_s: float, ttl_s: float, dry_run: bool = False) -> int:
    """Deletes SQLite cache entries written more than `keep_s` ago, expired, or written under a longer TTL.

    Args:
        path: DESCRIBE_CACHE_PATH (a missing file prunes nothing; it is not created).
        now: the time (epoch seconds).
        keep_s: the retention, seconds.
        ttl_s: DESCRIBE_CACHE_TTL_S (an entry's write time is its expiry minus this).
        dry_run: only count.
    """
    if not path.exists():
        return 0
    where = "expires_at <= ? OR expires_at - ? < ? OR expires_at > ?"
    args = (now, ttl_s, now - keep_s, now + ttl_s + EXPIRY_SLACK_S)
    conn = sqlite3.connect(path, timeout=10)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'describe_cache'").fetchone() \
                is None:
            return 0
        if dry_run:
            return int(conn.execute(f"SELECT count(*) FROM describe_cache WHERE {where}", args).fetchone()[0])
        with conn:
            return conn.execute(f"DELETE FROM describe_cache WHERE {where}", args).rowcount
    finally:
        conn.close()


def prune_redis_cache(url: str, *, keep_s: float, ttl_s: float, dry_run: bool = False) -> int:
    """Deletes Redis cache keys older than `keep_s` (age = `ttl_s` minus the time left); Redis expires the rest."""
    import redis  # only this store needs it

    from chains.describe.cache import RedisCache

    prefix = RedisCache(url, ttl_s=int(ttl_s)).prefix
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += _prune_keys(client, batch, keep_s, ttl_s, dry_run)
                batch = []
        if batch:
            removed += _prune_keys(client, batch, keep_s, ttl_s, dry_run)
    finally:
        client.close()
    return removed


def _prune_keys(client: Any, keys: list[bytes], keep_s: float, ttl_s: float, dry_run: bool) -> int:
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.ttl(k)
    # -1: no expiry (never written so by the cache): too old by definition; -2: gone already
    old = [k for k, left in zip(keys, pipe.execute(), strict=True)
           if left == -1 or (left >= 0 and (ttl_s - left > keep_s or left > ttl_s + EXPIRY_SLACK_S))]
    if old and not dry_run:
        client.delete(*old)
    return len(old)


# --- files ---
def prune_eval_reports(folder: Path, cutoff: float, *, dry_run: bool = False) -> int:
    """Deletes `skymarket prompts eval` reports (`*.html`, `*.json` directly in `folder`) modified before
    `cutoff` (epoch seconds)."""
    if not folder.is_dir():
        return 0
    old = [p for p in folder.iterdir()
           if p.suffix in (".html", ".json") and p.is_file() and p.stat().st_mtime < cutoff]
    if not dry_run:
        for p in old:
            p.unlink(missing_ok=True)
    return len(old)
