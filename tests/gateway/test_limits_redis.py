"""Limits on a real Redis: two uvicorn processes share one limit (exactly N of many concurrent requests
pass); token reservations hold across concurrency and settle; Redis killed mid-run falls back to
per-process limits with no 5xx (or answers 503 in `deny` mode); a Redis that never answers cannot hang us;
an admission is one round trip, all or nothing, on the keys `limits`' own strategies read; settlements a
failed call carried wait and land once Redis answers, and are given up (counted) only past their window."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from chains.local_llm import free_port
from gateway import limits_redis
from gateway.keys import build_key_store
from gateway.limits import Limiter, LimitRefused, LimitSpec
from gateway.limits_lua import SETTLE
from gateway.limits_redis import SETTLE_LINGER_S
from server import create_app
from settings import Settings
from tests.conftest import FAKE_KEY, ROOT, LiveServer, make_settings
from tests.fake_openai import FakeOpenAI, Reply

ASK = {"input": {"messages": [{"role": "user", "content": "How do I hire a drone pilot through SkyMarket?"}]}}


def _key(s: Settings, name: str, **limits: int) -> str:
    store = build_key_store(settings=s)
    store.create_table()
    return store.create(name=name, scopes=["chat"], **limits)  # type: ignore[arg-type]


def _fire(urls: list[str], key: str, n: int) -> list[int]:
    def one(i: int) -> int:
        r = httpx.post(urls[i % len(urls)] + "/chat/invoke", json=ASK,
                       headers={"Authorization": f"Bearer {key}"}, timeout=60)
        return r.status_code

    with cf.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(n)))


class Uvicorn:
    """`uvicorn --factory server:create_app` as a separate process, configured by environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "uvicorn exited"
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def two_workers(redis_server, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[list[str], str]]:  # type: ignore[no-untyped-def]
    keys_file = tmp_path / "keys.db"
    key = _key(make_settings(gateway_keys_file=keys_file), f"shared-{time.time_ns()}", rpm=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AI_", "SKYMARKET_", "REDIS"))}
    env.update(SKYMARKET_ENV="production", GATEWAY_KEYS_FILE=str(keys_file), REDIS_URL=redis_server.url,
               OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=fake_openai.url, AI_MAX_RETRIES="0",
               LOCAL_MODEL_ENABLED="false", USAGE_DB_FILE=str(tmp_path / "usage.db"),
               AUDIT_FILE=str(tmp_path / "audit.jsonl"), GATEWAY_REDIS_TIMEOUT_S="5")  # a busy 2-core CI box
    workers = [Uvicorn(env, tmp_path / f"uvicorn-{i}.log") for i in range(2)]
    try:
        for w in workers:
            w.wait()
        yield [w.url for w in workers], key
    finally:
        for w in workers:
            w.stop()


def test_two_processes_share_one_limit(two_workers: tuple[list[str], str]) -> None:
    urls, key = two_workers
    codes = _fire(urls, key, 50)
    assert codes.count(200) == 10 and codes.count(429) == 40, codes


@pytest.fixture
def redis_limiter(redis_server) -> Limiter:  # type: ignore[no-untyped-def]
    """A started Limiter on the session's redis-server (restarted if a test killed it)."""
    if redis_server.proc is None:
        redis_server.start()
    lim = Limiter(redis_url=redis_server.url)
    lim.start()
    return lim


def limits_storage(url: str) -> RedisStorage:
    """`limits`' own async Redis storage on the same server: how the tests read our state back."""
    return RedisStorage("async+" + url, implementation="redispy")


@pytest.fixture
def redis_settings(redis_server, fake_openai: FakeOpenAI) -> Settings:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    return make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url,
                         ai_max_retries=0, redis_url=redis_server.url, gateway_redis_retry_s=60,
                         gateway_redis_timeout_s=5)


