"""Alerts: daily spend over AI_COST_ALERT_THRESHOLD and jumps in the error or fallback rate raise one
structured record per period, POSTed to a real local HTTP receiver; a dead webhook never raises."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chains.local_llm import free_port
from gateway.alerts import Alerts
from gateway.ledger import Ledger, UsageRow
from gateway.metrics import Metrics

NOW = dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC)


class Receiver:
    """A webhook endpoint on a loopback port that keeps every JSON body it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                owner.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/alerts"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(f"sqlite:///{tmp_path / 'usage.db'}").create()
    yield led
    led.close()


def row(i: int, at: dt.datetime, *, cost: float = 0.0, error: bool = False, fallback: bool = False) -> UsageRow:
    return UsageRow(request_id=f"a-{i:06d}", ts=at, route="chat", status=503 if error else 200, latency_ms=100,
                    model=None if error else "gpt-4o-mini", error=error, fallback=fallback, cost_usd=cost)


def test_daily_spend_alerts_once_per_day(ledger: Ledger, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="skymarket.alerts")
    m = Metrics()
    alerts = Alerts(ledger, threshold_usd=5.0, webhook_url=receiver.url, metrics=m)
    ledger.record(row(0, NOW - dt.timedelta(days=1), cost=50.0))  # yesterday's spend does not count
    ledger.record(*[row(i, NOW - dt.timedelta(hours=i), cost=1.0) for i in range(1, 5)])
    assert alerts.check(NOW) == []  # $4 today
    ledger.record(row(9, NOW - dt.timedelta(minutes=5), cost=1.5))
    [alert] = alerts.check(NOW)
    assert alert.kind == "daily_spend" and alert.period == "2026-11-27" and alert.value == pytest.approx(5.5)
    assert alerts.check(NOW) == [] and alerts.check(NOW + dt.timedelta(hours=3)) == []  # once per period
    assert receiver.bodies == [alert.as_dict()] and receiver.bodies[0]["alert"] == "daily_spend"
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "skymarket.alerts"]
    assert logged == [alert.as_dict()]
    assert b'skymarket_alerts_total{kind="daily_spend"} 1.0' in m.render()[0]
    ledger.record(row(10, NOW + dt.timedelta(days=1), cost=6.0))
    assert [a.period for a in alerts.check(NOW + dt.timedelta(days=1, minutes=1))] == ["2026-11-28"]


def test_error_and_fallback_rate_jumps(ledger: Ledger, receiver: Receiver) -> None:
    alerts = Alerts(ledger, threshold_usd=0, webhook_url=receiver.url, error_jump=0.2, fallback_jump=0.3,
                    min_requests=20)
    # Baseline: 200 requests over the previous 23 hours with 2% errors and 5% fallbacks.
    base = NOW - dt.timedelta(hours=2)
    ledger.record(*[row(i, base - dt.timedelta(minutes=5 * i), error=i % 50 == 0, fallback=i % 20 == 1)
                    for i in range(200)])
    # The last hour: 30 requests, 10 errors (33%) and 3 fallbacks (10%).
    ledger.record(*[row(1000 + i, NOW - dt.timedelta(minutes=i + 1), error=i < 10, fallback=10 <= i < 13)
                    for i in range(30)])
    raised = alerts.check(NOW)
    assert [a.kind for a in raised] == ["error_rate"] and raised[0].period == "2026-11-27T15"
    assert raised[0].value == pytest.approx(10 / 30, abs=1e-6)
    assert alerts.check(NOW) == []
    # More fallbacks in the same hour: the fallback rate alert fires; the error alert does not repeat.
    ledger.record(*[row(2000 + i, NOW - dt.timedelta(seconds=30 + i), fallback=True) for i in range(20)])
    assert [a.kind for a in alerts.check(NOW)] == ["fallback_rate"]
    assert [b["alert"] for b in receiver.bodies] == ["error_rate", "fallback_rate"]


def test_few_requests_raise_no_rate_alert(ledger: Ledger) -> None:
    alerts = Alerts(ledger, threshold_usd=0, min_requests=20)
    ledger.record(*[row(i, NOW - dt.timedelta(minutes=i + 1), error=True) for i in range(5)])
    assert alerts.check(NOW) == []


def test_dead_webhook_is_logged_not_raised(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/token-abc123"
    alerts = Alerts(ledger, threshold_usd=1.0, webhook_url=url)
    ledger.record(row(1, NOW - dt.timedelta(minutes=1), cost=2.0))
    assert [a.kind for a in alerts.check(NOW)] == ["daily_spend"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "webhook failed" in messages and "token-abc123" not in messages


def test_maybe_check_is_throttled(ledger: Ledger) -> None:
    alerts = Alerts(ledger, threshold_usd=1.0, interval_s=3600, clock=lambda: NOW)
    ledger.record(row(1, NOW - dt.timedelta(minutes=1), cost=0.5))
    assert alerts.maybe_check() == []
    ledger.record(row(2, NOW - dt.timedelta(minutes=1), cost=5.0))
    assert alerts.maybe_check() == []  # within the interval: not checked again
    alerts._next = 0
    assert [a.kind for a in alerts.maybe_check()] == ["daily_spend"]


def test_replicas_share_the_period(tmp_path: Path) -> None:
    """Two Alerts on one ledger database (two replicas): the alert is raised by one of them only."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = Ledger(url).create(), Ledger(url).create()
    a.record(row(1, NOW - dt.timedelta(minutes=1), cost=10.0))
    raised = Alerts(a, threshold_usd=1.0).check(NOW) + Alerts(b, threshold_usd=1.0).check(NOW)
    assert len(raised) == 1
    a.close()
    b.close()


def test_requests_through_the_app_trigger_the_alert(
    openai_settings: Any, fake_openai: Any, receiver: Receiver
) -> None:
    from fastapi.testclient import TestClient

    from server import create_app
    from tests.fake_openai import Reply
    from tests.gateway.usage_support import PRIMARY, ask

    s = openai_settings.model_copy(update={"ai_cost_alert_threshold": 0.10, "alert_webhook_url": receiver.url,
                                           "alert_check_interval_s": 0})
    fake_openai.script(PRIMARY, Reply("cheap", prompt_tokens=1000, completion_tokens=10),
                       Reply("dear", prompt_tokens=1_000_000, completion_tokens=10))
    with TestClient(create_app(s)) as c:
        c.post("/chat/invoke", json={"input": ask()})
        assert receiver.bodies == []
        c.post("/chat/invoke", json={"input": ask()})  # $0.15: over the $0.10 threshold
        c.post("/chat/invoke", json={"input": ask()})
    assert [b["alert"] for b in receiver.bodies] == ["daily_spend"]
