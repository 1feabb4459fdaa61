"""Retention: each store keeps its data for `RETENTION_<STORE>_DAYS` days (0: forever); `prune()` removes
what is older. Run once a day by the server (gateway/retention_job.py) and by `skymarket prune [--dry-run]`.

The stores and what "older" means for each:

- `usage`: ledger rows (`usage_requests`) whose `ts` is before now - days, deleted a few thousand at a time
  so a writer never waits long for the database (SQLite or PostgreSQL, the ledger's own engine);
- `rollups`: the hourly and daily sums and latency histograms (and claimed alerts) of whole UTC days before the
  cutoff, deleted a week at a time. Kept longer than rows by default: reports read old windows from them;
- `audit`: the audit records before the cutoff, replaced by one sealed checkpoint (gateway/audit_prune.py);
- `describe_cache`: SQLite entries written before the cutoff or already expired (the write time is the
  expiry minus DESCRIBE_CACHE_TTL_S; an entry expiring later than a write now would has an older, longer TTL
  and goes too: a miss costs a model call, a kept entry could outlive the retention). With Redis, keys whose
  age (TTL minus the time left) is over the retention;
- `eval_reports`: `skymarket prompts eval`'s HTML and JSON reports (PROMPT_EVAL_REPORT_DIR) by modification time.

Each store is pruned on its own: one that fails (a database down) is reported and the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit_prune import prune_audit
from gateway.ledger import Ledger, build_ledger
from gateway.ledger_tables import alerts_table, hourly_table, latency_table, marginals_table, usage_table

__all__ = ["STORES", "Pruned", "main", "prune", "prune_describe_cache", "prune_eval_reports", "prune_redis_cache",
           "prune_rollups", "prune_usage"]

log = logging.getLogger("skymarket.retention")

STORES = ("usage", "rollups", "audit", "describe_cache", "eval_reports")
ROW_CHUNK = 5_000  # ledger rows per DELETE transaction
ROLLUP_STEP = dt.timedelta(days=7)  # rollup days per DELETE transaction
EXPIRY_SLACK_S = 60.0  # clock differences between the processes that wrote the cache


@dataclass(frozen=True)
class Pruned:
    """What one store lost (or would lose, in a dry run)."""

    store: str
    days: int | None  # None: kept forever
    removed: int = 0
    cutoff: dt.datetime | None = None  # naive UTC
    error: str | None = None
    note: str = ""

    def line(self, *, dry_run: bool) -> str:
        if self.days is None:
            return f"{self.store:<15} kept forever"
        head = f"{self.store:<15} keep {self.days}d (before {self.cutoff:%Y-%m-%d %H:%M} UTC)"
        if self.error is not None:
            return f"{head}: FAILED: {self.error}"
        verb = "would remove" if dry_run else "removed"
        return f"{head}: {verb} {self.removed}" + (f" ({self.note})" if self.note else "")


def _days(settings: Any, store: str) -> int | None:
    days = getattr(settings, f"retention_{store}_days")
    return int(days) if days else None


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


# --- all of them ---
def prune(settings: Any, *, now: dt.datetime | None = None, dry_run: bool = False,
          stores: tuple[str, ...] = STORES) -> list[Pruned]:
    """Prunes every store by its RETENTION_<STORE>_DAYS; one failing store does not stop the others.

    Args:
        settings: the Settings (retention days, the stores' files and URLs).
        now: the time (aware, or naive UTC); default: now. Tests move it.
        dry_run: count what would go, change nothing.
        stores: which stores (default: all).
    """
    now = (now or dt.datetime.now(dt.UTC))
    now = now.astimezone(dt.UTC) if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    naive = now.replace(tzinfo=None)
    out: list[Pruned] = []
    ledger = build_ledger(settings) if {"usage", "rollups"} & set(stores) else None  # connects on first use
    has_ledger: bool | None = None  # None: not looked at yet
    try:
        for store in stores:
            days = _days(settings, store)
            if days is None:
                out.append(Pruned(store, None))
                continue
            cutoff = naive - dt.timedelta(days=days)
            note = ""
            try:
                if store in ("usage", "rollups"):
                    assert ledger is not None
                    if store == "rollups":  # whole UTC days
                        cutoff = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
                    if has_ledger is None:  # a fresh database has nothing to prune: no error
                        has_ledger = _ledger_ready(ledger, settings, dry_run=dry_run)
                    if not has_ledger:
                        out.append(Pruned(store, days, 0, cutoff, note="no ledger yet"))
                        continue
                    removed = (prune_usage if store == "usage" else prune_rollups)(ledger.engine, cutoff,
                                                                                   dry_run=dry_run)
                elif store == "audit":
                    a = prune_audit(Path(settings.audit_file), cutoff, now=now, dry_run=dry_run)
                    removed = a.records
                    note = f"{a.first_time} .. {a.last_time}" if a.records else ""
                elif store == "describe_cache":
                    removed, note = _prune_cache(settings, now.timestamp(), days * 86400.0, dry_run)
                else:
                    removed = prune_eval_reports(Path(settings.prompt_eval_report_dir),
                                                 cutoff.replace(tzinfo=dt.UTC).timestamp(), dry_run=dry_run)
            except Exception as exc:  # one store's failure is reported; the others still run
                log.error("pruning %s failed: %s: %s", store, type(exc).__name__, exc)
                out.append(Pruned(store, days, cutoff=cutoff, error=f"{type(exc).__name__}: {exc}"[:300]))
                continue
            out.append(Pruned(store, days, removed, cutoff, note=note))
    finally:
        if ledger is not None:
            ledger.close()
    return out


def _ledger_ready(ledger: Ledger, settings: Any, *, dry_run: bool) -> bool:
    """Makes the ledger's tables (idempotent); in a dry run creates nothing (not even an empty SQLite file) and
    says whether there is a ledger at all."""
    if not dry_run:
        ledger.create()
        return True
    if ledger.is_sqlite and not settings.database_url and not Path(settings.usage_db_file).exists():
        return False
    return bool(inspect(ledger.engine).has_table(usage_table.name))


def _prune_cache(settings: Any, now: float, keep_s: float, dry_run: bool) -> tuple[int, str]:
    if not settings.describe_cache_enabled:
        return 0, "cache disabled"
    ttl = float(settings.describe_cache_ttl_s)
    if settings.redis_url:
        return prune_redis_cache(settings.redis_url, keep_s=keep_s, ttl_s=ttl, dry_run=dry_run), "redis"
    return prune_describe_cache(Path(settings.describe_cache_path), now=now, keep_s=keep_s, ttl_s=ttl,
                                dry_run=dry_run), ""


def main(argv: list[str], *, clock: Callable[[], float] = time.time) -> int:
    """`skymarket prune [--dry-run] [--store NAME ...]`: 0 when every store is pruned, 1 when one failed,
    2 on bad arguments or settings."""
    from errors import ConfigError
    from settings import load_settings

    p = argparse.ArgumentParser(prog="skymarket prune",
                                description="delete what is older than each store's RETENTION_<STORE>_DAYS")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
    p.add_argument("--store", action="append", choices=STORES, help="only this store (repeatable); default: all")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the error
        return 2 if exc.code else 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc.message}")
        return 2
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    results = prune(settings, now=now, dry_run=args.dry_run, stores=tuple(args.store or STORES))
    print(("dry run: nothing is removed\n" if args.dry_run else "") +
          "\n".join(r.line(dry_run=args.dry_run) for r in results))
    return 1 if any(r.error for r in results) else 0
