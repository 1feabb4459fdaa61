"""A real PostgreSQL ledger stopped and started again in the middle of load (200 /chat/invoke requests, 4 at
a time, through uvicorn, against the fake OpenAI server): every request answered 200 is in the ledger exactly
once (rows and rollups), none is lost, /readyz reported the degradation with its backlog while it lasted and
cleared it after, without a restart, and the dropped-rows counter stayed 0. Both a clean stop (`fast`: every
session cut) and a crash (`immediate`)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from gateway.ledger import hourly_table, usage_table
from server import create_app
from tests.conftest import FAKE_KEY, LiveServer, make_settings
from tests.fake_openai import FakeOpenAI

ASK = {"input": {"messages": [{"role": "user", "content": "Which drone services can I book in Troy?"}]}}
N, CLIENTS = 200, 4


@pytest.fixture
def pg() -> Iterator[Any]:
    """A PostgreSQL cluster of its own: this test stops it, which must not disturb the session's."""
    from tests.services import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


class Load:
    """N requests, CLIENTS at a time, each with its own X-Request-ID; counts answers as they come."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered: dict[str, int] = {}
        self.lock = threading.Lock()

    def one(self, i: int) -> None:
        rid = f"outage-{i:04d}-{time.time_ns()}"
        try:
            r = httpx.post(self.url + "/chat/invoke", json=ASK, headers={"X-Request-ID": rid}, timeout=60)
            status = r.status_code
        except httpx.HTTPError:
            status = 0
        with self.lock:
            self.answered[rid] = status

    @property
    def done(self) -> int:
        with self.lock:
            return len(self.answered)

    def wait_for(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.done < n:
            assert time.monotonic() < deadline, f"only {self.done} answers"
            time.sleep(0.01)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_every_answered_request_is_in_the_ledger_once_across_a_database_outage(
        pg: Any, fake_openai: FakeOpenAI, mode: str) -> None:
    settings = make_settings(
        database_url=pg.url, openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, ai_max_retries=0,
        usage_retry_s=0.2, usage_spool_after_s=1.0, ai_rate_limit_rpm=100_000, ai_rate_limit_tpm=10**9,
        gateway_global_rpm=100_000, gateway_global_tpm=10**9,
    )
    degraded: list[dict[str, Any]] = []
    with LiveServer(create_app(settings)) as live:
        load = Load(live.url)
        with cf.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            futures = [pool.submit(load.one, i) for i in range(N)]
            load.wait_for(40)
            pg.halt(mode=mode)  # mid-load, with batches waiting to be written
            halted_at = load.done
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # /readyz says so while it lasts
                ledger = httpx.get(live.url + "/readyz", timeout=10).json()["degraded"].get("usage_ledger")
                if ledger is not None and ledger["backlog_rows"] > 0:
                    degraded.append(ledger)
                if degraded and load.done >= halted_at + 60 and ledger is not None and ledger["spooled_rows"]:
                    break
                time.sleep(0.05)
            pg.resume()
            for f in futures:
                f.result()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # recovered without a restart: the backlog is written
            if not httpx.get(live.url + "/readyz", timeout=10).json()["degraded"]:
                break
            time.sleep(0.1)
        ready = httpx.get(live.url + "/readyz", timeout=10).json()
        metrics = httpx.get(live.url + "/metrics", timeout=10).text

    assert degraded, "/readyz never showed the ledger degraded during the outage"
    assert max(d["backlog_rows"] for d in degraded) > 0 and all(d["error"] for d in degraded)
    assert any(d["spooled_rows"] for d in degraded)  # the outage lasted past USAGE_SPOOL_AFTER_S: disk too
    assert ready["degraded"] == {}
    assert "skymarket_usage_rows_dropped_total 0.0" in metrics

    ok = {rid for rid, status in load.answered.items() if status == 200}
    assert len(load.answered) == N and len(ok) == N  # the outage cost no request its answer
    engine = create_engine(pg.url)
    with engine.connect() as conn:
        stored = [rid for (rid,) in conn.execute(select(usage_table.c.request_id))]
        rolled_up = conn.execute(select(func.sum(hourly_table.c.requests))).scalar()
    engine.dispose()
    assert len(stored) == len(set(stored)) == N and set(stored) == ok  # each once, none lost
    assert rolled_up == N  # the rollups counted each once too
