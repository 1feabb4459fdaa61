"""The usage ledger: reports by day, key, model and route (requests, tokens, cost, error rate, nearest-rank
p50/p95), spend for budgets, the same figures from SQLite and a real PostgreSQL, `GET /usage` and the CLI;
the rollups: equal to a GROUP BY over the rows after random inserts (both backends), one statement per table
for a batch, the backfill of an older ledger, exact window sums whatever the hour boundaries."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, select, text

from gateway.keys import build_key_store
from gateway.ledger import (
    Ledger,
    UsageRow,
    database_url,
    hourly_table,
    latency_bin,
    latency_table,
    marginals_table,
    usage_table,
)
from gateway.reports import format_table, main, parse_since
from server import create_app
from settings import Settings
from tests.conftest import make_settings

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def seeded_rows(n: int = 600, seed: int = 7) -> list[UsageRow]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ok = rnd.random() > 0.1
        model = rnd.choice(["gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct"]) if ok else None
        out.append(UsageRow(
            request_id=f"req-{i:06d}", ts=DAY + dt.timedelta(minutes=rnd.randrange(0, 3 * 24 * 60)),
            route=rnd.choice(["chat", "search", "describe"]), endpoint="invoke", status=200 if ok else 503,
            latency_ms=round(rnd.uniform(20, 3000), 3), key_name=rnd.choice(["web-app", "ops", None]),
            model=model, error=not ok, fallback=ok and rnd.random() < 0.15,
            input_tokens=rnd.randrange(10, 5000), cached_tokens=rnd.randrange(0, 10),
            output_tokens=rnd.randrange(1, 800), cost_usd=round(rnd.uniform(0, 0.02), 8) if ok else 0.0,
            priced=model != "acme", ttft_ms=None,
        ))
    return out


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'usage.db'}").create()
    yield ledger
    ledger.close()


@pytest.fixture
def pg_ledger(postgres_server: Any) -> Iterator[Ledger]:
    """A fresh database per test on the session's PostgreSQL server."""
    name = "usage_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    ledger = Ledger(postgres_server.url.rsplit("/", 1)[0] + "/" + name).create()
    yield ledger
    ledger.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def test_nearest_rank_percentiles_and_rates(sqlite_ledger: Ledger) -> None:
    rows = [UsageRow(request_id=f"r{i:04d}", ts=DAY, route="chat", status=200 if i % 10 else 500,
                     latency_ms=float(i), error=i % 10 == 0, fallback=i % 4 == 0, input_tokens=10, output_tokens=5,
                     cost_usd=0.01, model="gpt-4o-mini") for i in range(1, 101)]
    sqlite_ledger.record(*rows)
    [r] = sqlite_ledger.report("route", since=DAY)
    assert (r.requests, r.p50_ms, r.p95_ms) == (100, 50.0, 95.0)
    assert r.error_rate == pytest.approx(0.10) and r.fallback_rate == pytest.approx(0.25)
    assert r.input_tokens == 1000 and r.tokens == 1500 and r.cost_usd == pytest.approx(1.0)
    [one] = Ledger(sqlite_ledger.url).report("model", since=DAY, until=DAY + dt.timedelta(seconds=1))
    assert one.requests == 100


def test_groups_windows_and_filters(sqlite_ledger: Ledger) -> None:
    rows = seeded_rows()
    sqlite_ledger.record(*rows)
    by_day = sqlite_ledger.report("day", since=DAY)
    assert [r.group for r in by_day] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert sum(r.requests for r in by_day) == len(rows)
    by_key = {r.group: r for r in sqlite_ledger.report("key", since=DAY)}
    assert set(by_key) == {"web-app", "ops", "(none)"}
    assert by_key["ops"].cost_usd == pytest.approx(sum(r.cost_usd for r in rows if r.key_name == "ops"))
    by_model = {r.group for r in sqlite_ledger.report("model", since=DAY)}
    assert "(none)" in by_model and "gpt-4o-mini" in by_model
    later = DAY + dt.timedelta(days=2)
    assert sum(r.requests for r in sqlite_ledger.report("route", since=later)) == sum(1 for r in rows if r.ts >= later)
    only = sqlite_ledger.report("route", since=DAY, key_name="web-app")
    assert sum(r.requests for r in only) == sum(1 for r in rows if r.key_name == "web-app")
    with pytest.raises(ValueError, match="group by"):
        sqlite_ledger.report("user", since=DAY)  # type: ignore[arg-type]


