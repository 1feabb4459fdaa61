"""The usage ledger: reports by day, key, model and route (requests, tokens, cost, error rate, nearest-rank
p50/p95), spend for budgets, the same figures from SQLite and a real PostgreSQL, `GET /usage` and the CLI."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from gateway.keys import build_key_store
from gateway.ledger import Ledger, UsageRow, database_url
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
