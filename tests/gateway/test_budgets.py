"""Hard daily budgets against a fake ledger: per key and global, 402 for paid routes while keyless routes
and search keep working, one alert per period, cached spend, a failing ledger does not fail requests; a
stale figure is used while the ledger is re-read in the background; this process's spend counts at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest
from fastapi.testclient import TestClient

from errors import BudgetExceeded
from gateway.budgets import Budgets, day_start
from gateway.keys import build_key_store
from server import create_app
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import FakeOpenAI

ASK = {"input": {"messages": [{"role": "user", "content": "How do I hire a drone pilot through SkyMarket?"}]}}


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


class SlowLedger(FakeLedger):
    """Reads wait until `gate` is set."""

    def __init__(self, spend: dict[str | None, float]) -> None:
        super().__init__(spend)
        self.gate = threading.Event()
        self.gate.set()

    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        assert self.gate.wait(10)
        return super().spend_since(since, key_name=key_name)


async def test_a_stale_figure_is_used_while_the_ledger_is_reread() -> None:
    ledger = SlowLedger({None: 1.0})
    b = Budgets(ledger=ledger, daily_budget_usd=5.0, cache_s=0.05)
    await b.check(key_name="k", key_budget_usd=None)  # the first figure is waited for
    ledger.spend[None] = 10.0
    ledger.gate.clear()  # the database is slow now
    await asyncio.sleep(0.06)
    t0 = time.monotonic()
    await b.check(key_name="k", key_budget_usd=None)  # stale 1.0: served, the read runs in the background
    assert time.monotonic() - t0 < 0.5
    ledger.gate.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            await b.check(key_name="k", key_budget_usd=None)
        except BudgetExceeded:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the background read never replaced the stale figure")
    assert len(ledger.reads) >= 2


async def test_this_process_spend_counts_before_the_next_read() -> None:
    ledger = FakeLedger({"k": 4.0, None: 4.0})
    b = Budgets(ledger=ledger, daily_budget_usd=100.0, cache_s=60)
    await b.check(key_name="k", key_budget_usd=5.0)
    b.add_spend("k", 1.5)
    with pytest.raises(BudgetExceeded, match="API key's daily budget"):
        await b.check(key_name="k", key_budget_usd=5.0)
    assert await b.spend_today(None) == 5.5 and len(ledger.reads) == 2  # key and service, read once each


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


def test_over_budget_the_local_model_answers_and_no_paid_model_is_called(fake_openai: FakeOpenAI) -> None:
    from tests.fake_openai import Reply

    s = make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url,
                      local_model_enabled=True, local_model_url=fake_openai.url, ai_max_retries=0)
    fake_openai.always(s.local_model_name, Reply("Local answer: tell me the job and the town."))
    store = build_key_store(settings=s)
    store.create_table()
    capped = store.create(name="capped", scopes=["chat"], daily_budget_usd=0.0)
    free = store.create(name="free", scopes=["chat"])
    roof = {"input": {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]}}
    with TestClient(create_app(s)) as c:
        # listings to cite: the embedded model answers (its unbacked text gives way to the listings' answer)
        r = c.post("/chat/invoke", json=roof, headers={"Authorization": f"Bearer {capped}"})
        assert r.status_code == 200 and "Listing lst-" in r.json()["output"]
        assert fake_openai.count(s.local_model_name) == 1
        with c.stream("POST", "/chat/stream", json=roof, headers={"Authorization": f"Bearer {capped}"}) as st:
            assert st.status_code == 200 and "Listing lst-" in st.read().decode()  # streamed
        assert fake_openai.count(s.local_model_name) == 2
        # nothing to cite: the embedded model is not for it either; the assistant's own help text answers
        r = c.post("/chat/invoke", json=ASK, headers={"Authorization": f"Bearer {capped}"})
        assert r.status_code == 200 and "Detroit Metro" in r.json()["output"]
        assert fake_openai.count(s.local_model_name) == 2
        assert fake_openai.count(s.ai_model_primary) == 0 and fake_openai.count(s.ai_model_fallback) == 0
        # the key under its budget still gets the paid model (the flag is per request)
        fake_openai.always(s.ai_model_primary, Reply("Paid answer."))
        r = c.post("/chat/invoke", json=ASK, headers={"Authorization": f"Bearer {free}"})
        assert r.status_code == 200 and r.json()["output"] == "Paid answer."
