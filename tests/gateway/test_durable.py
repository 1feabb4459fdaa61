"""The durable ledger (gateway/durable.py) and its spool (gateway/spool.py) on a real SQLite ledger that can
be taken down: rows kept while it is down and written once, in order, when it is back; memory -> disk after
the wait or past the bound; the spool replayed by the next run; exactly once when a commit's answer is lost
or a file is replayed twice (rows and rollups); rows the database refuses set aside, never blocking the
rest; unreadable spool lines kept for an operator; nothing dropped unless the disk fails too (counted);
budgets see the spend still waiting; /readyz and /metrics show the backlog.
The outage of a real PostgreSQL under load is tests/gateway/test_ledger_outage.py."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway import spool
from gateway.durable import DurableLedger
from gateway.ledger import Ledger, UsageRow, hourly_table, usage_table
from server import create_app
from tests.conftest import make_settings
from tests.gateway.usage_support import rows

T0 = dt.datetime(2026, 11, 2, 10, 15)


class FlakyLedger(Ledger):
    """A real SQLite ledger that can be 'down' (every call fails as a lost connection does), can lose the
    answer of a commit that succeeded, and can refuse one row's contents."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.lose_answer = 0  # commits whose answer is lost (stored, then an error)
        self.poison: set[str] = set()  # record ids the database refuses
        self.calls = 0

    def _fail(self) -> None:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    def create(self) -> Ledger:
        if self.down:
            self._fail()
        return super().create()

    def record(self, *rows: UsageRow) -> int:
        self.calls += 1
        if self.down:
            self._fail()
        if any(r.record_id in self.poison for r in rows):
            raise IntegrityError("INSERT", {}, ValueError("violates a constraint"))
        n = super().record(*rows)
        if self.lose_answer:
            self.lose_answer -= 1
            self._fail()
        return n


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def row(i: int, cost: float = 0.001, key: str | None = "app") -> UsageRow:
    return UsageRow(request_id=f"req-{i:05d}", ts=T0 + dt.timedelta(seconds=i), route="chat", status=200,
                    latency_ms=100.0 + i, key_name=key, model="gpt-4o-mini", cost_usd=cost, input_tokens=10)


def stored(ledger: Ledger) -> list[str]:
    with ledger.engine.connect() as conn:
        return [r for (r,) in conn.execute(select(usage_table.c.request_id).order_by(usage_table.c.id))]


def rollup_requests(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.sum(hourly_table.c.requests))).scalar() or 0)


@pytest.fixture
def ledger(tmp_path: Path) -> FlakyLedger:
    led = FlakyLedger(f"sqlite:///{tmp_path / 'usage.db'}")
    led.create()
    return led


@pytest.fixture
def clock() -> Clock:
    return Clock()


def durable(ledger: Ledger, tmp_path: Path, clock: Clock, **kw: Any) -> tuple[DurableLedger, dict[str, int]]:
    counts: dict[str, int] = {}

    def count(what: str, n: int) -> None:
        counts[what] = counts.get(what, 0) + n

    d = DurableLedger(ledger, spool_dir=tmp_path / "spool", retry_s=1.0, spool_after_s=5.0, count=count, clock=clock,
                      **kw)
    d.start()
    return d, counts


def test_rows_wait_while_the_database_is_down_and_land_once_in_order(ledger: FlakyLedger, tmp_path: Path,
                                                                      clock: Clock) -> None:
    d, counts = durable(ledger, tmp_path, clock)
    d.write([row(0)])
    ledger.down = True
    d.write([row(1), row(2)])
    d.write([row(3)])
    assert ledger.calls == 2  # one failed try; the next batch waits behind it without a try of its own
    status = d.status()
    assert status is not None and status["backlog_rows"] == 3 and status["error"] == "OperationalError"
    clock.t += 1.5
    d.retry()  # due, still down: tried again, kept
    assert d.pending == 3 and counts["failures"] == 2
    ledger.down = False
    d.retry()  # not due yet
    assert d.pending == 3
    clock.t += 1.5
    d.retry()
    assert stored(ledger) == [f"req-{i:05d}" for i in range(4)] and rollup_requests(ledger) == 4
    assert d.pending == 0 and d.status() is None and "dropped" not in counts


