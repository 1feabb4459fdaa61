"""Limits in memory: requests and tokens per minute per key, per end user, global (search and guard each in a
window of their own, apart from the model routes'); X-RateLimit-* headers;
429 with Retry-After naming the limit; exactly N of many concurrent requests pass; token reservations are
settled with the real usage (so sequential requests keep passing where reservations alone would not); an
admission is all or nothing; the header figures come from the admission; no thread per request; a `limits`
release whose MemoryStorage internals are renamed still limits, as upstream built it, with a warning."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.keys import build_key_store
from gateway.limits import Limiter, LimitRefused, LimitSpec, WindowState
from server import create_app
from settings import Settings
from tests.conftest import FAKE_KEY, LiveServer, make_settings
from tests.fake_openai import FakeOpenAI, Reply

ASK = {"input": {"messages": [{"role": "user", "content": "How do I hire a drone pilot through SkyMarket?"}]}}
PRIMARY = "gpt-4o-mini"


def settings_with_key(fake: FakeOpenAI, **limits: int | None) -> tuple[Settings, str]:
    s = make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake.url,
                      ai_max_retries=0, gateway_keys_refresh_s=0)
    store = build_key_store(settings=s)
    store.create_table()
    return s, store.create(name="web-app", scopes=["chat"], **limits)  # type: ignore[arg-type]


@pytest.fixture
def limited(fake_openai: FakeOpenAI) -> Iterator[tuple[TestClient, str]]:
    s, key = settings_with_key(fake_openai, rpm=3)
    with TestClient(create_app(s.model_copy(update={"gateway_user_rpm": 2})),
                    headers={"Authorization": f"Bearer {key}"}) as c:
        yield c, key


def test_headers_then_429_with_retry_after(limited: tuple[TestClient, str]) -> None:
    c, _ = limited
    remaining = []
    for _ in range(3):
        r = c.post("/chat/invoke", json=ASK)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "3"
        assert 0 < int(r.headers["X-RateLimit-Reset"]) <= 60
        assert int(r.headers["X-RateLimit-Limit-Tokens"]) == 60_000
        assert int(r.headers["X-RateLimit-Remaining-Tokens"]) < 60_000
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    r = c.post("/chat/invoke", json=ASK)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert "3 requests per minute for this API key" in r.json()["error"]["message"]
    assert r.headers["X-RateLimit-Exceeded"] == "key_rpm" and r.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_per_user_limit_is_separate_per_user(limited: tuple[TestClient, str]) -> None:
    c, _ = limited
    for _ in range(2):
        assert c.post("/chat/invoke", json=ASK, headers={"X-User-Id": "u1"}).status_code == 200
    r = c.post("/chat/invoke", json=ASK, headers={"X-User-Id": "u1"})
    assert r.status_code == 429 and r.headers["X-RateLimit-Exceeded"] == "user_rpm"
    assert "this end user" in r.json()["error"]["message"]
    assert c.post("/chat/invoke", json=ASK, headers={"X-User-Id": "u2"}).status_code == 200  # key: 3rd of 3


def test_global_limit(fake_openai: FakeOpenAI) -> None:
    s, key = settings_with_key(fake_openai)
    with TestClient(create_app(s.model_copy(update={"gateway_global_rpm": 2})),
                    headers={"Authorization": f"Bearer {key}"}) as c:
        assert [c.post("/chat/invoke", json=ASK).status_code for _ in range(3)] == [200, 200, 429]
        assert c.post("/chat/invoke", json=ASK).headers["X-RateLimit-Exceeded"] == "global_rpm"


def test_search_and_guard_have_their_own_global_limits(fake_openai: FakeOpenAI) -> None:
    s = make_settings(openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, ai_max_retries=0,
                      gateway_global_rpm=2, gateway_search_global_rpm=3, gateway_guard_global_rpm=4)
    with TestClient(create_app(s)) as c:  # development: keyless from the test client
        chat = [c.post("/chat/invoke", json=ASK) for _ in range(3)]
        search = [c.post("/search/invoke", json={"input": {"query": "roof inspection"}}) for _ in range(4)]
        guard = [c.post("/guard/invoke", json={"input": {"text": "hello"}}) for _ in range(5)]
    # the model routes' window is full after 2 chats, yet search and guard each get their own
    assert [r.status_code for r in chat] == [200, 200, 429]
    assert [r.status_code for r in search] == [200, 200, 200, 429]
    assert [r.status_code for r in guard] == [200, 200, 200, 200, 429]
    assert search[-1].headers["X-RateLimit-Exceeded"] == guard[-1].headers["X-RateLimit-Exceeded"] == "global_rpm"
    assert "3 requests per minute for the whole service" in search[-1].json()["error"]["message"]


def _fire(url: str, key: str, n: int, path: str = "/chat/invoke") -> list[int]:
    def one(_: int) -> int:
        return httpx.post(url + path, json=ASK, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code

    with cf.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(n)))


def test_exactly_n_of_many_concurrent_pass(fake_openai: FakeOpenAI) -> None:
    s, key = settings_with_key(fake_openai, rpm=7)
    with LiveServer(create_app(s)) as live:
        codes = _fire(live.url, key, 40)
    assert codes.count(200) == 7 and codes.count(429) == 33


def test_token_reservations_hold_under_concurrency_and_settle(fake_openai: FakeOpenAI) -> None:
    # Each request reserves the prompt (~15 tokens) + the 300 allowance + the chat preset's max tokens, and
    # really uses ~20 (the fake's usage). The TPM limit fits two reservations at once, never three.
    plain = make_settings()
    reserve = 15 + plain.gateway_prompt_overhead_tokens + (plain.preset("chat").max_tokens or plain.ai_max_tokens)
    s, key = settings_with_key(fake_openai, tpm=2 * reserve + reserve // 2)
    fake_openai.always(PRIMARY, Reply("Yes, in Troy.", prompt_tokens=15, first_token_delay=0.6))
    with LiveServer(create_app(s)) as live:
        codes = _fire(live.url, key, 8)
        assert codes.count(200) == 2 and codes.count(429) == 6
        fake_openai.always(PRIMARY, Reply("Yes, in Troy.", prompt_tokens=15))
        # Settled to real usage: sequential requests keep passing (reservations alone would stop at 2).
        seq = [httpx.post(live.url + "/chat/invoke", json=ASK, headers={"Authorization": f"Bearer {key}"},
                          timeout=30) for _ in range(6)]
    assert [r.status_code for r in seq] == [200] * 6
    assert int(seq[-1].headers["X-RateLimit-Remaining-Tokens"]) > 2 * reserve + reserve // 2 - 2 * reserve - 8 * 20


def test_estimate_over_the_tpm_limit_is_a_clear_400(fake_openai: FakeOpenAI) -> None:
    s, key = settings_with_key(fake_openai, tpm=500)
    with TestClient(create_app(s), headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.post("/chat/invoke", json=ASK)
    assert r.status_code == 400 and r.json()["error"]["code"] == "token_estimate_over_limit"


async def test_refused_tokens_are_given_back() -> None:
    lim = Limiter()
    key, glob = LimitSpec("key", "k", 100, 1000), LimitSpec("global", "g", 100, 150)
    await lim.admit([LimitSpec("key", "other", 100, 1000), glob], tokens=100)
    with pytest.raises(LimitRefused) as err:
        await lim.admit([key, glob], tokens=100)  # fits the key, not the service: the key gets it back
    assert err.value.limit == "global_tpm" and err.value.retry_after is not None
    ok = await lim.admit([key], tokens=1000)  # the whole key budget is still there
    assert ok.token_state is not None and ok.token_state.remaining == 0
    lim.settle(ok, used_tokens=100)
    assert (await lim.admit([key], tokens=900)).tokens == 900


async def test_concurrent_admissions_in_memory() -> None:
    lim = Limiter()
    spec = [LimitSpec("key", "c", 10, 10_000)]
    results = await asyncio.gather(*(lim.admit(spec, tokens=1000) for _ in range(50)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 10


async def test_header_figures_come_from_the_admission() -> None:
    lim = Limiter()
    specs = [LimitSpec("user", "k/u", 2, 5000), LimitSpec("key", "k", 3, 4000), LimitSpec("global", "g", 9, 900_000)]
    first = await lim.admit(specs, tokens=1000)
    assert first.requests is not None and first.token_state is not None
    assert (first.requests.limit, first.requests.remaining) == (2, 1)  # the user's: tighter than the key's 2
    assert 59 <= first.requests.reset_s <= 60
    assert (first.token_state.limit, first.token_state.remaining) == (4000, 3000)  # the key's: tighter
    second = await lim.admit(specs[1:], tokens=1000)
    assert second.requests == WindowState(3, 1, second.requests.reset_s if second.requests else -1)
    assert second.token_state is not None and second.token_state.remaining == 2000


async def test_a_refusal_counts_nothing() -> None:
    lim = Limiter()
    key, glob = LimitSpec("key", "k", 5, 10_000), LimitSpec("global", "g", 1, 10_000)
    await lim.admit([LimitSpec("key", "other", 5, 10_000), glob], tokens=100)  # the service's only request
    for _ in range(3):
        with pytest.raises(LimitRefused) as err:
            await lim.admit([key, glob], tokens=100)
        assert err.value.limit == "global_rpm"
    ok = await lim.admit([key], tokens=100)
    assert ok.requests is not None and ok.requests.remaining == 4  # none of the 3 refused ones counted
    assert ok.token_state is not None and ok.token_state.remaining == 9900


async def test_memory_limits_start_no_threads() -> None:
    lim = Limiter()
    spec = [LimitSpec("key", "t", 10_000, 10**9)]
    before = threading.active_count()
    for i in range(200):
        admission = await lim.admit(spec, tokens=10)
        lim.settle(admission, used_tokens=5)
        if i % 50 == 0:
            await asyncio.sleep(0.02)  # upstream's expiry timer (10 ms) would have fired and restarted
    assert threading.active_count() <= before


def _renamed_memory_storage() -> type:
    """limits' MemoryStorage as a future release might ship it: the same code, its private expiry methods
    renamed (so `_MemoryStorage__expire_events` and `__schedule_expiry` do not exist)."""
    import inspect
    import types

    import limits.storage.memory as upstream

    source = inspect.getsource(upstream).replace("__expire_events", "__drop_expired")
    source = source.replace("__schedule_expiry", "__plan_expiry")
    module = types.ModuleType("renamed_limits_memory")
    exec(compile(source, "renamed_limits_memory.py", "exec"), module.__dict__)
    cls: type = module.MemoryStorage
    assert not hasattr(cls, "_MemoryStorage__expire_events") and hasattr(cls, "_MemoryStorage__drop_expired")
    return cls


async def test_renamed_limits_internals_keep_upstream_behaviour(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.limits_memory import MemoryBackend

    with caplog.at_level("WARNING", logger="skymarket.gateway.limits"):
        backend = MemoryBackend(_renamed_memory_storage())
    assert "expiry internals changed" in caplog.text
    lim = Limiter()
    lim.memory = backend
    spec = [LimitSpec("key", "renamed", 3, 1000)]
    admitted = [await lim.admit(spec, tokens=100) for _ in range(3)]
    with pytest.raises(LimitRefused):
        await lim.admit(spec, tokens=100)  # the fourth request in the minute
    lim.settle(admitted[0], used_tokens=40)
    assert not [k for k in vars(backend.storage) if k.startswith("_MemoryStorage__")]  # nothing patched in
    assert "_MemoryStorage__schedule_expiry" in vars(MemoryBackend().storage)  # as it is with limits 5.8
    assert backend.storage.get_sliding_window(spec[0].token_key(), 60)[2] == 240  # 3 x 100 reserved, 60 back
