"""Fault injection through the whole service: for each upstream fault, what the client sees, how many
upstream calls were made (counted on the fake server) and how long it took; a storm that opens the breaker;
the request deadline; a stream cut after its first token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server import create_app
from settings import Settings
from tests.conftest import LiveServer
from tests.fake_openai import Cut, Fail, FakeOpenAI, Garbage, Hang, Reply, Reset

PRIMARY, FALLBACK, LOCAL = "gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct"
# Nothing to search: the model layer alone answers (its text is kept as it comes; tests/chains/assistant covers
# answers grounded in listings).
ASK_TEXT = "What should I ask a drone pilot before hiring one?"
ASK = {"input": {"messages": [{"role": "user", "content": ASK_TEXT}]}}
# Every phase of a model call (connect, read) gets this long. 1 s was too tight on the loaded CI machine: once a
# slow first token timed out, once a 500 case saw one call where the SDK makes two (not reproduced here; an attempt
# that timed out before the fake server read it would do that); 2 s keeps each case's meaning (hangs still time out).
TIMEOUT_S = 2.0
SLACK_S = 2.0  # the machine is shared: time bounds prove "no long wait", not speed (Hang() lasts 10-30 s)


@pytest.fixture
def settings(openai_settings: Settings) -> Settings:
    return openai_settings.model_copy(update={
        # the deadline (timeout + margin) must leave the "hang" case room to fall back: two 2 s timeouts and the
        # SDK's backoff take ~4.5-5 s before the fallback is asked (the deadline is 8 s)
        "ai_request_timeout": int(TIMEOUT_S * 1000), "ai_deadline_margin_ms": 6000, "ai_max_retries": 1,
        "local_model_timeout_s": TIMEOUT_S, "circuit_failure_threshold": 5, "circuit_reset_s": 60,
        # the storm sends 200 requests in seconds: rate limits are the gateway's tests, not these
        "ai_rate_limit_rpm": 100_000, "ai_rate_limit_tpm": 100_000_000,
        "gateway_global_rpm": 100_000, "gateway_global_tpm": 100_000_000,
    })


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def timed_post(client: TestClient) -> tuple[Any, float]:
    started = time.monotonic()
    r = client.post("/chat/invoke", json=ASK)
    return r, time.monotonic() - started


@pytest.mark.parametrize(
    ("faults", "primary_calls", "answer_from", "max_seconds"),
    [
        ([Fail(429, retry_after=0.2), Reply("after retry")], 2, PRIMARY, 1.5),  # SDK honours Retry-After
        ([Fail(429), Reply("after backoff")], 2, PRIMARY, 2.5),  # no Retry-After: backoff with jitter
        ([Fail(500), Fail(500)], 2, FALLBACK, 3.0),
        ([Fail(502), Fail(503)], 2, FALLBACK, 3.0),
        ([Hang(10), Hang(10)], 2, FALLBACK, 2 * TIMEOUT_S + 1.5),
        ([Reset(), Reset()], 2, FALLBACK, 3.0),
        ([Garbage()], 1, FALLBACK, 1.5),  # not retried by the SDK: straight to the fallback
        # well below the timeout: slow, yet a loaded CI machine does not turn "slow" into "timed out"
        ([Reply("slow but fine", first_token_delay=0.3)], 1, PRIMARY, 1.5),
        ([Reply("no usage block", usage=False)], 1, PRIMARY, 1.5),
    ],
    ids=["429-retry-after", "429", "500", "502-503", "hang", "reset", "garbage", "slow-first-token", "no-usage"],
)
def test_fault_matrix(
    client: TestClient, fake_openai: FakeOpenAI, faults: list, primary_calls: int, answer_from: str,
    max_seconds: float,
) -> None:
    fake_openai.script(PRIMARY, *faults)
    fake_openai.always(FALLBACK, Reply("fallback answer"))
    r, took = timed_post(client)
    assert r.status_code == 200
    expected = "fallback answer" if answer_from == FALLBACK else None
    if expected:
        assert r.json()["output"] == expected
    assert fake_openai.count(PRIMARY) == primary_calls
    assert fake_openai.count(FALLBACK) == (1 if answer_from == FALLBACK else 0)
    assert took < max_seconds + SLACK_S


def test_everything_down_is_a_fast_503_with_retry_after(client: TestClient, fake_openai: FakeOpenAI) -> None:
    for m in (PRIMARY, FALLBACK, LOCAL):
        fake_openai.always(m, Fail(503))
    # A question with listings to cite, which every model may take (a general one is answered from data when the
    # paid models are down: the embedded model is not for it, tests/chains/assistant/test_chain.py)
    roof = {"input": {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]}}
    started = time.monotonic()
    r = client.post("/chat/invoke", json=roof)
    took = time.monotonic() - started
    assert r.status_code == 503 and r.json()["error"]["code"] == "provider_unavailable"
    assert int(r.headers["Retry-After"]) >= 1 and took < 3 + SLACK_S


def test_open_breaker_fails_fast_and_shows_in_readyz(client: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(PRIMARY, Fail(500))
    fake_openai.always(FALLBACK, Reply("fallback answer"))
    for _ in range(5):  # one breaker failure per model call (its SDK retries inside): the 5th opens it
        assert client.post("/chat/invoke", json=ASK).status_code == 200
    before = fake_openai.count(PRIMARY)
    assert client.get("/readyz").json()["circuits"][PRIMARY] == "open"
    r, took = timed_post(client)
    assert r.json()["output"] == "fallback answer" and fake_openai.count(PRIMARY) == before and took < SLACK_S


def test_request_deadline_bounds_the_whole_request(settings: Settings, fake_openai: FakeOpenAI) -> None:
    s = settings.model_copy(update={"ai_deadline_margin_ms": 300, "ai_max_retries": 0})
    for m in (PRIMARY, FALLBACK, LOCAL):
        fake_openai.always(m, Hang(10))
    with TestClient(create_app(s)) as c:
        r, took = timed_post(c)
    assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
    assert took < s.request_deadline_s + SLACK_S and fake_openai.count(LOCAL) == 0


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.split("\r\n\r\n" if "\r\n" in text else "\n\n"):
        lines = block.strip().splitlines()
        name = next((ln[7:] for ln in lines if ln.startswith("event: ")), "")
        data = next((ln[6:] for ln in lines if ln.startswith("data: ")), "")
        if name:
            events.append((name, data))
    return events


def test_stream_failure_before_first_token_falls_back(client: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(PRIMARY, Fail(500), Fail(500))
    fake_openai.always(FALLBACK, Reply("fallback streamed answer here", chunks=4))
    with client.stream("POST", "/chat/stream", json=ASK) as r:
        events = sse_events("".join(r.iter_text()))
    text = "".join(json.loads(d) for e, d in events if e == "data")
    assert text == "fallback streamed answer here" and events[-1][0] == "end"


def test_stream_cut_after_first_token_ends_with_an_error_event(settings: Settings, fake_openai: FakeOpenAI) -> None:
    # Whole sentences before the cut: the chain sends text a checked sentence at a time.
    long_text = " ".join(f"Point {chr(65 + i)} is one more fine thing to know." for i in range(10))
    fake_openai.script(PRIMARY, Cut(after=6, text=long_text))
    # LangServe sends the error event, then re-raises (uvicorn logs it and closes the connection).
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        started = time.monotonic()
        with c.stream("POST", "/chat/stream", json=ASK) as r:
            events = sse_events("".join(r.iter_text()))
    names = [e for e, _ in events]
    assert "data" in names and names[-1] == "error" and "end" not in names  # no silent truncation
    assert time.monotonic() - started < 3 + SLACK_S and fake_openai.count(FALLBACK) == 0


def test_storm_breaker_opens_and_fallback_serves_everyone(settings: Settings, fake_openai: FakeOpenAI) -> None:
    # A generous deadline: this test is about the breaker, and a loaded machine slows the first wave.
    s = settings.model_copy(update={"ai_max_retries": 0, "ai_deadline_margin_ms": 25_000})
    fake_openai.always(PRIMARY, Hang(30))
    fake_openai.always(FALLBACK, Reply("fallback answer"))
    results: list[tuple[float, float, int]] = []
    started: dict[str, float] = {}  # each request's own question -> when the client sent it

    async def storm(url: str) -> None:
        sem = asyncio.Semaphore(16)
        async with httpx.AsyncClient(timeout=30) as http:
            async def one(i: int) -> None:
                question = f"{ASK_TEXT} (question {i})"
                async with sem:
                    t0 = started[question] = time.monotonic()
                    body = {"input": {"messages": [{"role": "user", "content": question}]}}
                    r = await http.post(f"{url}/chat/invoke", json=body)
                    results.append((t0, time.monotonic(), r.status_code))
            await asyncio.gather(*(one(i) for i in range(200)))

    app = create_app(s)
    opened: list[float] = []
    probes: list[float] = []  # half-open: the breaker lets one probe call through (a slow machine reaches it)
    app.state.services.breakers.listeners.append(
        lambda name, state: opened.append(time.monotonic()) if (name, state) == (PRIMARY, "open") else None
    )
    app.state.services.breakers.listeners.append(
        lambda name, state: probes.append(time.monotonic()) if (name, state) == (PRIMARY, "half_open") else None
    )
    with LiveServer(app) as live:
        asyncio.run(storm(live.url))
        circuits = httpx.get(f"{live.url}/readyz").json()["circuits"]
    assert [code for *_, code in results] == [200] * 200
    assert circuits[PRIMARY] == "open" and opened
    # Judged on order and counts (the server's clock and the fake's call log), not on latencies: the machine
    # is shared. The first wave (16 at once) waits out the timeout; once the breaker is open, no call reaches
    # the primary, so nobody waits for it: requests go straight to the fallback (on a loaded machine a
    # fallback call may itself time out, and the local model answers that one).
    assert fake_openai.count(PRIMARY) <= 16 + 5
    # The fake logs a call when its thread reads it, which a busy machine delays past the opening: which request
    # a primary call came from is what counts. Only requests sent before the breaker opened may reach it (and
    # the half-open probes, one each, which a slow machine may reach with the reset at 60 s).
    asked = [next(started[m["content"]] for m in c.body["messages"] if m.get("content") in started)
             for c in fake_openai.calls if c.model == PRIMARY]  # (a retry's own turn comes after the question)
    assert sum(t0 > opened[0] for t0 in asked) <= len(probes)
    after = [c.model for c in fake_openai.calls if c.at > opened[0]]
    assert after and FALLBACK in after
    late = [t0 for t0, _, _ in results if t0 > opened[0]]
    assert len(late) >= 150 and len(after) >= len(late)  # each later request: upstream calls, none to the primary
    assert fake_openai.count(FALLBACK) + fake_openai.count(LOCAL) >= 200  # everyone answered past the primary
