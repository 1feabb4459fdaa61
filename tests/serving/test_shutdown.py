"""Graceful shutdown (serving/drain.py), on real processes: SIGTERM mid-load drains the service (one process and
two workers): /readyz answers 503 at once while requests are still taken for SHUTDOWN_DELAY_S, invokes and
streams in flight run to their end, every request that got a 200 is in the ledger and the audit trail, and
the process exits by itself. The draining handler itself, in-process: a second signal stops the wait, and
sse-starlette's stream-ending exit event is held back.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from serving import Drain
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI, Reply
from tests.services import ChromaServer
from tests.serving.support import Conn, clean_env, serve

pytestmark = pytest.mark.timeout(900)  # real processes: a loaded 2-core machine starts them slowly
ASK = {"input": {"messages": [{"role": "user", "content": "Hi!"}]}}
DELAY_S, GRACEFUL_S = 3.0, 20


@pytest.fixture(scope="module")
def chroma(chroma_listings: ChromaServer) -> ChromaServer:
    return chroma_listings


def base_env(redis_server: Any, chroma: ChromaServer, tmp: Path, **more: Any) -> dict[str, str]:
    return clean_env(redis_url=redis_server.url, chroma_host=chroma.host, chroma_port=chroma.port,
                     usage_db_file=tmp / "usage.db", audit_file=tmp / "audit" / "audit.jsonl",
                     gateway_keys_file=tmp / "keys.db", ai_rate_limit_rpm=100_000, ai_rate_limit_tpm=10**8,
                     gateway_global_rpm=100_000, gateway_global_tpm=10**9, describe_cache_enabled="false", **more)


@dataclass
class Sent:
    request_id: str
    started: float
    ended: float
    status: int | None  # None: no answer (the connection failed)
    complete: bool


def _load(port: int, stop: threading.Event, out: list[Sent]) -> None:
    """One client: invokes and streams back to back on a keep-alive connection, reconnecting after a failure,
    until `stop` or until the server refuses connections."""
    conn, n = Conn(port), 0
    while not stop.is_set():
        path = "/chat/stream" if n % 2 else "/chat/invoke"
        rid, t0 = uuid.uuid4().hex, time.monotonic()
        n += 1
        try:
            status, _, body = conn.post(path, ASK, request_id=rid)
        except OSError:  # refused, reset, closed while waiting: not answered
            out.append(Sent(rid, t0, time.monotonic(), None, False))
            conn.close()
            conn = Conn(port)
            try:
                conn.request("GET", "/healthz")
            except OSError:
                return  # nothing accepts connections any more
            continue
        complete = b"event: end" in body if path.endswith("stream") else b'"output"' in body
        out.append(Sent(rid, t0, time.monotonic(), status, complete))
    conn.close()


def _until_draining(probe: Conn, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = probe.request("GET", "/readyz")
        if status == 503:
            assert json.loads(body)["draining"] is True
            return
        assert status == 200 and time.monotonic() < deadline, "/readyz did not turn 503 in time"
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_load_loses_nothing(workers: int, redis_server: Any, chroma: ChromaServer,
                                        fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    # Each answer takes ~1.4 s (streams: 4 chunks 0.4 s apart), so some are always in flight.
    fake_openai.always("gpt-4o-mini", Reply("an answer in four parts", first_token_delay=0.2, chunk_delay=0.4))
    env = base_env(redis_server, chroma, tmp_path, openai_api_key="sk-test-" + "k3y" * 10,
                   openai_base_url=fake_openai.url, local_model_enabled="false", ai_max_retries=0,
                   shutdown_delay_s=DELAY_S, graceful_timeout_s=GRACEFUL_S)
    sent: list[Sent] = []
    stop = threading.Event()
    with serve(env, workers=workers, log=tmp_path / "serve.log") as served:
        clients = [threading.Thread(target=_load, args=(served.port, stop, sent)) for _ in range(8)]
        for c in clients:
            c.start()
        time.sleep(2.0)
        probes = [c for conns in served.pinned(per_worker=1).values() for c in conns]
        signalled = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        for probe in probes:  # answered within SHUTDOWN_DELAY_S (the parent passes the signal on within 0.5 s)
            _until_draining(probe, timeout=DELAY_S - 0.5)
        code = served.proc.wait(timeout=DELAY_S + GRACEFUL_S + 30)
        exited = time.monotonic()
        stop.set()
        for c in clients:
            c.join(timeout=30)
        log = served.tail()
    # One process: uvicorn re-raises the signal once shut down (exit by SIGTERM); the workers' parent returns 0.
    assert code == (0 if workers > 1 else -signal.SIGTERM), log
    assert exited - signalled < DELAY_S + GRACEFUL_S, log
    ok = [s for s in sent if s.status == 200]
    assert ok and all(s.complete for s in ok)  # every 200 carried its whole answer (streams up to `end`)
    handover = signalled + DELAY_S  # the socket closes then (up to 0.5 s later with workers)
    assert [s for s in ok if s.started < signalled < s.ended]  # in flight at the signal: finished
    assert [s for s in ok if signalled < s.started < handover]  # taken during the delay
    assert [s for s in ok if s.started < handover and s.ended > handover + 0.5]  # in flight at the close: finished
    with sqlite3.connect(tmp_path / "usage.db") as db:
        recorded = Counter(rid for (rid,) in db.execute("SELECT request_id FROM usage_requests"))
    assert all(recorded[s.request_id] == 1 for s in ok), [s for s in ok if recorded[s.request_id] != 1][:3]
    audit = tmp_path / "audit" / "audit.jsonl"
    done = subprocess.run([sys.executable, "-m", "cli", "audit", "verify", str(audit)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert {s.request_id for s in ok} <= {json.loads(line)["request_id"] for line in audit.read_text().splitlines()}


def test_drain_hands_the_signal_over_once_and_a_second_signal_stops_the_wait() -> None:
    services = SimpleNamespace(draining=False)
    handed: list[int] = []
    drain = Drain(services, delay_s=30)
    on_term = drain._handler(lambda sig, frame: handed.append(sig))
    on_term(signal.SIGTERM, None)
    assert services.draining and handed == []  # draining; uvicorn not told yet (the delay)
    on_term(signal.SIGTERM, None)
    assert handed == [signal.SIGTERM] and drain._timer is None  # a second signal: at once, the timer cancelled
    quick = Drain(SimpleNamespace(draining=False), delay_s=0)
    quick._handler(lambda sig, frame: handed.append(sig))(signal.SIGINT, None)
    assert handed == [signal.SIGTERM, signal.SIGINT]


def test_drain_holds_back_sse_starlettes_exit_event() -> None:
    """sse-starlette patches uvicorn's handler to end every open stream at a signal; draining lets them finish,
    while uvicorn itself is told to shut down."""
    import anyio
    import uvicorn
    from sse_starlette.sse import AppStatus

    server = uvicorn.Server(uvicorn.Config(app=lambda *a: None))
    assert "AppStatus" in getattr(server.handle_exit, "__qualname__", "")  # the patched handler, as bound

    async def check() -> None:
        event = anyio.Event()
        AppStatus.should_exit_event = event
        Drain(SimpleNamespace(draining=False))._handler(server.handle_exit)(signal.SIGTERM, None)
        assert server.should_exit  # uvicorn stops accepting and waits for in-flight requests
        assert not event.is_set() and AppStatus.should_exit_event is event and not AppStatus.should_exit

    try:
        anyio.run(check)
    finally:
        AppStatus.should_exit_event = None  # type: ignore[assignment]
        AppStatus.should_exit = False