def test_a_commit_whose_answer_was_lost_is_not_counted_twice(ledger: FlakyLedger, tmp_path: Path,
                                                             clock: Clock) -> None:
    d, _ = durable(ledger, tmp_path, clock)
    ledger.lose_answer = 1  # stored, but the writer sees a lost connection
    d.write([row(i) for i in range(5)])
    assert d.pending == 5
    clock.t += 2
    d.retry()
    assert stored(ledger) == [f"req-{i:05d}" for i in range(5)] and rollup_requests(ledger) == 5


def test_rows_go_to_disk_after_the_wait_and_past_the_bound(ledger: FlakyLedger, tmp_path: Path, clock: Clock) -> None:
    d, _ = durable(ledger, tmp_path, clock, max_rows=10)
    ledger.down = True
    d.write([row(i) for i in range(3)])
    assert spool.list_files(tmp_path / "spool") == []
    clock.t += 5
    d.retry()  # waited 5 s: to disk
    files = spool.list_files(tmp_path / "spool")
    assert len(files) == 1 and d.spooled == 3 and d.pending == 3
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert [x["request_id"] for x in lines] == ["req-00000", "req-00001", "req-00002"]
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    d.write([row(i) for i in range(3, 15)])  # past the bound of 10 in memory: to disk at once
    assert len(spool.list_files(tmp_path / "spool")) == 2 and d.spooled == 15
    ledger.down = False
    clock.t += 2
    d.retry()
    assert stored(ledger) == [f"req-{i:05d}" for i in range(15)] and rollup_requests(ledger) == 15
    assert spool.list_files(tmp_path / "spool") == [] and d.pending == 0


def test_shutdown_spools_and_the_next_run_replays_once(ledger: FlakyLedger, tmp_path: Path, clock: Clock) -> None:
    d, _ = durable(ledger, tmp_path, clock)
    ledger.down = True
    d.write([row(i) for i in range(7)])
    done = d.drain()
    assert (done.written, done.spooled, done.dropped) == (0, 7, 0)
    d.write([row(7)])  # a request that finished after the drain: straight to disk too
    assert d.spooled == 8 and d.pending == 8
    files = spool.list_files(tmp_path / "spool")
    shutil.copy(files[0], files[0].with_name("usage-copy" + spool.SUFFIX))  # replayed twice: still once

    ledger.down = False
    nxt, _ = durable(ledger, tmp_path, clock)  # the next run
    assert nxt.pending == 15  # the copy counts until it is replayed
    nxt.retry()
    assert stored(ledger) == [f"req-{i:05d}" for i in range(8)] and rollup_requests(ledger) == 8
    assert spool.list_files(tmp_path / "spool") == [] and nxt.pending == 0


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_written(ledger: FlakyLedger, tmp_path: Path,
                                                                       clock: Clock) -> None:
    d, counts = durable(ledger, tmp_path, clock)
    rows = [row(i) for i in range(9)]
    ledger.poison = {rows[4].record_id}
    d.write(rows)
    assert stored(ledger) == [r.request_id for r in rows if r is not rows[4]] and d.pending == 0
    rejected = list((tmp_path / "spool" / "rejected").iterdir())
    assert len(rejected) == 1 and "req-00004" in rejected[0].read_text()
    assert counts["rejected"] == 1 and "dropped" not in counts and d.status() is None


def test_unreadable_spool_lines_are_kept_for_an_operator(ledger: FlakyLedger, tmp_path: Path, clock: Clock) -> None:
    path = spool.write_rows(tmp_path / "spool", [row(1), row(2)])
    path.write_text(path.read_text() + "{not a row\n")
    d, counts = durable(ledger, tmp_path, clock)
    d.retry()
    assert stored(ledger) == ["req-00001", "req-00002"]
    assert (tmp_path / "spool" / "rejected" / path.name).exists() and counts["rejected"] == 1


