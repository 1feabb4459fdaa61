"""Dashboard query time: the figures of each window over a SQLite ledger of many rows.

    .venv/bin/python -m bench.dashboard_query --rows 1000000 [--days 30] [--db /tmp/dash-bench.db] [--repeat 5]

Seeds a SQLite ledger (kept between runs: pass the same --db to reuse it) with rows in time order over the
last `--days` days, written with executemany in batches of 50,000 through sqlite3 (the table comes from
`Ledger.create`, so the schema and indexes are the real ones). Then, per window, times `dashboard_figures`:

- cold: a new, empty bucket cache (the first view after a restart: every row of the window is aggregated);
- refresh: the same cache again (what the page's 30-second refresh costs: only open buckets are queried).

Prints the median and max of `--repeat` runs of each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chains.breaker import BreakerRegistry
from gateway.dashboard import dashboard_figures
from gateway.dashboard.cache import BucketCache
from gateway.dashboard.queries import WINDOWS
from gateway.ledger import Ledger

COLUMNS = ("request_id", "ts", "day", "key_name", "route", "endpoint", "model", "models_tried", "fallback",
           "status", "error", "input_tokens", "cached_tokens", "output_tokens", "cost_usd", "priced",
           "latency_ms", "cache_hit", "guard_action")


def seed(path: Path, rows: int, days: int, now: dt.datetime) -> None:
    """Writes `rows` rows spread over the `days` days before `now`, oldest first."""
    rnd = random.Random(1)
    keys = [f"key-{i}" for i in range(30)] + [None]
    models = ["gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct", None]
    routes = ["chat", "search", "describe", "guard"]
    start = now - dt.timedelta(days=days)
    step = days * 86400 / rows
    sql = f"INSERT INTO usage_requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    con = sqlite3.connect(path)
    batch: list[tuple[Any, ...]] = []
    for i in range(rows):
        ts = start + dt.timedelta(seconds=i * step + rnd.random() * step)
        model = rnd.choice(models)
        blocked = rnd.random() < 0.01
        batch.append((
            f"{i:032x}", ts.strftime("%Y-%m-%d %H:%M:%S.%f"), ts.strftime("%Y-%m-%d"), rnd.choice(keys),
            rnd.choice(routes), "invoke", model, model or "", int(rnd.random() < 0.05),
            429 if rnd.random() < 0.02 else (400 if blocked else 200), int(rnd.random() < 0.02),
            rnd.randrange(50, 3000), 0, rnd.randrange(5, 600), rnd.random() / 500 if model else 0.0, 1,
            rnd.lognormvariate(6, 0.8), int(rnd.random() < 0.2), "block" if blocked else "allow",
        ))
        if len(batch) == 50_000:
            con.executemany(sql, batch)
            con.commit()
            batch = []
    if batch:
        con.executemany(sql, batch)
        con.commit()
    con.close()


def _time(fn: Any, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), max(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    path = args.db or Path(tempfile.mkdtemp(prefix="dash-bench-")) / "usage.db"
    now = dt.datetime.now(dt.UTC)
    ledger = Ledger(f"sqlite:///{path}").create()
    with ledger.engine.connect() as conn:
        have = conn.exec_driver_sql("SELECT count(*) FROM usage_requests").scalar() or 0
    if have < args.rows:
        t = time.perf_counter()
        seed(path, args.rows - have, args.days, now)
        print(f"seeded {args.rows - have:,} rows in {time.perf_counter() - t:.1f} s into {path}")
    with ledger.engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM usage_requests").scalar()
    print(f"{n:,} rows in the ledger")
    services = SimpleNamespace(observability=SimpleNamespace(ledger=ledger), breakers=BreakerRegistry(),
                               settings=SimpleNamespace(ai_cost_alert_threshold=100.0))
    for window in WINDOWS:
        cold = _time(lambda w=window: dashboard_figures(services, BucketCache(), w, dt.datetime.now(dt.UTC)),
                     args.repeat)
        cache = BucketCache()
        figures = dashboard_figures(services, cache, window, dt.datetime.now(dt.UTC))
        warm = _time(lambda w=window, c=cache: dashboard_figures(services, c, w, dt.datetime.now(dt.UTC)),
                     args.repeat)
        print(f"{window:>4}: {figures['totals']['requests']:>9,} rows  cold median {cold[0]:8.1f} ms "
              f"(max {cold[1]:8.1f})  refresh median {warm[0]:7.1f} ms (max {warm[1]:7.1f})")
    ledger.close()


if __name__ == "__main__":
    main()
