"""The usage callback through the real app and the fake OpenAI server: tokens and cost of invoke, batch and
stream match the price table to the cent; a fallback bills the model that answered; streams record time to
first token; unknown models are unpriced with a warning; the local model is free; X-Request-ID."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway import context
from gateway.context import RequestContext
from gateway.pricing import load_prices
from gateway.usage import UsageCallback, instrument
from server import create_app
from settings import ROOT, Settings
from tests.fake_openai import Fail, FakeOpenAI, Reply
from tests.gateway.usage_support import FALLBACK, LOCAL, PRIMARY, ask, expected_cost, rows

# Big enough that cents are meaningful: 1.2M prompt tokens (300k cached), 250k output.
BIG: dict[str, Any] = {"prompt_tokens": 1_200_000, "cached_tokens": 300_000, "completion_tokens": 250_000}

ROOF = "Who can inspect my roof in Troy?"  # listings to cite: every model may take it


@pytest.fixture
def app(openai_settings: Settings) -> FastAPI:
    return create_app(openai_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _cents(x: float) -> int:
    return round(x * 100)


def test_invoke_tokens_and_cost(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(PRIMARY, Reply("Roof inspections are popular.", **BIG))
    assert client.post("/chat/invoke", json={"input": ask()}).status_code == 200
    [row] = rows(app)
    want = expected_cost(PRIMARY, prompt=1_200_000, cached=300_000, output=250_000)
    assert (row["input_tokens"], row["cached_tokens"], row["output_tokens"]) == (1_200_000, 300_000, 250_000)
    assert _cents(row["cost_usd"]) == _cents(want) and row["cost_usd"] == pytest.approx(want, abs=1e-9)
    assert row["model"] == PRIMARY and row["priced"] and not row["fallback"] and not row["error"]
    assert row["route"] == "chat" and row["endpoint"] == "invoke" and row["status"] == 200
    assert row["latency_ms"] > 0 and row["ttft_ms"] is None


def test_batch_sums_every_item(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(PRIMARY, Reply("one", **BIG), Reply("two", prompt_tokens=1000, completion_tokens=3000))
    r = client.post("/chat/batch", json={"inputs": [ask("a"), ask("b")]})
    assert r.status_code == 200
    [row] = rows(app)
    want = expected_cost(PRIMARY, prompt=1_200_000, cached=300_000, output=250_000) + expected_cost(
        PRIMARY, prompt=1000, cached=0, output=3000)
    assert row["input_tokens"] == 1_201_000 and row["output_tokens"] == 253_000
    assert row["cost_usd"] == pytest.approx(want, abs=1e-9) and row["endpoint"] == "batch"


def test_stream_tokens_cost_and_time_to_first_token(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(PRIMARY, Reply("Mapping jobs take a day in Novi.", first_token_delay=0.25, chunk_delay=0.05,
                                      chunks=4, **BIG))
    with client.stream("POST", "/chat/stream", json={"input": ask()}) as r:
        text = "".join(r.iter_text())
    assert "event: end" in text
    [row] = rows(app)
    assert row["cost_usd"] == pytest.approx(expected_cost(PRIMARY, prompt=1_200_000, cached=300_000, output=250_000),
                                            abs=1e-9)
    assert row["endpoint"] == "stream" and row["output_tokens"] == 250_000
    # The first token left the fake after 250 ms; the rest took at least 3 x 50 ms more.
    assert 250 <= row["ttft_ms"] < row["latency_ms"] and row["latency_ms"] - row["ttft_ms"] >= 140


@pytest.mark.parametrize("endpoint", ["invoke", "stream"])
def test_fallback_bills_the_model_that_answered(
    client: TestClient, app: FastAPI, fake_openai: FakeOpenAI, endpoint: str
) -> None:
    fake_openai.script(PRIMARY, Fail(503))
    fake_openai.script(FALLBACK, Reply("From the fallback.", prompt_tokens=400_000, completion_tokens=100_000))
    if endpoint == "invoke":
        assert client.post("/chat/invoke", json={"input": ask()}).status_code == 200
    else:
        with client.stream("POST", "/chat/stream", json={"input": ask()}) as r:
            assert "event: end" in "".join(r.iter_text())
    [row] = rows(app)
    assert row["model"] == FALLBACK and row["fallback"] and row["models_tried"] == f"{PRIMARY},{FALLBACK}"
    # gpt-3.5-turbo: 0.4M x $0.50 + 0.1M x $1.50 = $0.35 (not the primary's price)
    assert row["cost_usd"] == pytest.approx(expected_cost(FALLBACK, prompt=400_000, cached=0, output=100_000))
    assert _cents(row["cost_usd"]) == 35


def test_local_model_is_free(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(PRIMARY, Fail(500))
    fake_openai.always(FALLBACK, Fail(500))
    fake_openai.script(LOCAL, Reply("Local answer.", prompt_tokens=900, completion_tokens=50))
    # a question with listings: the embedded model takes over (it never answers one without: test_chain.py)
    assert client.post("/chat/invoke", json={"input": ask(ROOF)}).status_code == 200
    [row] = rows(app)
    assert row["model"] == LOCAL and row["cost_usd"] == 0 and row["priced"] and row["input_tokens"] == 900


def test_unknown_model_is_recorded_unpriced_with_a_warning(
    fake_openai: FakeOpenAI, openai_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = create_app(openai_settings.model_copy(update={"ai_model_primary": "acme-frontier-1"}))
    fake_openai.script("acme-frontier-1", Reply("hi", prompt_tokens=5000, completion_tokens=100))
    with TestClient(app) as c:
        assert c.post("/chat/invoke", json={"input": ask()}).status_code == 200
        report = c.get("/usage", params={"by": "model", "since": "1d"}).json()["rows"]
    [row] = rows(app)
    assert row["model"] == "acme-frontier-1" and row["priced"] is False and row["cost_usd"] == 0
    assert row["input_tokens"] == 5000
    assert report[0]["unpriced"] == 1
    assert any("acme-frontier-1" in r.getMessage() and "price table" in r.getMessage() for r in caplog.records)


def test_all_models_failing_is_an_error_row(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    for m in (PRIMARY, FALLBACK, LOCAL):
        fake_openai.always(m, Fail(503))
    assert client.post("/chat/invoke", json={"input": ask(ROOF)}).status_code == 503
    [row] = rows(app)
    assert row["error"] and row["status"] == 503 and row["model"] is None and row["cost_usd"] == 0
    assert row["models_tried"] == f"{PRIMARY},{FALLBACK},{LOCAL}" and row["error_type"]


def test_request_id_is_returned_and_accepted_when_well_formed(client: TestClient, app: FastAPI) -> None:
    mine = "order-4711-checkout"
    r = client.post("/chat/invoke", json={"input": ask()}, headers={"X-Request-ID": mine})
    assert r.headers["X-Request-ID"] == mine
    for bad in ("short", "has spaces in it", "x" * 65, "sk-proj-abcdefghijklmnop"):
        r = client.post("/chat/invoke", json={"input": ask()}, headers={"X-Request-ID": bad})
        assert r.headers["X-Request-ID"] != bad and len(r.headers["X-Request-ID"]) == 32
    assert rows(app)[0]["request_id"] == mine
    assert "X-Request-ID" in client.get("/healthz").headers  # every response carries one
    assert len(rows(app)) == 5  # /healthz, schemas and docs are not usage


def test_validation_error_is_recorded_without_tokens(client: TestClient, app: FastAPI) -> None:
    assert client.post("/chat/invoke", json={"input": {"messages": []}}).status_code == 422
    [row] = rows(app)
    assert row["status"] == 422 and row["input_tokens"] == 0 and not row["error"]


def test_callback_on_a_bare_chain_reports_to_the_bound_context(fake_openai: FakeOpenAI) -> None:
    """Without HTTP: the handler writes to whatever RequestContext is current, through async tasks."""
    from langchain_openai import ChatOpenAI

    prices = load_prices(ROOT / "data" / "pricing.json")
    handler = UsageCallback(prices)
    model = ChatOpenAI(model="gpt-4o", api_key="sk-test-" + "x" * 30, base_url=fake_openai.url,  # type: ignore[arg-type]
                       max_retries=0, stream_usage=True)
    chain = instrument(model, handler)
    fake_openai.script("gpt-4o", Reply("a b", prompt_tokens=100, completion_tokens=10),
                       Reply("c d", prompt_tokens=200, completion_tokens=20))

    async def run() -> RequestContext:
        ctx = RequestContext(request_id="r" * 16, route="test")
        token = context.bind(ctx)
        try:
            await asyncio.gather(chain.ainvoke("x"), _collect(chain.astream("y")))
        finally:
            context.reset(token)
        return ctx

    ctx = asyncio.run(run())
    assert sorted(c.input_tokens for c in ctx.calls) == [100, 200] and ctx.output_tokens == 30
    assert ctx.cost_usd == pytest.approx((300 * 2.50 + 30 * 10.00) / 1e6)
    assert ctx.first_token_at is not None and handler.orphans == 0
    chain.invoke("outside any request")  # no context: counted, not recorded, no error
    assert handler.orphans == 1


async def _collect(stream: Any) -> list[Any]:
    return [c async for c in stream]
