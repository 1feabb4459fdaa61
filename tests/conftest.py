"""Shared fixtures: settings built per test, the fake OpenAI server, the real local model, live servers."""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chains.local_llm import LocalModelServer, free_port
from settings import Settings
from tests.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-test-" + "k3y" * 10  # looks real to validation, planted to prove it never leaks
_TMP = tempfile.mkdtemp(prefix="skymarket-tests-")  # per-test-session files (API-key stores)
_SEQ = itertools.count()


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's environment leaks into a test's Settings."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "AI_", "SKYMARKET_", "LOCAL_MODEL_", "CHROMA_", "REDIS_URL", "DATABASE_URL",
                            "DATA_ENCRYPTION_KEY", "AUDIT_TEXT")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _usage_files(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's usage ledger, spool and audit trail live in its own temp folder, never under data/."""
    d = tmp_path_factory.mktemp("usage")
    monkeypatch.setenv("USAGE_DB_FILE", str(d / "usage.db"))
    monkeypatch.setenv("USAGE_SPOOL_DIR", str(d / "usage_spool"))
    monkeypatch.setenv("AUDIT_FILE", str(d / "audit" / "audit.jsonl"))
    # no app of a test prunes on its own (the eval reports' folder is the checkout's): the retention tests run it
    monkeypatch.setenv("RETENTION_INTERVAL_S", "0")


@pytest.fixture(autouse=True)
def _reset_sse_event() -> None:
    """sse-starlette 1.x keeps an exit event bound to the first event loop; each test gets a new loop."""
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit_event = None  # type: ignore[assignment]


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test: no .env file, the local model off unless asked for."""
    base: dict[str, Any] = {"local_model_enabled": False}
    # A fresh, empty API-key store per Settings: never the developer's data/keys.db.
    base["gateway_keys_file"] = Path(_TMP) / f"keys-{next(_SEQ)}.db"
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server


@pytest.fixture
def openai_settings(fake_openai: FakeOpenAI) -> Settings:
    """OpenAI configured against the fake server; its `local` model answers on the same fake server."""
    return make_settings(
        openai_api_key=FAKE_KEY,
        openai_base_url=fake_openai.url,
        local_model_enabled=True,
        local_model_url=fake_openai.url,
        ai_request_timeout=2000,
        ai_max_retries=0,
        local_model_timeout_s=2,
    )


@pytest.fixture(scope="session")
def local_llm() -> Iterator[str]:
    """The real embedded model (llama.cpp, one thread), started once for the session; yields its /v1 URL."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    server = LocalModelServer(model_path=s.local_model_path, sha256=s.local_model_sha256, threads=1, ctx=2048)
    server.start()
    yield server.base_url
    server.stop()


class LiveServer:
    """The app served by a real uvicorn on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real redis-server on a free port for the whole session (tests/services.py)."""
    from tests.services import RedisServer

    server = RedisServer().start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real throw-away PostgreSQL cluster for the whole session; `.url` is a SQLAlchemy URL."""
    from tests.services import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chroma_listings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A `chroma run` server (tests/services.py) whose `listings` collection holds every 16th listing (40):
    enough for /search, quick to embed. For served processes (several workers need a Chroma server)."""
    from retrieval.embeddings import MiniLMEmbeddings
    from retrieval.ingest import ingest
    from retrieval.store import build_vectorstore
    from tests.services import ChromaServer

    server = ChromaServer(tmp_path_factory.mktemp("chroma-listings")).start()
    rows = (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines()[::16]
    subset = tmp_path_factory.mktemp("listings-subset") / "listings.jsonl"
    subset.write_text("\n".join(rows) + "\n", encoding="utf-8")
    settings = make_settings(chroma_host=server.host, chroma_port=server.port)
    try:
        ingest(store=build_vectorstore(settings=settings, embeddings=MiniLMEmbeddings()), path=subset, progress=False)
        yield server
    finally:
        server.stop()
