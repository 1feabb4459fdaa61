"""`skymarket serve --workers 2` as one service, against a real Redis, PostgreSQL and `chroma run` server, with
the fake OpenAI server for the models: every request (invokes, streams, searches) in the ledger exactly once,
in one verifiable audit chain and in /metrics, whichever worker served it; a key revoked from the CLI refused
by every worker within the refresh interval; a budget spent through one worker stops the other; the global
requests- and tokens-per-minute limits exact across the workers. Requests go to the worker a test chooses
(tests/serving/support.py). The embedded local model runs once, in the parent, and both workers answer with it
(recorded under its configured name, priced). Several workers without Redis or a Chroma server refuse to start.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from redis import Redis
from sqlalchemy import create_engine, func, select, text

from gateway.keys import KeyStore
from gateway.ledger import usage_table
from tests.conftest import FAKE_KEY, ROOT, make_settings
from tests.fake_openai import FakeOpenAI, Reply
from tests.services import ChromaServer
from tests.serving.support import Conn, Served, clean_env, serve

pytestmark = pytest.mark.timeout(900)  # real processes: a loaded 2-core machine starts them slowly
ASK = {"input": {"messages": [{"role": "user", "content": "Hi!"}]}}
SEARCH = {"input": {"query": "roof inspection near Troy", "limit": 3}}
# The embedded model is asked only when there are listings to cite ("Hi!" gets the assistant's own greeting); the
# Chroma server holds every 16th listing, among them a roof inspector in Farmington Hills (lst-0577).
ASK_LISTINGS = {"input": {"messages": [{"role": "user", "content": "Who can inspect my roof in Farmington Hills?"}]}}
GUARD = {"input": {"text": "Can someone film my wedding in Novi?", "source": "chat"}}
GLOBAL_RPM, GLOBAL_TPM, REFRESH_S = 40, 5000, 1.0


@pytest.fixture(scope="module")
def chroma(chroma_listings: ChromaServer) -> ChromaServer:
    return chroma_listings


@pytest.fixture(scope="module")
def database(postgres_server: Any) -> Iterator[str]:
    name = "workers_" + uuid.uuid4().hex[:10]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    admin.dispose()


@pytest.fixture(scope="module")
def keys(database: str) -> dict[str, str]:
    store = KeyStore(create_engine(database))
    store.create_table()
    everything = ["chat", "search", "describe", "guard", "admin"]
    return {"web": store.create(name="web", scopes=everything), "tpm": store.create(name="tpm", scopes=["chat"]),
            "revoked": store.create(name="revoked", scopes=["guard"]),
            "spender": store.create(name="spender", scopes=["chat"], daily_budget_usd=1e-9)}


@pytest.fixture(scope="module")
def service(redis_server: Any, chroma: ChromaServer, database: str, keys: dict[str, str],
            fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    fake_openai_server.reset()
    tmp = tmp_path_factory.mktemp("workers")
    env = clean_env(
        skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai_server.url,
        local_model_enabled="false", ai_max_retries=0, redis_url=redis_server.url, database_url=database,
        chroma_host=chroma.host, chroma_port=chroma.port, audit_file=tmp / "audit" / "audit.jsonl",
        gateway_keys_refresh_s=REFRESH_S, gateway_budget_cache_s=0.5, gateway_guard_global_rpm=GLOBAL_RPM,
        gateway_global_tpm=GLOBAL_TPM, ai_rate_limit_rpm=100_000, ai_rate_limit_tpm=10**7,
        describe_cache_enabled="false",
    )
    with serve(env, workers=2, log=tmp / "serve.log") as served:
        yield served


@pytest.fixture
def fresh_limits(redis_server: Any, fake_openai_server: FakeOpenAI) -> None:
    """Each check starts with empty limit windows (one minute would carry the last check's requests over)."""
    time.sleep(0.2)  # settlements of the last check's requests have reached Redis
    Redis.from_url(redis_server.url).flushdb()
    fake_openai_server.reset()


def _ledger_ids(database: str) -> Counter[str]:
    engine = create_engine(database)
    with engine.connect() as conn:
        rows = conn.execute(select(usage_table.c.request_id, func.count()).group_by(usage_table.c.request_id))
        out = Counter({rid: n for rid, n in rows})
    engine.dispose()
    return out


def _until(check: Any, timeout: float, every: float = 0.2) -> float:
    """Polls `check()` until it is true; returns the seconds it took (fails after `timeout`)."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        time.sleep(every)
    return time.monotonic() - t0


def test_every_request_recorded_once_in_ledger_audit_and_metrics(
        service: Served, keys: dict[str, str], database: str, fresh_limits: None) -> None:
    pinned = service.pinned(per_worker=2, key=keys["web"])
    sent: dict[str, tuple[int, int]] = {}  # request id -> (worker, status)

    def work(conn: Conn) -> None:
        for path, body in [("/chat/invoke", ASK), ("/chat/stream", ASK), ("/search/invoke", SEARCH),
                           ("/guard/invoke", GUARD), ("/chat/invoke", ASK)]:
            rid = uuid.uuid4().hex
            status, _, data = conn.post(path, body, request_id=rid)
            assert status == 200, data[:300]
            if path.endswith("stream"):
                assert b"event: end" in data
            sent[rid] = (conn.worker or 0, status)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, [c for conns in pinned.values() for c in conns]))
    assert {w for w, _ in sent.values()} == set(pinned)  # both workers served
    _until(lambda: set(_ledger_ids(database)) >= set(sent), timeout=10)
    assert _ledger_ids(database) == Counter(dict.fromkeys(sent, 1))  # each exactly once, nothing else

    audit = service.log.parent / "audit" / "audit.jsonl"
    _until(lambda: audit.exists() and len(audit.read_text().splitlines()) >= len(sent), timeout=10)
    done = subprocess.run([sys.executable, "-m", "cli", "audit", "verify", str(audit)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and f"ok: {len(sent)} records" in done.stdout, done.stdout
    assert {json.loads(line)["request_id"] for line in audit.read_text().splitlines()} == set(sent)

    conn = pinned[min(pinned)][0]
    status, _, body = conn.request("GET", "/metrics")
    assert status == 200
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
                  if line.startswith("skymarket_requests_total{"))
    assert counted == len(sent)  # both workers' requests, whichever worker answers /metrics


def test_a_revoked_key_is_refused_by_every_worker_within_the_refresh(
        service: Served, keys: dict[str, str], database: str, fresh_limits: None) -> None:
    pinned = service.pinned(per_worker=1, key=keys["revoked"])
    conns = [c for cs in pinned.values() for c in cs]
    assert [c.post("/guard/invoke", GUARD)[0] for c in conns] == [200, 200]
    done = subprocess.run([sys.executable, "-m", "cli", "keys", "revoke", "revoked"], cwd=ROOT, capture_output=True,
                          text=True, env=clean_env(database_url=database))
    assert done.returncode == 0, done.stdout + done.stderr
    revoked_at = time.monotonic()
    for conn in conns:
        _until(lambda c=conn: c.post("/guard/invoke", GUARD)[0] == 401, timeout=REFRESH_S + 5)
    assert time.monotonic() - revoked_at < REFRESH_S + 3  # the interval, one table read, the polling
    assert [c.post("/guard/invoke", GUARD)[0] for c in conns] == [401, 401]


def test_a_budget_spent_through_one_worker_stops_the_other(
        service: Served, keys: dict[str, str], fresh_limits: None) -> None:
    pinned = service.pinned(per_worker=1, key=keys["spender"])
    first, second = (pinned[pid][0] for pid in sorted(pinned))
    status, _, body = first.post("/chat/invoke", ASK)
    assert status == 200, body[:300]  # nothing spent yet: it passes, and costs more than the budget
    took = _until(lambda: second.post("/chat/invoke", ASK)[0] == 402, timeout=10, every=0.3)
    assert took < 5  # the writer's batch (0.2 s) + GATEWAY_BUDGET_CACHE_S (0.5 s) + polling, on a loaded machine
    status, _, body = first.post("/chat/invoke", ASK)
    assert status == 402 and json.loads(body)["error"]["code"] == "budget_exceeded"


def _burst(conns: list[Conn], path: str, body: Any) -> list[tuple[int, dict[str, str]]]:
    with ThreadPoolExecutor(len(conns)) as pool:
        return [(s, h) for s, h, _ in pool.map(lambda c: c.post(path, body), conns)]


def test_global_requests_per_minute_are_exact_across_workers(
        service: Served, keys: dict[str, str], fresh_limits: None) -> None:
    pinned = service.pinned(per_worker=6, key=keys["web"])
    conns = [c for cs in pinned.values() for c in cs]
    results: list[tuple[int, dict[str, str]]] = []
    for _ in range(8):  # 96 requests, 12 at a time
        results += _burst(conns, "/guard/invoke", GUARD)
    statuses = Counter(s for s, _ in results)
    assert statuses == {200: GLOBAL_RPM, 429: 96 - GLOBAL_RPM}
    assert {h.get("x-ratelimit-exceeded") for s, h in results if s == 429} == {"global_rpm"}


def test_global_tokens_per_minute_are_exact_across_workers(
        service: Served, keys: dict[str, str], fake_openai_server: FakeOpenAI, fresh_limits: None) -> None:
    # Answers take 3 s: no admitted request settles (gives tokens back) while the burst is admitted.
    fake_openai_server.always("gpt-4o-mini", Reply("slow answer", first_token_delay=3.0))
    pinned = service.pinned(per_worker=5, key=keys["tpm"])
    results = _burst([c for cs in pinned.values() for c in cs], "/chat/invoke", ASK)
    admitted = [h for s, h in results if s == 200]
    refused = [h for s, h in results if s == 429]
    assert len(admitted) + len(refused) == 10 and refused
    assert {h.get("x-ratelimit-exceeded") for h in refused} == {"global_tpm"}
    # Every request reserves the same tokens; the key's own window shows it: the first admitted leaves the most.
    limit = int(admitted[0]["x-ratelimit-limit-tokens"])
    reservation = limit - max(int(h["x-ratelimit-remaining-tokens"]) for h in admitted)
    overhead = make_settings().gateway_prompt_overhead_tokens + (make_settings().preset("chat").max_tokens or 0)
    assert overhead < reservation < overhead + 200  # the prompt + the allowance + the chat preset's max tokens
    assert len(admitted) == GLOBAL_TPM // reservation


def _local_writes(tmp_path: Path) -> Path:
    presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
    presets["chat"]["local"]["answers_with_listings"] = True
    path = tmp_path / "presets.yaml"
    path.write_text(yaml.safe_dump(presets), encoding="utf-8")
    return path


def test_the_local_model_runs_once_for_all_workers(redis_server: Any, chroma: ChromaServer, tmp_path: Path) -> None:
    env = clean_env(redis_url=redis_server.url, chroma_host=chroma.host, chroma_port=chroma.port,
                    usage_db_file=tmp_path / "usage.db", audit_file=tmp_path / "audit" / "audit.jsonl",
                    gateway_keys_file=tmp_path / "keys.db", local_model_max_tokens=16,  # no OpenAI key: local only
                    presets_file=_local_writes(tmp_path))  # asked with listings (as shipped it is not)
    with serve(env, workers=2, log=tmp_path / "serve.log") as served:
        parent = psutil.Process(served.proc.pid)
        listening = {c.laddr.port for c in parent.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        assert served.port in listening and len(listening) == 2, listening  # the service's socket and llama.cpp's
        pinned = served.pinned(per_worker=1)
        for pid in pinned:
            worker = psutil.Process(pid)
            assert {c.laddr.port for c in worker.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN} == \
                {served.port}  # no model server of its own
        with ThreadPoolExecutor(2) as pool:  # at once: an idle keep-alive connection is closed after 5 s
            answers = list(pool.map(lambda conns: conns[0].post("/chat/invoke", ASK_LISTINGS), pinned.values()))
        for status, _, body in answers:
            assert status == 200 and json.loads(body)["output"].strip(), body[:300]
        assert served.stop() == 0
    with sqlite3.connect(tmp_path / "usage.db") as db:
        models = list(db.execute("SELECT model, priced FROM usage_requests WHERE route = 'chat'"))
    assert models == [("smollm2-135m-instruct", 1)] * 2  # named as the price table knows it (free), not by path


def test_several_workers_need_redis_and_a_chroma_server(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", "serve", "--workers", "2"], cwd=ROOT, capture_output=True,
                          text=True, env=clean_env(usage_db_file=tmp_path / "u.db"), timeout=120)
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr and "CHROMA_HOST" in done.stderr
