"""Prometheus metrics: a registry per app, `GET /metrics` in text format, and every family moves: requests by
route and status, latency, time to first token, tokens and cost by model, fallbacks, gateway refusals,
guard actions, cache lookups, circuit state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway import context, metrics
from gateway.context import RequestContext
from gateway.metrics import Metrics
from server import create_app
from settings import Settings
from tests.fake_openai import Fail, FakeOpenAI, Reply
from tests.gateway.usage_support import FALLBACK, PRIMARY, ask, expected_cost


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app(openai_settings: Settings) -> FastAPI:
    return create_app(openai_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_requests_tokens_cost_and_fallbacks_move(client: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(PRIMARY, Reply("a b c", prompt_tokens=100_000, completion_tokens=20_000), Fail(503))
    fake_openai.script(FALLBACK, Reply("fallback", prompt_tokens=50_000, completion_tokens=1000))
    client.post("/chat/invoke", json={"input": ask()})
    client.post("/chat/invoke", json={"input": ask()})
    with client.stream("POST", "/chat/stream", json={"input": ask()}) as r:
        "".join(r.iter_text())
    client.post("/chat/invoke", json={"input": {"messages": []}})  # 422
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    t = r.text
    assert value(t, "skymarket_requests_total", route="chat", endpoint="invoke", status="200") == 2
    assert value(t, "skymarket_requests_total", route="chat", endpoint="invoke", status="422") == 1
    assert value(t, "skymarket_requests_total", route="chat", endpoint="stream", status="200") == 1
    assert value(t, "skymarket_request_latency_seconds_count", route="chat") == 4
    assert value(t, "skymarket_time_to_first_token_seconds_count", route="chat") == 1
    assert value(t, "skymarket_tokens_total", model=PRIMARY, kind="input") == 100_000 + 12  # + the stream's
    assert value(t, "skymarket_tokens_total", model=FALLBACK, kind="output") == 1000
    assert value(t, "skymarket_cost_usd_total", model=FALLBACK) == pytest.approx(
        expected_cost(FALLBACK, prompt=50_000, cached=0, output=1000))
    assert value(t, "skymarket_fallbacks_total", route="chat") == 1
    assert value(t, "skymarket_model_calls_total", model=PRIMARY, outcome="error") == 1


def test_each_app_has_its_own_registry(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    a, b = create_app(openai_settings), create_app(openai_settings)
    with TestClient(a) as ca, TestClient(b) as cb:
        ca.post("/chat/invoke", json={"input": ask()})
        assert value(ca.get("/metrics").text, "skymarket_requests_total", route="chat", endpoint="invoke",
                     status="200") == 1
        assert value(cb.get("/metrics").text, "skymarket_requests_total", route="chat", endpoint="invoke",
                     status="200") == 0


def test_event_functions_reach_the_current_app() -> None:
    m = Metrics()
    token = metrics.activate(m)
    try:
        ctx = RequestContext(request_id="x" * 16, route="chat", endpoint="invoke", status=429)
        ctok = context.bind(ctx)
        try:
            metrics.rate_limited("key_rpm")
            metrics.guard_action("block", ["prompt_injection"])
            metrics.cache(hit=True)
            metrics.cache(hit=False)
        finally:
            context.reset(ctok)
        metrics.circuit(PRIMARY, "open")
        metrics.rate_limited("global_tpm")  # outside a request: counted at once
        m.observe(ctx)  # what the middleware does when the request ends
    finally:
        metrics._active.reset(token)  # type: ignore[arg-type]
    assert ctx.refusal == "key_rpm" and ctx.guard_action == "block" and ctx.guard_reasons == ["prompt_injection"]
    assert ctx.cache_hit
    t = m.render()[0].decode()
    assert value(t, "skymarket_rate_limited_total", kind="key_rpm") == 1
    assert value(t, "skymarket_rate_limited_total", kind="global_tpm") == 1
    assert value(t, "skymarket_guard_actions_total", action="block") == 1
    assert value(t, "skymarket_cache_lookups_total", result="hit") == 1
    assert value(t, "skymarket_cache_lookups_total", result="miss") == 1
    assert value(t, "skymarket_circuit_state", model=PRIMARY) == 2


def test_breaker_changes_show_as_circuit_state(client: TestClient, app: FastAPI, fake_openai: FakeOpenAI) -> None:
    services = app.state.services
    breaker = services.breakers.get(PRIMARY)
    for _ in range(services.settings.circuit_failure_threshold):
        breaker.failure()
    assert value(client.get("/metrics").text, "skymarket_circuit_state", model=PRIMARY) == 2


def test_gateway_refusal_is_counted(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    s = openai_settings.model_copy(update={"ai_rate_limit_rpm": 1})
    with TestClient(create_app(s)) as c:
        codes = [c.post("/chat/invoke", json={"input": ask()}).status_code for _ in range(3)]
        assert codes[0] == 200 and 429 in codes
        t = c.get("/metrics").text
    refused = sum(v for (name, _), v in samples(t).items() if name == "skymarket_rate_limited_total")
    assert refused == codes.count(429)
