"""Hard daily budgets against a fake ledger: per key and global, 402 for paid routes while keyless routes
and search keep working, one alert per period, cached spend, a failing ledger does not fail requests."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from errors import BudgetExceeded
from gateway.budgets import Budgets, day_start
from gateway.keys import build_key_store
from server import create_app
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import FakeOpenAI

ASK = {"input": {"messages": [{"role": "user", "content": "Roof inspection in Troy?"}]}}


class FakeLedger:
    """The one method budgets use of `gateway.ledger.Ledger`; counts reads."""

    def __init__(self, spend: dict[str | None, float] | None = None, fail: bool = False) -> None:
        self.spend = spend or {}
        self.fail = fail
        self.reads: list[tuple[dt.datetime, str | None]] = []

    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        self.reads.append((since, key_name))
        if self.fail:
            raise ConnectionError("database down")
        return self.spend.get(key_name, 0.0)


async def test_key_budget_and_one_alert_per_day() -> None:
    alerts: list[tuple[str, str]] = []
    b = Budgets(ledger=FakeLedger({"web-app": 5.0, None: 5.0}), daily_budget_usd=None, cache_s=0,
                alert=lambda kind, msg: alerts.append((kind, msg)))
    await b.check(key_name="web-app", key_budget_usd=10.0)
    for _ in range(3):
        with pytest.raises(BudgetExceeded) as err:
            await b.check(key_name="web-app", key_budget_usd=5.0)
    assert err.value.status == 402 and err.value.code == "budget_exceeded" and err.value.retry_after
    assert "API key's daily budget ($5.00)" in err.value.message
    assert [k for k, _ in alerts] == ["budget_exhausted"]


async def test_global_budget_and_period_is_the_utc_day() -> None:
    ledger = FakeLedger({None: 50.0})
    b = Budgets(ledger=ledger, daily_budget_usd=40.0, cache_s=0)
    with pytest.raises(BudgetExceeded, match="service's daily budget"):
        await b.check(key_name="any", key_budget_usd=None)
    assert ledger.reads[-1][0] == day_start() and ledger.reads[-1][0].hour == 0


async def test_spend_is_cached() -> None:
    ledger = FakeLedger({None: 1.0})
    b = Budgets(ledger=ledger, daily_budget_usd=40.0, cache_s=60)
    for _ in range(5):
        await b.check(key_name="k", key_budget_usd=None)
    assert len(ledger.reads) == 1


async def test_a_failing_ledger_does_not_refuse() -> None:
    b = Budgets(ledger=FakeLedger(fail=True), daily_budget_usd=1.0, cache_s=0)
    await b.check(key_name="k", key_budget_usd=1.0)


def test_over_budget_chat_is_402_before_any_model_call(fake_openai: FakeOpenAI) -> None:
    s = make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url)
    store = build_key_store(settings=s)
    store.create_table()
    key = store.create(name="capped", scopes=["chat"], daily_budget_usd=0.0)
    app = create_app(s)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.post("/chat/invoke", json=ASK)
        assert r.status_code == 402 and r.json()["error"]["code"] == "budget_exceeded"
        assert "Retry-After" in r.headers and fake_openai.count() == 0
        with c.stream("POST", "/chat/stream", json=ASK) as streamed:
            assert streamed.status_code == 402


def test_budget_only_applies_to_paid_routes(fake_openai: FakeOpenAI) -> None:
    # Without an OpenAI key every call is the local model (cost 0): no budget check at all.
    s = make_settings(local_model_enabled=True, local_model_url=fake_openai.url, gateway_daily_budget_usd=0.0)
    with TestClient(create_app(s)) as c:
        assert c.post("/chat/invoke", json=ASK).status_code == 200
    gw = create_app(s).state.services.gateway
    assert "chat" in gw.model_routes and "search" not in gw.model_routes and "guard" not in gw.model_routes