def test_token_reservations_on_redis(redis_settings: Settings, fake_openai: FakeOpenAI) -> None:
    # Each request reserves the prompt, the allowance and the chat preset's max tokens: two fit, never three.
    reserve = 15 + redis_settings.gateway_prompt_overhead_tokens + (redis_settings.preset("chat").max_tokens or 0)
    key = _key(redis_settings, f"tok-{time.time_ns()}", tpm=2 * reserve + reserve // 2)
    fake_openai.always("gpt-4o-mini", Reply("Yes.", prompt_tokens=15, first_token_delay=0.6))
    with LiveServer(create_app(redis_settings)) as a, LiveServer(create_app(redis_settings)) as b:
        codes = _fire([a.url, b.url], key, 8)
        assert codes.count(200) == 2 and codes.count(429) == 6, codes
        fake_openai.always("gpt-4o-mini", Reply("Yes.", prompt_tokens=15))
        assert _fire([a.url, b.url], key, 1) + _fire([a.url, b.url], key, 1) * 4 == [200] * 5


def test_redis_killed_mid_run_falls_back(redis_settings: Settings, redis_server,  # type: ignore[no-untyped-def]
                                         caplog: pytest.LogCaptureFixture) -> None:
    key = _key(redis_settings, f"kill-{time.time_ns()}", rpm=100)
    try:
        with LiveServer(create_app(redis_settings)) as live:
            assert _fire([live.url], key, 5) == [200] * 5
            redis_server.kill()
            t0 = time.monotonic()
            codes = _fire([live.url], key, 20)
            elapsed = time.monotonic() - t0
    finally:
        redis_server.start()
    assert codes == [200] * 20 and elapsed < 20
    outages = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outages) == 1  # logged (and alerted) once per outage, not per request


def test_redis_down_in_deny_mode_is_503(redis_settings: Settings, redis_server) -> None:  # type: ignore[no-untyped-def]
    s = redis_settings.model_copy(update={"gateway_redis_failure": "deny"})
    key = _key(s, f"deny-{time.time_ns()}")
    try:
        with LiveServer(create_app(s)) as live:
            redis_server.kill()
            r = httpx.post(live.url + "/chat/invoke", json=ASK, headers={"Authorization": f"Bearer {key}"},
                           timeout=30)
    finally:
        redis_server.start()
    assert r.status_code == 503 and r.json()["error"]["code"] == "limits_unavailable"
    assert "Retry-After" in r.headers


def test_a_redis_that_never_answers_cannot_hang_us(fake_openai: FakeOpenAI) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        s = make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url,
                          redis_url=url, gateway_redis_timeout_s=0.2)
        key = _key(s, "silent")
        with LiveServer(create_app(s)) as live:
            t0 = time.monotonic()
            r = httpx.post(live.url + "/chat/invoke", json=ASK, headers={"Authorization": f"Bearer {key}"},
                           timeout=30)
            assert r.status_code == 200 and time.monotonic() - t0 < 5


async def test_one_round_trip_per_admission_on_the_keys_limits_reads(  # type: ignore[no-untyped-def]
        redis_server, redis_limiter: Limiter) -> None:
    lim = redis_limiter
    assert lim.redis is not None
    await Redis.from_url(redis_server.url).script_load(SETTLE)  # its first use below is then one call
    pipe = lim.redis.pipe
    sent: list[str] = []
    call = pipe.call

    async def counting(*args: object) -> object:
        sent.append(str(args[0]))
        return await call(*args)

    pipe.call = counting  # type: ignore[method-assign]
    ident = f"k{time.time_ns()}"
    key, glob = LimitSpec("key", ident, 5, 10_000), LimitSpec("global", "g" + ident, 100, 100_000)
    first = await lim.admit([key, glob], tokens=1000)  # the first calls on a server also load the scripts
    sent.clear()
    lim.settle(first, used_tokens=999)  # gives 1 token back: it waits for the next admission
    assert sent == []
    second = await lim.admit([key, glob], tokens=1000)
    assert sent == ["EVALSHA"]  # the admission, carrying the settlement
    assert second.requests is not None and second.token_state is not None
    assert (second.requests.remaining, second.token_state.remaining) == (3, 8001)
    assert 59 <= second.requests.reset_s <= 60

    storage = limits_storage(redis_server.url)  # `limits` reading it
    moving = await MovingWindowRateLimiter(storage).get_window_stats(
        RateLimitItemPerMinute(5, namespace="skymarket"), "key", ident)
    counter = SlidingWindowCounterRateLimiter(storage)
    tokens = RateLimitItemPerMinute(10_000, namespace="skymarket")
    assert moving.remaining == 3 and (await counter.get_window_stats(tokens, "key", ident)).remaining == 8001
    sent.clear()
    lim.settle(second, used_tokens=100)  # gives back 900 on both limits, in one call
    assert sent == [] and (await counter.get_window_stats(tokens, "key", ident)).remaining == 8001
    await asyncio.sleep(SETTLE_LINGER_S * 5)  # no admission came to carry it: it is sent alone
    assert sent == ["EVALSHA"]
    assert (await counter.get_window_stats(tokens, "key", ident)).remaining == 8901