def test_spend_since_for_budgets(sqlite_ledger: Ledger) -> None:
    rows = seeded_rows()
    sqlite_ledger.record(*rows)
    since = DAY + dt.timedelta(days=1, hours=6)
    assert sqlite_ledger.spend_since(since) == pytest.approx(sum(r.cost_usd for r in rows if r.ts >= since))
    assert sqlite_ledger.spend_since(since, key_name="web-app") == pytest.approx(
        sum(r.cost_usd for r in rows if r.ts >= since and r.key_name == "web-app"))
    # An aware datetime in another zone means the same instant.
    eastern = since.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert sqlite_ledger.spend_since(eastern) == sqlite_ledger.spend_since(since)
    assert sqlite_ledger.spend_since(DAY + dt.timedelta(days=30)) == 0.0


def test_sqlite_and_postgresql_give_the_same_report(sqlite_ledger: Ledger, pg_ledger: Ledger) -> None:
    rows = seeded_rows(900, seed=11)
    for ledger in (sqlite_ledger, pg_ledger):
        ledger.record(*rows)
    for by in ("day", "key", "model", "route"):
        a = sqlite_ledger.report(by, since=DAY)  # type: ignore[arg-type]
        b = pg_ledger.report(by, since=DAY)  # type: ignore[arg-type]
        assert [r.group for r in a] == [r.group for r in b], by
        for x, y in zip(a, b, strict=True):
            dx, dy = x.as_dict(), y.as_dict()
            assert dx.pop("cost_usd") == pytest.approx(dy.pop("cost_usd"), abs=1e-9)
            assert dx == dy, by
    since = DAY + dt.timedelta(hours=30)
    assert sqlite_ledger.spend_since(since, key_name="ops") == pytest.approx(pg_ledger.spend_since(since,
                                                                                                   key_name="ops"))
    assert sqlite_ledger.totals(DAY, DAY + dt.timedelta(days=1)) == pg_ledger.totals(DAY, DAY + dt.timedelta(days=1))


def test_database_url_picks_the_driver(tmp_path: Path) -> None:
    assert database_url(database_url=None, sqlite_file=tmp_path / "u.db") == f"sqlite:///{tmp_path / 'u.db'}"
    assert database_url(database_url="postgres://u@h/db", sqlite_file=tmp_path) == "postgresql+psycopg://u@h/db"
    assert database_url(database_url="postgresql://u@h/db", sqlite_file=tmp_path) == "postgresql+psycopg://u@h/db"


