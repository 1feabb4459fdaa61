"""LangServe's own Python client (`langserve.RemoteRunnable`) against the live service with an API key:
invoke, batch and stream, as an app calls them; a refused input and a missing key surface as HTTP errors
carrying our error code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable

from tests.clients.conftest import INJECTION, INVENTED, Service
from tests.fake_openai import FakeOpenAI

ASK = {"messages": [{"role": "user", "content": "Who inspects roofs in Troy?"}]}


def remote(service: Service, route: str, *, keyed: bool = True) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(f"{service.url}/{route}/", headers=service.headers if keyed else None, timeout=60)


def test_invoke_search(service: Service) -> None:
    out = remote(service, "search").invoke({"query": "roof inspection near Troy", "limit": 3})
    assert 0 < len(out["results"]) <= 3 and out["in_service_area"] is True
    assert all(r["city"] and r["price_from_usd"] is not None for r in out["results"])


def test_batch_guard(service: Service) -> None:
    allow, block = remote(service, "guard").batch([{"text": "roof inspection in Troy", "source": "search"},
                                                   {"text": INJECTION, "source": "chat"}])
    assert allow["action"] == "allow" and block["action"] == "block" and block["reasons"]


def test_stream_chat(service: Service, answering: FakeOpenAI) -> None:
    chunks = list(remote(service, "chat").stream(ASK))
    text = "".join(chunks)
    # ANSWER invents a price and names no listing: the client gets the listings' own answer and the cards
    assert len(chunks) > 1 and "Listing lst-" in text and INVENTED not in text
    assert text == remote(service, "chat").invoke(ASK)


async def test_async_invoke_and_stream(service: Service, answering: FakeOpenAI) -> None:
    assistant = remote(service, "assistant")
    out = await assistant.ainvoke(ASK)
    assert len(out["listings"]) == 3 and INVENTED not in out["text"]
    chunks = [c async for c in assistant.astream(ASK)]
    assert [x["id"] for x in chunks[0]["listings"]] == [x["id"] for x in out["listings"]]  # the listings first
    assert "".join(c.get("text", "") for c in chunks) == out["text"]


@pytest.mark.parametrize("call", ["invoke", "stream"])
def test_a_guard_block_is_an_http_error_with_our_code(service: Service, answering: FakeOpenAI, call: str) -> None:
    chat = remote(service, "chat")
    blocked = {"messages": [{"role": "user", "content": INJECTION}]}
    with pytest.raises(httpx.HTTPStatusError) as caught:
        chat.invoke(blocked) if call == "invoke" else list(chat.stream(blocked))
    response = caught.value.response
    assert response.status_code == 400 and response.headers["X-Error-Code"] == "guard_blocked"
    if call == "invoke":  # a stream's body is closed by then: the header carries the code
        assert "guard_blocked" in str(caught.value)
    assert answering.count() == 0  # refused before any model call


def test_without_the_key_it_is_401(service: Service) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        remote(service, "search", keyed=False).invoke({"query": "roof inspection near Troy"})
    assert caught.value.response.status_code == 401 and "missing_api_key" in str(caught.value)