async def test_settlements_wait_for_an_admission_summed_and_shutdown_sends_them(  # type: ignore[no-untyped-def]
        redis_server, redis_limiter: Limiter, monkeypatch: pytest.MonkeyPatch) -> None:
    # The read below opens a connection of its own: on a loaded machine that outlasted the 20 ms linger, and the
    # settlements went alone before it (a flaky failure). Here they wait for the admission, as they would.
    monkeypatch.setattr(limits_redis, "SETTLE_LINGER_S", 30.0)
    lim = redis_limiter
    ident = f"s{time.time_ns()}"
    key, glob = LimitSpec("key", ident, 100, 10_000), LimitSpec("global", "g" + ident, 100, 100_000)
    admitted = [await lim.admit([key, glob], tokens=1000) for _ in range(3)]
    for a, used in zip(admitted, (400, 1500, 100), strict=True):  # -600, +500, -900: -1000 in all
        lim.settle(a, used_tokens=used)
    counter = SlidingWindowCounterRateLimiter(limits_storage(redis_server.url))
    tokens = RateLimitItemPerMinute(10_000, namespace="skymarket")
    assert (await counter.get_window_stats(tokens, "key", ident)).remaining == 7000  # all still reserved
    nxt = await lim.admit([key], tokens=500)  # applies the 3 settlements first, then reserves 500
    assert nxt.token_state is not None and nxt.token_state.remaining == 10_000 - 2000 - 500
    lim.settle(nxt, used_tokens=0)
    await lim.flush()  # what the app's shutdown does: nothing is left behind
    assert (await counter.get_window_stats(tokens, "key", ident)).remaining == 8000
    glob_tokens = RateLimitItemPerMinute(100_000, namespace="skymarket")
    assert (await counter.get_window_stats(glob_tokens, "global", "g" + ident)).remaining == 98_000


def failing_pipe(lim: Limiter) -> list[bool]:
    """Makes the limiter's Redis connection fail like a lost connection while `broken[0]` is True."""
    assert lim.redis is not None
    pipe = lim.redis.pipe
    call, broken = pipe.call, [False]

    async def maybe_failing(*args: object) -> object:
        if broken[0]:
            raise ConnectionError("Redis connection lost")
        return await call(*args)

    pipe.call = maybe_failing  # type: ignore[method-assign]
    return broken


async def test_settlements_are_kept_through_a_redis_failure_and_land_when_it_answers(  # type: ignore[no-untyped-def]
        redis_server, redis_limiter: Limiter) -> None:
    lim = redis_limiter
    broken = failing_pipe(lim)
    ident = f"f{time.time_ns()}"
    key = LimitSpec("key", ident, 100, 10_000)
    first, second = await lim.admit([key], tokens=1000), await lim.admit([key], tokens=1000)
    broken[0] = True
    lim.settle(first, used_tokens=100)  # gives 900 back: waits, sent alone after the linger, fails
    await asyncio.sleep(SETTLE_LINGER_S * 5)
    with pytest.raises(ConnectionError):
        await lim.redis.admit([key], 10, [True])  # type: ignore[union-attr]  # carries it, fails: kept again
    assert lim.settlement_figures() == (1, 0)
    status = lim.status()
    assert status is not None and status["settlements_waiting"] == 1 and status["error"] == "ConnectionError"
    lim.settle(second, used_tokens=500)  # a second one on the same counter: summed
    broken[0] = False
    await lim.flush()
    assert lim.settlement_figures() == (0, 0)
    counter = SlidingWindowCounterRateLimiter(limits_storage(redis_server.url))
    tokens = RateLimitItemPerMinute(10_000, namespace="skymarket")
    assert (await counter.get_window_stats(tokens, "key", ident)).remaining == 10_000 - 100 - 500


