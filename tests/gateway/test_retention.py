"""Retention (gateway/retention.py, retention_stores.py, retention_job.py) with a movable clock: the ledger's
rows and rollups older than their retention go on SQLite and PostgreSQL (rollups by whole days; reports of old
windows keep their sums), the describe cache (SQLite, Redis) and eval reports are pruned, a dry run changes
nothing, `skymarket prune` reports per store with exit codes 0/1/2, and the server's job runs on its interval,
never raises, and shows a failure in /readyz."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from gateway import retention_stores
from gateway.ledger import Ledger, UsageRow, hourly_table, latency_table, marginals_table, usage_table
from gateway.retention import Pruned, main, prune
from gateway.retention_job import RetentionJob, build_retention_job
from gateway.retention_stores import prune_describe_cache, prune_eval_reports
from server import create_app
from settings import Settings
from tests.conftest import make_settings

NOW = dt.datetime(2026, 6, 30, 12, 0)  # the movable clock: naive UTC
DAYS = 200


def _rows() -> list[UsageRow]:
    """Two rows a day for DAYS days before NOW (one at 00:30, one at 12:00 minus a minute)."""
    out = []
    for d in range(DAYS):
        for ts in (NOW - dt.timedelta(days=d, hours=11, minutes=30), NOW - dt.timedelta(days=d, minutes=1)):
            out.append(UsageRow(request_id=uuid.uuid4().hex, ts=ts, route="chat", status=200, latency_ms=100.0 + d,
                                key_name="k", model="m", input_tokens=10, output_tokens=5, cost_usd=0.01))
    return out


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'usage.db'}"


@pytest.fixture
def pg_url(postgres_server: Any) -> Iterator[str]:
    """A fresh database per test on the session's PostgreSQL server."""
    name = "retention_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _counts(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (usage_table, hourly_table, marginals_table, latency_table)}


def _oldest(ledger: Ledger) -> dict[str, dt.datetime]:
    with ledger.engine.connect() as conn:
        return {"rows": conn.execute(select(func.min(usage_table.c.ts))).scalar_one(),
                "hourly": conn.execute(select(func.min(hourly_table.c.hour))).scalar_one(),
                "marginals": conn.execute(select(func.min(marginals_table.c.start))).scalar_one(),
                "latency": conn.execute(select(func.min(latency_table.c.start))).scalar_one()}


def _settings(url: str, tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": None if url.startswith("sqlite") else url,
        "usage_db_file": Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else tmp_path / "u.db",
        "audit_file": tmp_path / "audit" / "audit.jsonl", "describe_cache_path": tmp_path / "cache.db",
        "prompt_eval_report_dir": tmp_path / "evals", "retention_usage_days": 90, "retention_rollups_days": 120}
    return make_settings(**(base | kw))


@pytest.mark.parametrize("backend", ["sqlite_url", "pg_url"])
def test_rows_and_rollups_older_than_their_retention_go(backend: str, request: pytest.FixtureRequest,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url: str = request.getfixturevalue(backend)
    monkeypatch.setattr(retention_stores, "ROW_CHUNK", 7)  # many short transactions, as on a big ledger
    monkeypatch.setattr(retention_stores, "ROLLUP_STEP", dt.timedelta(days=3))
    ledger = Ledger(url).create()
    ledger.record(*_rows())
    before = _counts(ledger)
    old_window = ledger.report("day", since=NOW - dt.timedelta(days=100))
    settings = _settings(url, tmp_path)

    dry = {r.store: r for r in prune(settings, now=NOW, dry_run=True, stores=("usage", "rollups"))}
    assert _counts(ledger) == before  # a dry run changes nothing ...
    assert dry["usage"].removed == 2 * (DAYS - 90)  # ... and counts what would go: rows of days 90..199

    done = {r.store: r for r in prune(settings, now=NOW, stores=("usage", "rollups"))}
    after = _counts(ledger)
    assert done["usage"].removed == dry["usage"].removed == before["usage_requests"] - after["usage_requests"]
    assert done["rollups"].removed == dry["rollups"].removed == sum(before.values()) - sum(after.values()) \
        - done["usage"].removed
    oldest = _oldest(ledger)
    assert oldest["rows"] >= NOW - dt.timedelta(days=90)
    day_cutoff = (NOW - dt.timedelta(days=120)).replace(hour=0)  # rollups: whole UTC days
    assert all(oldest[k] == day_cutoff for k in ("hourly", "marginals", "latency"))
    # Rows of days 90..100 are gone, their sums are not: a report of that window reads the rollups.
    assert [(r.group, r.requests, round(r.cost_usd, 6)) for r in ledger.report(
        "day", since=NOW - dt.timedelta(days=100))] == [(r.group, r.requests, round(r.cost_usd, 6))
                                                        for r in old_window]
    # A second prune at the same time finds nothing; a day later, one more day of each.
    assert {r.store: r.removed for r in prune(settings, now=NOW, stores=("usage", "rollups"))} == \
        {"usage": 0, "rollups": 0}
    later = {r.store: r.removed for r in prune(settings, now=NOW + dt.timedelta(days=1),
                                                stores=("usage", "rollups"))}
    assert later["usage"] == 2 and later["rollups"] > 0
    ledger.close()


def test_zero_days_keeps_a_store_forever(sqlite_url: str, tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url).create()
    ledger.record(*_rows())
    settings = _settings(sqlite_url, tmp_path, retention_usage_days=0, retention_rollups_days=0)
    results = prune(settings, now=NOW, stores=("usage", "rollups"))
    assert [(r.store, r.days, r.removed) for r in results] == [("usage", None, 0), ("rollups", None, 0)]
    assert _counts(ledger)["usage_requests"] == 2 * DAYS
    assert "kept forever" in results[0].line(dry_run=False)


def test_rollups_shorter_than_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="RETENTION_ROLLUPS_DAYS"):
        make_settings(retention_usage_days=90, retention_rollups_days=30)
    with pytest.raises(ValueError, match="RETENTION_ROLLUPS_DAYS"):
        make_settings(retention_usage_days=0, retention_rollups_days=30)


