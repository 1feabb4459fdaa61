"""The limits' pipelined Redis connection, on a real redis-server: concurrent calls get their own replies
in order; an error reply fails one call, not the connection; NOSCRIPT falls back to EVAL; a killed Redis
fails the waiting calls and the next call reconnects; a silent one times out, while connecting (AUTH, SELECT)
too; the URL's database is used; URLs are read exactly as redis-py reads them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from typing import Any

import pytest
import uvloop
from redis import Redis
from redis.connection import SSLConnection, UnixDomainSocketConnection

from errors import ConfigError
from gateway.redis_pipe import RedisPipe, RedisReplyError, script_sha


@pytest.fixture
def url(redis_server) -> str:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    return str(redis_server.url)


async def test_concurrent_calls_get_their_own_replies(url: str) -> None:
    pipe = RedisPipe(url, timeout_s=5)
    key = f"pipe-{time.time_ns()}"
    replies = await asyncio.gather(*(pipe.call("ECHO", f"v{i}") for i in range(300)),
                                   *(pipe.call("INCR", key) for _ in range(100)))
    assert replies[:300] == [f"v{i}".encode() for i in range(300)]
    assert sorted(replies[300:]) == list(range(1, 101))  # atomic increments, each seen once
    await pipe.aclose()


def test_on_uvloop_as_served(url: str) -> None:  # uvicorn runs on uvloop, the other tests on asyncio
    uvloop.run(test_concurrent_calls_get_their_own_replies(url))


async def test_an_error_reply_fails_only_its_call(url: str) -> None:
    pipe = RedisPipe(url, timeout_s=5)
    key = f"pipe-str-{time.time_ns()}"
    await pipe.call("SET", key, "text")
    results: list[object] = await asyncio.gather(pipe.call("INCR", key), pipe.call("GET", key), return_exceptions=True)
    bad, good = results
    assert isinstance(bad, RedisReplyError) and "not an integer" in str(bad)
    assert good == b"text"
    assert await pipe.call("PING") == b"PONG"
    await pipe.aclose()


async def test_an_unknown_script_is_sent_whole_once(url: str) -> None:
    pipe = RedisPipe(url, timeout_s=5)
    script = f"return {{KEYS[1], ARGV[1], {time.time_ns()}}}"  # new to this server
    first = await pipe.eval_script(script, script_sha(script), ["k"], ["a"])
    assert first[:2] == [b"k", b"a"]
    assert await pipe.call("EVALSHA", script_sha(script), 1, "k", "b") == [b"k", b"b", first[2]]  # now cached
    with pytest.raises(RedisReplyError):
        await pipe.eval_script("return redis.call('nosuchcommand')", script_sha("x"), [], [])
    await pipe.aclose()


async def test_a_killed_redis_fails_waiting_calls_then_reconnects(redis_server, url: str) -> None:  # type: ignore[no-untyped-def]
    pipe = RedisPipe(url, timeout_s=5)
    assert await pipe.call("PING") == b"PONG"
    blocked = asyncio.ensure_future(pipe.call("BLPOP", f"never-{time.time_ns()}", 30))  # waits on the server
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    redis_server.kill()
    with pytest.raises(ConnectionError):
        await blocked
    assert time.monotonic() - t0 < 3
    with pytest.raises(OSError):  # nothing listens: refused at once (ConnectionError is an OSError)
        await pipe.call("PING")
    redis_server.start()
    assert await pipe.call("PING") == b"PONG"
    await pipe.aclose()


async def test_a_silent_redis_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        pipe = RedisPipe(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.2)
        t0 = time.monotonic()
        results = await asyncio.gather(pipe.call("PING"), pipe.call("PING"), return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results) and time.monotonic() - t0 < 2
        await pipe.aclose()


async def test_the_urls_database_and_password(url: str) -> None:
    admin = Redis.from_url(url)
    key = f"pipe-db-{time.time_ns()}"
    pipe = RedisPipe(url.rsplit("/", 1)[0] + "/3", timeout_s=5)
    await pipe.call("SET", key, "in-3")
    assert Redis.from_url(url.rsplit("/", 1)[0] + "/3").get(key) == b"in-3" and admin.get(key) is None
    await pipe.aclose()
    admin.config_set("requirepass", "s3cret")
    try:
        with pytest.raises(RedisReplyError, match="NOAUTH"):
            await RedisPipe(url, timeout_s=5).call("PING")
        authed = RedisPipe(url.replace("redis://", "redis://:s3cret@"), timeout_s=5)
        assert await authed.call("PING") == b"PONG"
        await authed.aclose()
    finally:
        Redis.from_url(url.replace("redis://", "redis://:s3cret@")).config_set("requirepass", "")


URLS = [
    "redis://localhost", "redis://127.0.0.1:6390/0", "redis://:pw@cache.example:6380/2", "redis://u%40x:p%2Fw@h/3",
    "redis://user:@h", "redis://h/?db=5", "redis://h:6379/1?db=5", "redis://h/zero", "redis://[::1]:6391/4",
    "REDIS://h:7000", "rediss://:pw@cache.example:6380/2?ssl_cert_reqs=none", "rediss://cache.example/0",
    "rediss://h/1?ssl_cert_reqs=optional&ssl_check_hostname=false", "unix:///run/redis.sock?db=4",
    "unix://:sock-pw@/run/redis.sock", "redis://h:6379/2?socket_timeout=3&health_check_interval=10",
]


@pytest.mark.parametrize("url", URLS)
def test_urls_as_redis_py_reads_them(url: str) -> None:
    """The limits' connection and redis-py's (the describe cache's) read every URL the same way."""
    theirs = Redis.from_url(url).connection_pool
    kw = theirs.connection_kwargs
    pipe = RedisPipe(url, timeout_s=1)
    assert pipe.db == kw.get("db", 0)
    assert (pipe.username, pipe.password) == (kw.get("username"), kw.get("password"))
    if theirs.connection_class is UnixDomainSocketConnection:
        assert pipe.unix_path == kw["path"] and pipe.ssl is None
        return
    assert (pipe.host, pipe.port) == (kw.get("host", "localhost"), kw.get("port", 6379)) and pipe.unix_path is None
    if theirs.connection_class is not SSLConnection:
        assert pipe.ssl is None
        return
    conn: Any = theirs.make_connection()  # redis-py's SSLConnection as it would connect (nothing connects yet)
    assert pipe.ssl is not None
    assert (pipe.ssl.verify_mode, pipe.ssl.check_hostname) == (conn.cert_reqs, conn.check_hostname)


def test_urls_redis_py_refuses_are_a_config_error() -> None:
    for bad in ("http://cache.example", "redis:cache.example", "unix://", "rediss://h/0?ssl_cert_reqs=maybe",
                "rediss://h/0?ssl_ciphers=HIGH", "redis://h/?db=two"):
        with pytest.raises(ConfigError, match="REDIS_URL"):
            RedisPipe(bad, timeout_s=1)


async def test_a_server_that_never_answers_auth_or_select_times_out() -> None:
    """Connect, AUTH and SELECT are bounded like any call: the attempt ends, and the next call makes a new one
    (a hung attempt would hold every later call, even once Redis answers again)."""
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.setblocking(False)
        port = silent.getsockname()[1]
        for url in (f"redis://:pw@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/3"):
            pipe = RedisPipe(url, timeout_s=0.3)
            for _ in range(2):
                t0 = time.monotonic()
                with pytest.raises(TimeoutError):
                    await pipe.call("PING")
                assert time.monotonic() - t0 < 1.5
                await asyncio.sleep(0.4)  # past the attempt's own timeout
            attempts = []
            while True:
                try:
                    attempts.append(silent.accept()[0])
                except BlockingIOError:
                    break
            assert len(attempts) == 2  # one connection per call: the first attempt was given up
            for conn in attempts:
                conn.close()
            await pipe.aclose()


async def test_a_connect_that_never_completes_times_out() -> None:
    """A full accept queue drops the SYN (the connect hangs, as to a black-holed host): still bounded."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        for _ in range(8):  # fill the accept queue; later connects get no answer
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        await asyncio.sleep(0.2)
        pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await pipe.call("PING")
        assert time.monotonic() - t0 < 1.5
        for s in queued:
            s.close()


async def test_over_a_unix_socket(redis_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen([redis_server.binary, "--port", "0", "--unixsocket", str(path), "--save", ""],
                            stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if path.exists():
                break
            await asyncio.sleep(0.05)
        pipe = RedisPipe(f"unix://{path}?db=2", timeout_s=5)
        assert await pipe.call("PING") == b"PONG"
        await pipe.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
