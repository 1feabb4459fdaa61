"""The real embedded model (SmolLM2-135M on llama.cpp) behind /chat, over HTTP and through RemoteRunnable.

The model is weak: these tests check structure (non-empty text, the answer then the listings' cards, over
several stream chunks), never the model's own facts (tests/chains/assistant checks that none is invented).
"""

from __future__ import annotations

import json

import httpx
import pytest
from langserve import RemoteRunnable

from server import create_app
from tests.conftest import LiveServer, make_settings

ASK = {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]}


@pytest.fixture(scope="module")
def live(local_llm: str):  # type: ignore[no-untyped-def]
    settings = make_settings(local_model_url=local_llm, local_model_max_tokens=48)
    with LiveServer(create_app(settings)) as server:
        yield server


def test_invoke_over_http(live: LiveServer) -> None:
    r = httpx.post(f"{live.url}/chat/invoke", json={"input": ASK}, timeout=120)
    assert r.status_code == 200
    assert isinstance(r.json()["output"], str) and r.json()["output"].strip()


def test_stream_over_http_sends_several_chunks(live: LiveServer) -> None:
    with httpx.stream("POST", f"{live.url}/chat/stream", json={"input": ASK}, timeout=120) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    pieces = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    strings = [p for p in pieces if isinstance(p, str) and p]
    assert len(strings) >= 2 and "Listing lst-" in strings[-1]  # the text, then the cards
    assert "event: end" in text


def test_remote_runnable_client(live: LiveServer) -> None:
    chat: RemoteRunnable = RemoteRunnable(f"{live.url}/chat/")
    answer = chat.invoke(ASK)
    assert isinstance(answer, str) and answer.strip()
    chunks = [c for c in chat.stream(ASK) if c]
    assert len(chunks) >= 2 and all(isinstance(c, str) for c in chunks) and "Listing lst-" in chunks[-1]


def test_readyz_reports_the_local_model(live: LiveServer) -> None:
    body = httpx.get(f"{live.url}/readyz").json()
    assert body["ready"] is True and body["parts"]["local_model"] is True
