"""Dashboard query time: the figures of each window over a SQLite ledger of many rows.

    .venv/bin/python -m bench.dashboard_query --rows 1000000 [--days 30] [--db /tmp/dash-bench.db] [--repeat 5]
        [--baseline]

Seeds a SQLite ledger (kept between runs: pass the same --db to reuse it) with rows in time order over the
last `--days` days, written with executemany in batches of 50,000 through sqlite3 (the table comes from
`Ledger.create`, so the schema and indexes are the real ones), then fills the rollups from them
(`Ledger.backfill`, the path an older ledger takes on its first start; timed). Then, per window, times
`dashboard_figures`:

- cold: in a new process each time (a new engine, connection and bucket cache, as on the first view after a
  restart; the time is measured inside that process, from before the first query to the figures);
- refresh: the same cache again (what the page's 30-second refresh costs: only open buckets are queried).

Prints the median and max of `--repeat` runs of each. `--baseline` also times, once per window, the figures
summed from the rows instead of the rollups (`query_row_buckets`, the dashboard before the rollups).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chains.breaker import BreakerRegistry
from gateway.dashboard import dashboard_figures
from gateway.dashboard.cache import BucketCache
from gateway.dashboard.figures import build_figures
from gateway.dashboard.queries import WINDOWS, Bucket, bucket_key, query_row_buckets, window_buckets
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


def services_of(ledger: Ledger) -> SimpleNamespace:
    return SimpleNamespace(observability=SimpleNamespace(ledger=ledger), breakers=BreakerRegistry(),
                           settings=SimpleNamespace(ai_cost_alert_threshold=100.0))


def cold_once(path: Path, window: str) -> float:
    """Milliseconds of one window's figures in this (new) process: new engine, connection and cache."""
    ledger = Ledger(f"sqlite:///{path}")
    t = time.perf_counter()
    dashboard_figures(services_of(ledger), BucketCache(), window, dt.datetime.now(dt.UTC))
    ms = (time.perf_counter() - t) * 1000
    ledger.close()
    return ms


def cold_in_new_process(path: Path, window: str) -> float:
    cmd = [sys.executable, "-m", "bench.dashboard_query", "--db", str(path), "--cold-child", window]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def from_rows(ledger: Ledger, window: str) -> dict[str, Any]:
    """The figures summed from the rows (the dashboard before the rollups)."""
    now = dt.datetime.now(dt.UTC)
    unit, starts = window_buckets(window, now)
    found = query_row_buckets(ledger, unit, starts[0], starts[-1] + (starts[1] - starts[0]))
    buckets = [found.get(k, Bucket(start=k)) for k in (bucket_key(s, unit) for s in starts)]
    return build_figures(window, unit, buckets, threshold=100.0, spent_today=0.0, circuits={}, now=now)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", action="store_true", help="also time the figures summed from the rows")
    p.add_argument("--cold-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    path = args.db or Path(tempfile.mkdtemp(prefix="dash-bench-")) / "usage.db"
    if args.cold_child:
        print(f"{cold_once(path, args.cold_child):.3f}")
        return
    now = dt.datetime.now(dt.UTC)
    t = time.perf_counter()
    ledger = Ledger(f"sqlite:///{path}").create()  # fills the rollups of a ledger seeded before they existed
    print(f"opened {path} in {time.perf_counter() - t:.1f} s (including any backfill of the rollups)")
    with ledger.engine.connect() as conn:
        have = conn.exec_driver_sql("SELECT count(*) FROM usage_requests").scalar() or 0
    if have < args.rows:
        if have:
            raise SystemExit(f"{path} holds {have:,} rows, fewer than --rows: pass a new --db")
        t = time.perf_counter()
        seed(path, args.rows, args.days, now)
        print(f"seeded {args.rows:,} rows in {time.perf_counter() - t:.1f} s into {path}")
        t = time.perf_counter()
        ledger.backfill()
        print(f"filled the rollups from them in {time.perf_counter() - t:.1f} s")
    with ledger.engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM usage_requests").scalar()
        span = conn.exec_driver_sql("SELECT min(ts), max(ts) FROM usage_requests").one()
        sizes = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                 for t in ("usage_hourly", "usage_marginals", "usage_latency")}
    print(f"{n:,} rows in the ledger, {span[0]} .. {span[1]}; rollup rows: {sizes}")
    services = services_of(ledger)
    for window in WINDOWS:
        samples = [cold_in_new_process(path, window) for _ in range(args.repeat)]
        cold = statistics.median(samples), max(samples)
        cache = BucketCache()
        figures = dashboard_figures(services, cache, window, dt.datetime.now(dt.UTC))
        warm = _time(lambda w=window, c=cache: dashboard_figures(services, c, w, dt.datetime.now(dt.UTC)),
                     args.repeat)
        line = (f"{window:>4}: {figures['totals']['requests']:>9,} rows  cold (new process) median {cold[0]:8.1f} ms "
                f"(max {cold[1]:8.1f})  refresh median {warm[0]:7.1f} ms (max {warm[1]:7.1f})")
        if args.baseline:
            t = time.perf_counter()
            reference = from_rows(ledger, window)
            line += f"  from rows {(time.perf_counter() - t) * 1000:9.1f} ms"
            assert reference["totals"]["requests"] == figures["totals"]["requests"], "rollups and rows disagree"
        print(line, flush=True)
    ledger.close()


if __name__ == "__main__":
    main()