def test_rows_are_dropped_only_when_the_disk_fails_too_and_counted(ledger: FlakyLedger, tmp_path: Path,
                                                                   clock: Clock) -> None:
    (tmp_path / "spool").write_text("a file where the spool folder should be")  # the disk refuses
    d, counts = durable(ledger, tmp_path, clock, max_rows=5)
    ledger.down = True
    d.write([row(i) for i in range(4)])
    clock.t += 6
    d.retry()  # to disk fails: the rows stay in memory (under the bound)
    assert d.pending == 4 and "dropped" not in counts
    d.write([row(i) for i in range(4, 8)])  # 8 > 5: the 3 oldest go
    assert counts["dropped"] == 3 and d.dropped == 3 and d.pending == 5
    status = d.status()
    assert status is not None and status["dropped_rows"] == 3


def test_budgets_see_the_spend_still_waiting(ledger: FlakyLedger, tmp_path: Path, clock: Clock) -> None:
    d, _ = durable(ledger, tmp_path, clock, max_rows=3)
    d.write([row(0, cost=1.0)])
    ledger.down = True
    d.write([row(1, cost=2.0), row(2, cost=4.0, key="other")])  # in memory
    d.write([row(3, cost=8.0), row(4, cost=16.0)])  # past the bound: all five waiting ones to disk
    d.write([row(5, cost=32.0)])  # in memory
    ledger.down = False  # readable again, not written yet (the retry is not due)
    since = T0.replace(minute=0)
    assert d.spend_since(since) == pytest.approx(63.0)
    assert d.spend_since(since, key_name="app") == pytest.approx(59.0)
    assert d.spend_since(T0 + dt.timedelta(hours=2)) == 0
    clock.t += 2
    d.retry()
    assert d.pending == 0 and d.spend_since(since) == pytest.approx(63.0)  # the same once written


def test_through_the_app_readyz_and_metrics_show_the_backlog_and_it_recovers_without_a_restart(
        tmp_path: Path) -> None:
    blocked = tmp_path / "usage.db"
    blocked.mkdir()  # a folder where the SQLite file should be: the ledger cannot open it
    s = make_settings(usage_db_file=blocked, usage_spool_dir=tmp_path / "spool", usage_retry_s=0.1)
    app = create_app(s)
    with TestClient(app) as c:
        for _ in range(3):
            assert c.post("/guard/invoke", json={"input": {"text": "hello"}}).status_code == 200
        app.state.services.observability.flush()
        ready = c.get("/readyz").json()
        ledger = ready["degraded"]["usage_ledger"]
        # degraded, not unready: not among the parts that make `ready` (here false anyway: no model configured)
        assert "usage_ledger" not in ready["parts"] and "usage_ledger" not in ready["problems"]
        assert ledger["backlog_rows"] == 3 and ledger["error"] == "OperationalError" and ledger["since"]
        metrics = c.get("/metrics").text
        assert "skymarket_usage_backlog_rows 3.0" in metrics and "skymarket_usage_rows_dropped_total 0.0" in metrics
        usage = c.get("/usage")  # its reader: a retryable 503, not a 500
        assert usage.status_code == 503 and usage.json()["error"]["code"] == "database_unavailable"

        blocked.rmdir()  # the database is back
        deadline = time.monotonic() + 30
        while c.get("/readyz").json()["degraded"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/readyz").json()["degraded"] == {}
        assert len(stored(app.state.services.observability.ledger)) == 3
        assert "skymarket_usage_backlog_rows 0.0" in c.get("/metrics").text


def test_shutdown_with_the_database_down_spools_for_the_next_start(tmp_path: Path) -> None:
    blocked = tmp_path / "usage.db"
    blocked.mkdir()
    s = make_settings(usage_db_file=blocked, usage_spool_dir=tmp_path / "spool")
    with TestClient(create_app(s)) as c:
        assert c.post("/guard/invoke", json={"input": {"text": "hello"}}).status_code == 200
    spooled = spool.list_files(tmp_path / "spool")
    assert len(spooled) == 1 and '"route":"guard"' in spooled[0].read_text()
    blocked.rmdir()
    app = create_app(s)  # the next start replays it
    with TestClient(app) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").json()["degraded"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r["route"] for r in rows(app)] == ["guard"]
    assert spool.list_files(tmp_path / "spool") == []
