"""Retention: each store keeps its data for `RETENTION_<STORE>_DAYS` days (0: forever); `prune()` removes
what is older. Run once a day by the server (gateway/retention_job.py) and by `skymarket prune [--dry-run]`.

The stores and what "older" means for each (each prune is in gateway/retention_stores.py):

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from gateway.audit_prune import prune_audit
from gateway.ledger import Ledger, build_ledger
from gateway.ledger_tables import usage_table
from gateway.retention_stores import (
    prune_describe_cache,
    prune_eval_reports,
    prune_redis_cache,
    prune_rollups,
    prune_usage,
)

__all__ = ["STORES", "Pruned", "main", "prune"]

log = logging.getLogger("skymarket.retention")

STORES = ("usage", "rollups", "audit", "describe_cache", "eval_reports")


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