def test_usage_endpoint_is_admin_only(openai_settings: Settings) -> None:
    with TestClient(create_app(openai_settings)) as c:
        c.post("/chat/invoke", json={"input": {"messages": [{"role": "user", "content": "hi"}]}})
        body = c.get("/usage", params={"by": "route", "since": "1d"}).json()
        assert body["by"] == "route" and body["rows"][0]["group"] == "chat" and body["rows"][0]["requests"] == 1
        assert c.get("/usage", params={"by": "user"}).status_code == 422
        assert c.get("/usage", params={"since": "last tuesday"}).status_code == 422
    with TestClient(create_app(openai_settings), client=("203.0.113.9", 5000)) as c:
        assert c.get("/usage").status_code == 401  # not loopback: a key is needed even in development
    prod = make_settings(skymarket_env="production", openai_api_key=openai_settings.openai_api_key,
                         openai_base_url=openai_settings.openai_base_url, gateway_keys_refresh_s=0)
    store = build_key_store(settings=prod)
    store.create_table()
    chat_key, admin_key = store.create(name="web-app", scopes=["chat"]), store.create(name="ops", scopes=["admin"])
    with TestClient(create_app(prod)) as c:
        assert c.get("/usage").status_code == 401
        assert c.get("/usage", headers={"Authorization": f"Bearer {chat_key}"}).status_code == 403
        assert c.get("/usage", headers={"Authorization": f"Bearer {admin_key}"}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": f"Bearer {chat_key}"}).status_code == 403


def test_cli_prints_a_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(database_url(database_url=None, sqlite_file=make_settings().usage_db_file)).create()
    now = dt.datetime.now(dt.UTC)
    ledger.record(*[UsageRow(request_id=f"cli-{i:04d}", ts=now - dt.timedelta(hours=i), route="chat", status=200,
                             latency_ms=100.0 + i, key_name="web-app", model="gpt-4o-mini", input_tokens=1000,
                             output_tokens=100, cost_usd=0.25) for i in range(4)])
    ledger.close()
    assert main(["--by", "key", "--since", "1d"]) == 0
    out = capsys.readouterr().out
    assert "usage by key since" in out and "web-app" in out and "1.0000" in out and "total" in out
    header = out.splitlines()[1]
    for col in ("requests", "tokens in", "cost USD", "errors", "p50 ms", "p95 ms"):
        assert col in header
    assert main(["--by", "model", "--since", "2020-01-01", "--json"]) == 0
    assert '"group": "gpt-4o-mini"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--by", "planet"])


def test_since_parsing() -> None:
    now = dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC)
    assert parse_since("7d", now=now) == now - dt.timedelta(days=7)
    assert parse_since("today", now=now) == dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    assert parse_since("2026-11-01", now=now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        parse_since("soon", now=now)


def test_table_marks_unpriced() -> None:
    from gateway.ledger import ReportRow

    out = format_table([ReportRow("acme", 2, 10, 0, 5, 0.0, 0, 0, 2, 1.0, 2.0)], "model")
    assert "*" in out and "missing from data/pricing.json" in out


# --- rollups ---
def random_rows(n: int, seed: int) -> list[UsageRow]:
    """Rows over three days in random order, some aware, some without key or model, every counted flag."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = DAY + dt.timedelta(seconds=rnd.randrange(0, 3 * 86400), microseconds=rnd.randrange(10**6))
        aware = rnd.random() < 0.2
        ts = ts.astimezone(dt.timezone(dt.timedelta(hours=-5))) if aware else ts.replace(tzinfo=None)
        model = rnd.choice(["gpt-4o-mini", "gpt-3.5-turbo", None])
        out.append(UsageRow(
            request_id=f"rr-{seed}-{i:05d}", ts=ts, route=rnd.choice(["chat", "search", "describe"]),
            status=rnd.choice([200, 200, 200, 429, 503]), latency_ms=rnd.choice([0.0, 9.99, 10.0, 123_456.0,
                                                                                  rnd.lognormvariate(6, 1.2)]),
            key_name=rnd.choice(["web-app", "ops", None]), model=model, fallback=rnd.random() < 0.2,
            error=rnd.random() < 0.1, input_tokens=rnd.randrange(0, 5000), cached_tokens=rnd.randrange(0, 50),
            output_tokens=rnd.randrange(0, 900), cost_usd=round(rnd.uniform(0, 0.02), 8) if model else 0.0,
            priced=rnd.random() > 0.1, cache_hit=rnd.random() < 0.3,
            guard_action=rnd.choice([None, "allow", "block"]),
        ))
    return out


def reference(rows: list[UsageRow]) -> dict[str, dict[tuple[Any, ...], Any]]:
    """The rollups as a GROUP BY over `rows`, computed here."""
    hourly: dict[tuple[Any, ...], list[float]] = {}
    marginals: dict[tuple[Any, ...], list[float]] = {}
    latency: dict[tuple[Any, ...], int] = {}

    def add(into: dict[tuple[Any, ...], list[float]], key: tuple[Any, ...], v: list[float]) -> None:
        into[key] = [a + b for a, b in zip(into.get(key, [0.0] * len(v)), v, strict=True)]

    for r in rows:
        ts = r.ts.astimezone(dt.UTC).replace(tzinfo=None) if r.ts.tzinfo else r.ts
        hour = ts.replace(minute=0, second=0, microsecond=0)
        model, key = r.model or "(none)", r.key_name or "(none)"
        v = [1, r.input_tokens, r.cached_tokens, r.output_tokens, r.cost_usd, r.error, r.fallback, r.status == 429,
             r.guard_action == "block", r.cache_hit, not r.priced]
        add(hourly, (hour, model, r.route, key), [float(x) for x in v])
        for span, start in (("hour", hour), ("day", hour.replace(hour=0))):
            for dim, name in (("model", model), ("route", r.route), ("key", key)):
                add(marginals, (span, start, dim, name), [float(x) for x in v])
            k = (span, start, latency_bin(r.latency_ms))
            latency[k] = latency.get(k, 0) + 1
    return {"hourly": hourly, "marginals": marginals, "latency": latency}


def stored(ledger: Ledger) -> dict[str, dict[tuple[Any, ...], Any]]:
    """The rollups as stored."""
    with ledger.engine.connect() as conn:
        return {
            "hourly": {tuple(r[:4]): [float(x) for x in r[5:]] for r in conn.execute(select(hourly_table))},
            "marginals": {tuple(r[:4]): [float(x) for x in r[5:]] for r in conn.execute(select(marginals_table))},
            "latency": {tuple(r[:3]): int(r[3]) for r in conn.execute(select(latency_table))},
        }


def assert_rollups(ledger: Ledger, rows: list[UsageRow]) -> None:
    want, got = reference(rows), stored(ledger)
    assert got["latency"] == want["latency"]
    for table in ("hourly", "marginals"):
        assert got[table].keys() == want[table].keys(), table
        for k, v in want[table].items():
            assert got[table][k] == pytest.approx(v, abs=1e-9), (table, k)


@pytest.mark.parametrize("backend", ["sqlite_ledger", "pg_ledger"])
def test_rollups_equal_a_group_by_over_the_rows(backend: str, request: pytest.FixtureRequest) -> None:
    ledger: Ledger = request.getfixturevalue(backend)
    rows, rnd, i = random_rows(700, seed=5), random.Random(9), 0
    while i < len(rows):  # batches of random sizes, as the recorder and a batch writer send them
        n = rnd.choice([1, 1, 2, 7, 40])
        ledger.record(*rows[i:i + n])
        i += n
    assert_rollups(ledger, rows)


def test_a_batch_is_one_statement_per_table(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    rows = random_rows(2000, seed=6)
    statements: list[str] = []
    event.listen(sqlite_ledger.engine, "before_cursor_execute",
                 lambda conn, cur, sql, params, context, many: statements.append(sql.split()[2]))
    sqlite_ledger.record(*rows)
    # the rows: multi-row INSERT .. RETURNING in pages of 1000 (SQLAlchemy's); each rollup: one statement
    assert statements == ["usage_requests", "usage_requests", "usage_hourly", "usage_marginals", "usage_latency"]
    one_by_one = Ledger(f"sqlite:///{tmp_path / 'single.db'}").create()
    for r in rows[:300]:
        one_by_one.record(r)
    one_by_one.record(*rows[300:])
    assert stored(one_by_one)["latency"] == stored(sqlite_ledger)["latency"]
    assert_rollups(sqlite_ledger, rows)
    assert_rollups(one_by_one, rows)
    one_by_one.close()


@pytest.mark.parametrize("backend", ["sqlite_ledger", "pg_ledger"])
def test_a_row_is_stored_and_rolled_up_once_however_often_it_is_written(backend: str,
                                                                        request: pytest.FixtureRequest) -> None:
    ledger: Ledger = request.getfixturevalue(backend)
    rows = random_rows(300, seed=11)
    assert ledger.record(*rows[:200]) == 200
    assert ledger.record(*rows) == 100  # a retried batch: the 200 already stored are skipped
    assert ledger.record(*rows[:50]) == 0 and ledger.record(*rows[120:180], *rows[120:180]) == 0
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_table)).scalar() == 300
    assert_rollups(ledger, rows)  # the rollups counted each row once too


@pytest.mark.parametrize("backend", ["sqlite_ledger", "pg_ledger"])
def test_an_older_ledger_gets_record_ids_and_keeps_its_rows(backend: str, request: pytest.FixtureRequest) -> None:
    ledger: Ledger = request.getfixturevalue(backend)
    old = random_rows(40, seed=12)
    ledger.record(*old)
    with ledger.engine.begin() as conn:  # as a ledger made before record ids existed
        conn.exec_driver_sql("DROP INDEX ux_usage_record_id")
        conn.exec_driver_sql("ALTER TABLE usage_requests DROP COLUMN record_id")
    ledger.create()
    ledger.create()  # idempotent
    new = random_rows(30, seed=13)
    assert ledger.record(*new) == 30 and ledger.record(*new) == 0
    with ledger.engine.connect() as conn:
        ids = [r for (r,) in conn.execute(select(usage_table.c.record_id))]
    assert len(ids) == 70 and ids.count(None) == 40 and len(set(ids) - {None}) == 30
    assert_rollups(ledger, old + new)


@pytest.mark.parametrize("backend", ["sqlite_ledger", "pg_ledger"])
def test_backfill_fills_an_older_ledger_once(backend: str, request: pytest.FixtureRequest) -> None:
    ledger: Ledger = request.getfixturevalue(backend)
    old = random_rows(600, seed=8)
    with ledger.engine.begin() as conn:  # rows written by a version without rollups
        conn.execute(usage_table.insert(), [r.values() for r in old])
    assert stored(ledger)["hourly"] == {}
    restarted = Ledger(ledger.url).create()  # fills them (one INSERT..SELECT per rollup and span)
    assert_rollups(restarted, old)
    again = Ledger(ledger.url).create()
    assert not restarted.backfill() and not again.backfill()  # once only
    again.close()  # (an engine left open keeps a session: the fixture could not drop the database)
    new = random_rows(100, seed=10)
    restarted.record(*new)
    assert_rollups(restarted, old + new)
    restarted.close()


def test_window_sums_are_exact_whatever_the_boundaries(sqlite_ledger: Ledger) -> None:
    rows = random_rows(900, seed=12)
    sqlite_ledger.record(*rows)
    utc = [(r.ts.astimezone(dt.UTC).replace(tzinfo=None) if r.ts.tzinfo else r.ts, r) for r in rows]
    t0 = DAY.replace(tzinfo=None)
    windows = [(t0, None), (t0 + dt.timedelta(hours=30), None), (t0 + dt.timedelta(hours=7, minutes=13), None),
               (t0 + dt.timedelta(minutes=5), t0 + dt.timedelta(minutes=50)),
               (t0 + dt.timedelta(hours=3, seconds=1), t0 + dt.timedelta(days=2, hours=5, minutes=59)),
               (t0 + dt.timedelta(hours=1), t0 + dt.timedelta(days=2)),
               (t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=1, hours=1))]
    for since, until in windows:
        inside = [r for ts, r in utc if ts >= since and (until is None or ts < until)]
        if until is None:
            ops = [r for r in inside if r.key_name == "ops"]
            assert sqlite_ledger.spend_since(since) == pytest.approx(sum(r.cost_usd for r in inside), abs=1e-9)
            assert sqlite_ledger.spend_since(since, key_name="ops") == pytest.approx(sum(r.cost_usd for r in ops),
                                                                                       abs=1e-9)
        else:
            assert sqlite_ledger.totals(since, until) == (len(inside), sum(r.error for r in inside),
                                                          sum(r.fallback for r in inside))
        by_model = {r.group: r for r in sqlite_ledger.report("model", since=since, until=until, route="chat")}
        chat = [r for r in inside if r.route == "chat"]
        assert sum(r.requests for r in by_model.values()) == len(chat)
        for name, row in by_model.items():
            mine = [r for r in chat if (r.model or "(none)") == name]
            assert (row.requests, row.errors, row.fallbacks, row.unpriced, row.input_tokens) == (
                len(mine), sum(r.error for r in mine), sum(r.fallback for r in mine),
                sum(not r.priced for r in mine), sum(r.input_tokens for r in mine))
            assert row.cost_usd == pytest.approx(sum(r.cost_usd for r in mine), abs=1e-9)
            lat = sorted(r.latency_ms for r in mine)
            assert row.p95_ms == lat[max(1, (len(lat) * 95 + 99) // 100) - 1]


def test_latency_bins() -> None:
    assert latency_bin(0.0) == 0.0 and latency_bin(9.99) == pytest.approx(9.95) and latency_bin(10.0) == 10.0
    assert latency_bin(403.7) == 400.0 and latency_bin(2_049.0) == 2_000.0 and latency_bin(123_456.0) == 120_000.0