def test_describe_cache_entries_past_retention_or_expiry_go(tmp_path: Path) -> None:
    from chains.describe.cache import SQLiteCache

    path, now, ttl = tmp_path / "cache.db", 1_000_000_000.0, 7 * 86400
    for name, written, entry_ttl in (("fresh", now - 3600, ttl), ("expired", now - 8 * 86400, ttl),
                                     ("old-long-ttl", now - 40 * 86400, 365 * 86400),
                                     ("young-long-ttl", now - 86400, 365 * 86400)):
        SQLiteCache(path, ttl_s=entry_ttl, clock=lambda w=written: w).put(name, "{}")
    assert prune_describe_cache(path, now=now, keep_s=30 * 86400, ttl_s=ttl, dry_run=True) == 3
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM describe_cache").fetchone()[0] == 4  # dry run: untouched
    assert prune_describe_cache(path, now=now, keep_s=30 * 86400, ttl_s=ttl) == 3
    with sqlite3.connect(path) as conn:
        assert [k for (k,) in conn.execute("SELECT key FROM describe_cache")] == ["fresh"]
    assert prune_describe_cache(tmp_path / "none.db", now=now, keep_s=1, ttl_s=ttl) == 0
    assert not (tmp_path / "none.db").exists()  # a missing cache is not created


def test_describe_cache_in_redis_keeps_only_young_keys(redis_server: Any, tmp_path: Path) -> None:
    import redis

    from chains.describe.cache import RedisCache

    client = redis.Redis.from_url(redis_server.url)
    prefix = RedisCache(redis_server.url, ttl_s=60).prefix
    client.set(prefix + "young", "{}", ex=365 * 86400 - 3600)  # written an hour ago under a year's TTL
    client.set(prefix + "old", "{}", ex=365 * 86400 - 40 * 86400)  # written 40 days ago
    client.set(prefix + "forever", "{}")  # no TTL at all
    client.set("someone-else", "{}")
    settings = make_settings(redis_url=redis_server.url, describe_cache_ttl_s=365 * 86400)
    dry = prune(settings, now=NOW, dry_run=True, stores=("describe_cache",))[0]
    assert dry.removed == 2 and client.exists(prefix + "old")
    assert prune(settings, now=NOW, stores=("describe_cache",))[0].removed == 2
    keys: list[bytes] = client.keys("*")  # type: ignore[assignment]
    assert sorted(k.decode() for k in keys) == sorted([prefix + "young", "someone-else"])
    client.delete(prefix + "young", "someone-else")


def test_eval_reports_by_age(tmp_path: Path) -> None:
    folder = tmp_path / "evals"
    folder.mkdir()
    now = NOW.replace(tzinfo=dt.UTC).timestamp()
    for name, age_days in (("chat-a.html", 100), ("chat-a.json", 100), ("chat-b.html", 10), ("notes.txt", 500)):
        (folder / name).write_text("x")
        os.utime(folder / name, (now - age_days * 86400,) * 2)
    assert prune_eval_reports(folder, now - 90 * 86400, dry_run=True) == 2 and len(list(folder.iterdir())) == 4
    settings = make_settings(prompt_eval_report_dir=folder)
    assert prune(settings, now=NOW, stores=("eval_reports",))[0].removed == 2
    assert sorted(p.name for p in folder.iterdir()) == ["chat-b.html", "notes.txt"]


