"""The dashboard's aggregated queries (gateway/dashboard/queries.py, cache.py, figures.py): per-bucket sums
that agree with the ledger's reports, approximate percentiles within 2.5% of the exact ones, window shapes, the
closed-bucket cache, a day bucket equal to the merge of its hours, the empty state, the same figures from the
rollups as from the rows, and on SQLite as on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from gateway.dashboard.cache import BucketCache, merge
from gateway.dashboard.figures import build_figures
from gateway.dashboard.queries import WINDOWS, Bucket, percentile, query_buckets, query_row_buckets, window_buckets
from gateway.ledger import Ledger, UsageRow

DAY = dt.datetime(2026, 11, 20)  # naive UTC
NOW = dt.datetime(2026, 11, 22, 15, 30, tzinfo=dt.UTC)


def rows(n: int = 500, seed: int = 3) -> list[UsageRow]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ok = rnd.random() > 0.1
        out.append(UsageRow(
            request_id=f"d-{i:05d}", ts=DAY + dt.timedelta(minutes=rnd.randrange(0, int(2.6 * 24 * 60))),
            route=rnd.choice(["chat", "search", "describe"]), status=200 if ok else rnd.choice([429, 503]),
            latency_ms=round(rnd.lognormvariate(6, 0.8), 3), key_name=rnd.choice(["web-app", "ops", None]),
            model=rnd.choice(["gpt-4o-mini", "gpt-3.5-turbo"]) if ok else None, error=not ok,
            fallback=ok and rnd.random() < 0.2, input_tokens=rnd.randrange(10, 4000),
            output_tokens=rnd.randrange(1, 500), cost_usd=round(rnd.uniform(0, 0.02), 8) if ok else 0.0,
            cache_hit=rnd.random() < 0.3, guard_action=rnd.choice(["allow", "allow", "block"]),
        ))
    return out


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(f"sqlite:///{tmp_path / 'usage.db'}").create()
    led.record(*rows())
    yield led
    led.close()


def figures(ledger: Ledger, window: str, cache: BucketCache | None = None) -> dict[str, Any]:
    unit, starts = window_buckets(window, NOW)
    buckets = (cache or BucketCache()).buckets(ledger, unit, starts, NOW)
    return build_figures(window, unit, buckets, threshold=5.0, spent_today=0.0, circuits={}, now=NOW)


def row_figures(ledger: Ledger, window: str) -> dict[str, Any]:
    """The figures summed from the rows (no rollup, no cache): the reference."""
    unit, starts = window_buckets(window, NOW)
    found = query_row_buckets(ledger, unit, starts[0], starts[-1] + (starts[1] - starts[0]))
    buckets = [found.get(b, Bucket(start=b)) for b in (s.isoformat(timespec="minutes") if unit != "day"
                                                      else s.date().isoformat() for s in starts)]
    return build_figures(window, unit, buckets, threshold=5.0, spent_today=0.0, circuits={}, now=NOW)


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 (sums added in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-9), where
    else:
        assert a == b, where


def test_windows_end_with_the_current_bucket() -> None:
    for window, (unit, n) in WINDOWS.items():
        got_unit, starts = window_buckets(window, NOW)
        assert got_unit == unit and len(starts) == n and starts[-1] <= NOW.replace(tzinfo=None)
    assert window_buckets("24h", NOW)[1][-1] == dt.datetime(2026, 11, 22, 15)
    assert window_buckets("7d", NOW)[1][0] == dt.datetime(2026, 11, 16)


def test_day_buckets_agree_with_the_ledger_report(ledger: Ledger) -> None:
    report = {r.group: r for r in ledger.report("day", since=DAY)}
    buckets = query_buckets(ledger, "day", DAY, DAY + dt.timedelta(days=3))
    assert sorted(buckets) == sorted(report)
    for day, r in report.items():
        sums = buckets[day].totals()
        assert int(sums[0]) == r.requests and int(sums[1]) == r.input_tokens and int(sums[3]) == r.output_tokens
        assert sums[4] == pytest.approx(r.cost_usd) and int(sums[5]) == r.errors and int(sums[6]) == r.fallbacks
        assert sum(buckets[day].latency.values()) == r.requests
        for pct, exact in ((50, r.p50_ms), (95, r.p95_ms)):
            assert exact is not None
            assert percentile(buckets[day].latency, pct) == pytest.approx(exact, rel=0.026)


def test_figures_of_a_window(ledger: Ledger) -> None:
    f = figures(ledger, "7d")
    everything = rows()
    assert f["unit"] == "day" and len(f["buckets"]) == 7 and not f["empty"]
    assert f["totals"]["requests"] == len(everything)
    assert f["totals"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in everything), abs=1e-5)
    assert f["totals"]["rate_limited_rate"] == pytest.approx(sum(r.status == 429 for r in everything) / 500)
    assert f["totals"]["guard_block_rate"] == pytest.approx(sum(r.guard_action == "block" for r in everything) / 500)
    assert f["totals"]["cache_hit_rate"] == pytest.approx(sum(r.cache_hit for r in everything) / 500)
    assert set(f["spend_by_model"]) == {"gpt-4o-mini", "gpt-3.5-turbo"}
    assert sum(v["requests"] for v in f["tokens_by_route"].values()) == 500
    assert f["top_keys"][0]["key"] in {"web-app", "ops"}
    assert f["top_keys"] == sorted(f["top_keys"], key=lambda k: -k["cost_usd"])
    assert f["rates"]["error"][0] is None  # a bucket without requests has no rate
    assert len(f["latency"]["p95_ms"]) == 7


def test_an_empty_window_says_so(tmp_path: Path) -> None:
    empty = Ledger(f"sqlite:///{tmp_path / 'empty.db'}").create()
    f = figures(empty, "30d")
    assert f["empty"] and f["totals"]["requests"] == 0 and f["spend_by_model"] == {} and f["top_keys"] == []
    assert f["totals"]["p50_ms"] is None and len(f["buckets"]) == 30


def test_closed_buckets_are_cached_and_open_ones_read_again(ledger: Ledger) -> None:
    cache = BucketCache()
    first = figures(ledger, "7d", cache)
    late = UsageRow(request_id="late-closed", ts=DAY, route="chat", status=200, latency_ms=5.0, cost_usd=1.0)
    fresh = UsageRow(request_id="now", ts=NOW - dt.timedelta(minutes=5), route="chat", status=200,
                     latency_ms=5.0, cost_usd=2.0, model="gpt-4o-mini")
    ledger.record(late, fresh)
    again = figures(ledger, "7d", cache)
    # the closed day kept its cached figures; today's open bucket sees the new row
    assert again["totals"]["requests"] == first["totals"]["requests"] + 1
    assert again["totals"]["cost_usd"] == pytest.approx(first["totals"]["cost_usd"] + 2.0)
    assert figures(ledger, "7d")["totals"]["requests"] == first["totals"]["requests"] + 2  # a new cache: both


def test_a_day_bucket_is_the_merge_of_its_hours(ledger: Ledger) -> None:
    today = dt.datetime(2026, 11, 22)
    from_hours = merge("2026-11-22", query_buckets(ledger, "hour", today, today + dt.timedelta(days=1)).values())
    direct = query_buckets(ledger, "day", today, today + dt.timedelta(days=1))["2026-11-22"]
    assert from_hours.groups.keys() == direct.groups.keys() and from_hours.latency == direct.latency
    for group, values in direct.groups.items():
        assert from_hours.groups[group] == pytest.approx(values)


@pytest.fixture
def pg_ledger(postgres_server: Any) -> Iterator[Ledger]:
    name = "dash_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    led = Ledger(postgres_server.url.rsplit("/", 1)[0] + "/" + name).create()
    yield led
    led.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def test_sqlite_and_postgresql_give_the_same_figures(ledger: Ledger, pg_ledger: Ledger) -> None:
    pg_ledger.record(*rows())
    for window in ("24h", "7d"):
        a, b = figures(ledger, window), figures(pg_ledger, window)
        assert a["buckets"] == b["buckets"] and a["totals"] == pytest.approx(b["totals"])
        assert a["latency"] == b["latency"]
        assert [(k["key"], k["requests"]) for k in a["top_keys"]] == [(k["key"], k["requests"]) for k in b["top_keys"]]
        assert [k["cost_usd"] for k in a["top_keys"]] == pytest.approx([k["cost_usd"] for k in b["top_keys"]])


@pytest.mark.parametrize("backend", ["ledger", "pg_ledger"])
def test_figures_from_the_rollups_equal_figures_from_the_rows(backend: str, request: pytest.FixtureRequest) -> None:
    led: Ledger = request.getfixturevalue(backend)
    if backend == "pg_ledger":
        led.record(*rows())
    led.record(*rows(200, seed=4))  # a second batch over the same hours: upserts add to the first
    for window in WINDOWS:
        assert_same(figures(led, window), row_figures(led, window), window)
    assert not figures(led, "30d")["empty"]