async def test_a_settlement_older_than_its_window_is_given_up_and_counted(  # type: ignore[no-untyped-def]
        redis_server, redis_limiter: Limiter, monkeypatch: pytest.MonkeyPatch) -> None:
    lim = redis_limiter
    broken = failing_pipe(lim)
    ident = f"e{time.time_ns()}"
    key = LimitSpec("key", ident, 100, 10_000)
    admitted = await lim.admit([key], tokens=1000)
    broken[0] = True
    lim.settle(admitted, used_tokens=100)
    await asyncio.sleep(SETTLE_LINGER_S * 5)
    monkeypatch.setattr(limits_redis, "EXPIRY", 0)  # the window it corrects has passed
    broken[0] = False
    await lim.flush()
    assert lim.settlement_figures() == (0, 1)
    counter = SlidingWindowCounterRateLimiter(limits_storage(redis_server.url))
    tokens = RateLimitItemPerMinute(10_000, namespace="skymarket")
    assert (await counter.get_window_stats(tokens, "key", ident)).remaining == 9000  # the reservation stays


async def test_a_refusal_on_redis_counts_nothing(redis_limiter: Limiter) -> None:
    lim = redis_limiter
    ident = f"r{time.time_ns()}"
    key, glob = LimitSpec("key", ident, 5, 10_000), LimitSpec("global", "g" + ident, 1, 1500)
    await lim.admit([LimitSpec("key", "other" + ident, 5, 10_000), glob], tokens=1000)
    with pytest.raises(LimitRefused) as err:
        await lim.admit([key, glob], tokens=100)  # the service's one request is spent
    assert err.value.limit == "global_rpm" and 1 <= int(err.value.retry_after or 0) <= 60
    roomy = LimitSpec("global", "g" + ident, 100, 1500)  # (another key for the service's rpm: same tokens)
    with pytest.raises(LimitRefused) as err:
        await lim.admit([key, LimitSpec("global", "g2" + ident, 100, 1000), roomy], tokens=600)
    assert err.value.limit == "global_tpm"  # 1000 + 600 > 1500
    ok = await lim.admit([key], tokens=100)
    assert ok.requests is not None and ok.requests.remaining == 4  # the key was charged by neither refusal
    assert ok.token_state is not None and ok.token_state.remaining == 9900


@pytest.mark.parametrize("expired", [2, 40])  # a few (popped from the tail) or many (binary search + LTRIM)
async def test_requests_that_left_the_window_are_dropped_not_counted(redis_server, redis_limiter: Limiter,  # type: ignore[no-untyped-def]
                                                                      expired: int) -> None:
    lim = redis_limiter
    spec = LimitSpec("key", f"w{time.time_ns()}", 100, 10_000)
    requests_key = f"{RedisStorage.PREFIX}:{spec.request_key()}"
    admin = Redis.from_url(redis_server.url)
    now = time.time()
    await admin.lpush(requests_key, *[repr(now - 200 + i) for i in range(expired)])  # oldest first: the tail
    await admin.lpush(requests_key, *[repr(now - 30 + i) for i in range(3)])  # still in the window
    admission = await lim.admit([spec], tokens=0)
    assert admission.requests is not None and admission.requests.remaining == 100 - 4
    assert 29 <= admission.requests.reset_s <= 31  # the oldest request still counted frees its slot then
    assert await admin.llen(requests_key) == 4  # what left the window is gone
    moving = await MovingWindowRateLimiter(limits_storage(redis_server.url)) \
        .get_window_stats(RateLimitItemPerMinute(100, namespace="skymarket"), "key", spec.ident)
    assert moving.remaining == 96  # `limits` reads the same
