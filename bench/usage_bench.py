"""Usage ledger and audit costs: per-request write cost, budget reads, and report queries over many rows.

    .venv/bin/python -m bench.usage_bench --rows 1000000 [--days 90] [--db /tmp/usage-bench.db]

Seeds a SQLite ledger (kept between runs: pass the same --db to reuse it; the rollups are filled from the
seeded rows, timed), then times, as medians: ledger.record of one row, AuditLog.record of one request,
spend_since (the gateway's budget read), and report(by=day|model|key|route) over the last 30 days. Then the
write cost per row with the rollups (`Ledger.record`) and without (the rows alone, the ledger before them), in
batches of 1 and 100 rows, each in a new, empty SQLite ledger. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.audit import AuditLog
from gateway.context import ModelCall, RequestContext
from gateway.ledger import Ledger, UsageRow, usage_table


def _timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), max(samples)


def seed(ledger: Ledger, rows: int, days: int, now: dt.datetime) -> None:
    rnd = random.Random(1)
    keys = [f"key-{i}" for i in range(20)] + [None]
    models = ["gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct", None]
    routes = ["chat", "search", "describe", "guard"]
    batch = []
    start = now - dt.timedelta(days=days)
    span = days * 86400
    stamps = sorted(rnd.random() * span for _ in range(rows))  # rows arrive in time order, as they do live
    with ledger.engine.begin() as conn:
        for i, offset in enumerate(stamps):
            ts = start + dt.timedelta(seconds=offset)
            batch.append(UsageRow(
                request_id=f"{i:032x}", ts=ts, route=rnd.choice(routes), endpoint="invoke",
                status=200, latency_ms=rnd.lognormvariate(6, 0.8), key_name=rnd.choice(keys),
                model=rnd.choice(models), input_tokens=rnd.randrange(50, 3000), output_tokens=rnd.randrange(5, 600),
                cost_usd=rnd.random() / 500, error=rnd.random() < 0.02, fallback=rnd.random() < 0.05,
            ).values())
            if len(batch) == 20_000:
                conn.execute(usage_table.insert(), batch)
                batch = []
        if batch:
            conn.execute(usage_table.insert(), batch)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "skymarket-usage-bench.db")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    now = dt.datetime.now(dt.UTC)
    t = time.perf_counter()
    ledger = Ledger(f"sqlite:///{args.db}").create()  # fills the rollups of a ledger seeded before they existed
    print(f"opened {args.db} in {time.perf_counter() - t:.1f}s (including any backfill of the rollups)")
    with ledger.engine.connect() as conn:
        have = conn.execute(usage_table.select().with_only_columns(usage_table.c.id).limit(1)).first()
    if have is None:
        t = time.perf_counter()
        seed(ledger, args.rows, args.days, now)
        print(f"seeded {args.rows:,} rows over {args.days} days in {time.perf_counter() - t:.1f}s -> {args.db}")
    t = time.perf_counter()
    if ledger.backfill():
        print(f"filled the rollups from the rows in {time.perf_counter() - t:.1f}s")
    gc.collect()
    gc.freeze()

    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditLog(Path(tmp) / "audit.jsonl", hmac_key=b"k" * 32)
        ctx = RequestContext(request_id="b" * 32, route="chat", endpoint="invoke", status=200, key_name="web-app",
                             user_id="user-42")
        ctx.add_call(ModelCall(model="gpt-4o-mini", ok=True, input_tokens=1200, output_tokens=300, cost_usd=0.0004))
        ctx.finished_mono = ctx.started_mono + 0.4
        med, worst = _timed(lambda: audit.record(ctx), 2000)
        print(f"audit.record            median {med * 1e6:8.0f} us   max {worst * 1e3:7.2f} ms")
    row = UsageRow(request_id="c" * 32, ts=now, route="chat", status=200, latency_ms=400.0, key_name="web-app",
                   model="gpt-4o-mini", input_tokens=1200, output_tokens=300, cost_usd=0.0004)
    med, worst = _timed(lambda: ledger.record(row), 500)
    print(f"ledger.record (1 row)   median {med * 1e6:8.0f} us   max {worst * 1e3:7.2f} ms")
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    med, worst = _timed(lambda: ledger.spend_since(midnight), 50)
    print(f"spend_since(today)      median {med * 1e3:8.2f} ms   max {worst * 1e3:7.2f} ms")
    med, worst = _timed(lambda: ledger.spend_since(midnight, key_name="key-3"), 50)
    print(f"spend_since(today, key) median {med * 1e3:8.2f} ms   max {worst * 1e3:7.2f} ms")
    since = now - dt.timedelta(days=30)
    for by in ("day", "model", "key", "route"):
        med, worst = _timed(lambda by=by: ledger.report(by, since=since), args.repeat)  # type: ignore[misc]
        print(f"report(by={by:<5}, 30 days) median {med * 1e3:8.1f} ms   max {worst * 1e3:7.1f} ms")
    ledger.close()
    write_costs(now)


def write_costs(now: dt.datetime) -> None:
    """Per-row cost of writing rows with the rollups and without them, in new ledgers."""
    rnd = random.Random(2)

    def rows(n: int) -> list[UsageRow]:
        return [UsageRow(request_id=f"{rnd.getrandbits(128):032x}", ts=now, route=rnd.choice(["chat", "search"]),
                         status=200, latency_ms=rnd.lognormvariate(6, 0.8), key_name=f"key-{rnd.randrange(20)}",
                         model=rnd.choice(["gpt-4o-mini", "gpt-3.5-turbo"]), input_tokens=1200, output_tokens=300,
                         cost_usd=0.0004) for _ in range(n)]

    with tempfile.TemporaryDirectory() as tmp:
        with_rollups = Ledger(f"sqlite:///{tmp}/rollups.db").create()
        rows_only = Ledger(f"sqlite:///{tmp}/rows.db").create()

        def insert_rows(batch: list[UsageRow]) -> None:
            with rows_only.engine.begin() as conn:
                conn.execute(usage_table.insert(), [r.values() for r in batch])

        def record(batch: list[UsageRow]) -> None:
            with_rollups.record(*batch)

        for size, n in ((1, 500), (100, 50)):
            for name, write in (("rows only", insert_rows), ("with rollups", record)):
                batches = iter([rows(size) for _ in range(n)])
                med, worst = _timed(lambda w=write, b=batches: w(next(b)), n)  # type: ignore[misc]
                print(f"write {size:>3} row(s), {name:<12} median {med / size * 1e6:8.0f} us/row   "
                      f"max {worst * 1e3:7.2f} ms/batch")
        with_rollups.close()
        rows_only.close()


if __name__ == "__main__":
    main()