def test_cli_reports_each_store_and_dry_run_changes_nothing(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(sqlite_url).create()
    ledger.record(*_rows())
    monkeypatch.setenv("USAGE_DB_FILE", sqlite_url.removeprefix("sqlite:///"))
    monkeypatch.setenv("RETENTION_USAGE_DAYS", "90")
    monkeypatch.setenv("PROMPT_EVAL_REPORT_DIR", str(tmp_path / "evals"))
    monkeypatch.setenv("DESCRIBE_CACHE_PATH", str(tmp_path / "cache.db"))
    clock = NOW.replace(tzinfo=dt.UTC).timestamp
    assert main(["--dry-run"], clock=clock) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and f"usage           keep 90d (before 2026-04-01 12:00 UTC): would remove {2 * 110}" in out
    for store in ("rollups", "audit", "describe_cache", "eval_reports"):
        assert store in out
    assert _counts(ledger)["usage_requests"] == 2 * DAYS
    assert main(["--store", "usage"], clock=clock) == 0
    assert f"removed {2 * 110}" in capsys.readouterr().out and _counts(ledger)["usage_requests"] == 180


def test_a_dry_run_on_nothing_creates_nothing(tmp_path: Path) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'none' / 'usage.db'}", tmp_path)
    results = prune(settings, now=NOW, dry_run=True)
    assert [r.removed for r in results] == [0] * 5 and not any(r.error for r in results)
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_arguments_and_settings_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DESCRIBE_CACHE_PATH", str(tmp_path / "cache.db"))  # were it to run: nothing real
    monkeypatch.setenv("PROMPT_EVAL_REPORT_DIR", str(tmp_path / "evals"))
    assert main(["--store", "nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    monkeypatch.setenv("RETENTION_AUDIT_DAYS", "-1")
    assert main([]) == 2
    assert "RETENTION_AUDIT_DAYS" in capsys.readouterr().out
    monkeypatch.setenv("RETENTION_AUDIT_DAYS", "365")
    monkeypatch.setenv("RETENTION_ROLLUPS_DAYS", "7")
    assert main(["--dry-run"]) == 2
    assert "at least RETENTION_USAGE_DAYS" in capsys.readouterr().out


def test_a_failing_store_is_named_and_the_others_still_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text('{"event":"request","time":"2020-01-01T00:00:00Z","prev":"x","hash":"y"}\n')  # broken chain
    (tmp_path / "evals").mkdir()
    old = tmp_path / "evals" / "old.json"
    old.write_text("{}")
    os.utime(old, (0, 0))
    monkeypatch.setenv("AUDIT_FILE", str(audit))
    monkeypatch.setenv("PROMPT_EVAL_REPORT_DIR", str(tmp_path / "evals"))
    assert main(["--store", "audit", "--store", "eval_reports"]) == 1
    out = capsys.readouterr().out
    assert "audit" in out and "FAILED: RetentionError: audit line 1: the chain is broken there" in out
    assert "eval_reports" in out and "removed 1" in out and not old.exists()
    assert audit.read_text().count("\n") == 1  # the broken record is kept: it is evidence


def test_job_runs_on_its_interval_and_never_raises() -> None:
    calls: list[int] = []
    ran = threading.Event()

    def run() -> list[Pruned]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk gone")
        if len(calls) == 2:
            return [Pruned("audit", 365, error="RetentionError: broken")]
        ran.set()
        return [Pruned("audit", 365, removed=3)]

    job = RetentionJob(run, interval_s=0.01, first_delay_s=0.0, clock=lambda: NOW)
    assert job.run_once() == [] and job.status() == {"last_run": NOW.isoformat(), "error": "OSError: disk gone"}
    assert job.run_once()[0].error and "audit: RetentionError: broken" in str(job.status())
    others = {t for t in threading.enumerate() if t.name == "retention"}  # other tests' apps may have one
    job.start()
    assert ran.wait(10)  # the thread ran it again, on its own, despite the failures before
    job.stop()
    assert job.status() is None and {t for t in threading.enumerate() if t.name == "retention"} <= others
    runs = job.runs
    job.stop()  # idempotent
    assert job.runs == runs


def test_job_from_settings() -> None:
    assert build_retention_job(make_settings(retention_interval_s=0)) is None
    job = build_retention_job(make_settings(retention_interval_s=3600))
    assert job is not None and job.interval_s == 3600 and job.first_delay_s == 300


def test_readyz_shows_a_failed_prune_and_stays_ready(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    settings = make_settings(audit_file=audit, retention_interval_s=86_400, describe_cache_path=tmp_path / "cache.db",
                             prompt_eval_report_dir=tmp_path / "evals")
    app = create_app(settings)
    with TestClient(app) as client:
        job = app.state.services.retention
        assert job is not None and job.interval_s == 86_400  # started with the app, first run in 5 minutes
        assert "retention" not in client.get("/readyz").json()["degraded"]
        audit.write_text(json.dumps({"event": "request", "time": "2020-01-01T00:00:00Z", "prev": "0", "hash": "1"})
                         + "\n")
        job.run_once()
        body = client.get("/readyz").json()
        assert "audit: RetentionError" in body["degraded"]["retention"]["error"]
        assert "retention" not in body["problems"] and "retention" not in body["parts"]  # never makes it unready
