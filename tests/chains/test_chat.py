"""The chat chain on its own (no HTTP): strings out on invoke and streams, one `chat` run with the prompt
version in its metadata and the model run inside it, the guard's verdict used once per request."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel

import chains.chat_input as chat_input
from chains.chat import build_chat_chain, chat_precheck, make_chat_input
from chains.guard import GuardConfig
from chains.prompting import PromptStore
from gateway import context
from gateway.context import RequestContext
from settings import ROOT

ANSWER = "Three pilots in Novi offer roof inspections; the cheapest is $180."
ASK = {"messages": [{"role": "user", "content": "Who can inspect my roof in Novi?"}]}


class Runs(BaseCallbackHandler):
    """Records the runs it sees: (kind, name, run id, parent id, metadata)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, UUID, UUID | None, dict[str, Any]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       metadata: dict[str, Any] | None = None, **kw: Any) -> None:
        self.seen.append(("chain", str(kw.get("name")), run_id, parent_run_id, metadata or {}))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kw: Any) -> None:
        self.seen.append(("model", str(kw.get("name")), run_id, parent_run_id, {}))


def _chain(model: Any) -> Any:
    return build_chat_chain(
        model=model, prompts=PromptStore(ROOT / "prompts"), prompt_name="chat",
        input_type=make_chat_input(max_messages=20, max_chars=4000), guard=GuardConfig(),
    )


def test_invoke_and_stream_give_the_answer_as_text() -> None:
    chain = _chain(FakeListChatModel(responses=[ANSWER, ANSWER]))
    assert chain.invoke(ASK) == ANSWER
    pieces = list(chain.stream(ASK))
    assert all(isinstance(p, str) for p in pieces) and "".join(pieces) == ANSWER


async def test_async_paths_match() -> None:
    chain = _chain(FakeListChatModel(responses=[ANSWER, ANSWER]))
    assert await chain.ainvoke(ASK) == ANSWER
    assert "".join([p async for p in chain.astream(ASK)]) == ANSWER


def test_one_chat_run_with_the_prompt_version_and_the_model_run_inside() -> None:
    runs = Runs()
    chain = _chain(FakeListChatModel(responses=[ANSWER]))
    chain.invoke(ASK, {"callbacks": [runs]})
    [root] = [r for r in runs.seen if r[3] is None]
    assert root[0] == "chain" and root[1] == "chat"
    version = PromptStore(ROOT / "prompts").get("chat").version
    assert root[4]["prompt"] == "chat" and root[4]["prompt_version"] == version
    assert [r[0] for r in runs.seen if r[3] == root[2]] == ["model"]


def test_schemas_are_the_chat_input_and_a_string() -> None:
    chain = _chain(FakeListChatModel(responses=[ANSWER]))
    assert "messages" in chain.get_input_schema().model_json_schema()["properties"]
    assert chain.get_output_schema().model_json_schema()["type"] == "string"


async def test_a_stream_screens_the_turns_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = chat_input.guard_messages

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(chat_input, "guard_messages", counting)
    chain = _chain(FakeListChatModel(responses=[ANSWER] * 3))
    check = chat_precheck(GuardConfig())

    async def request(body: dict[str, Any], then: dict[str, Any] | None = None) -> str:
        """As server.py runs a stream: in the request's context, the pre-check, then the chain."""
        token = context.bind(RequestContext(request_id="req-00000001", route="chat", endpoint="stream"))
        try:
            await check(body)
            return "".join([p async for p in chain.astream(then or body)])
        finally:
            context.reset(token)

    assert await asyncio.create_task(request(ASK), context=contextvars.copy_context()) == ANSWER
    assert len(calls) == 1
    assert await asyncio.create_task(request(ASK), context=contextvars.copy_context()) == ANSWER
    assert len(calls) == 2  # a new request screens again
    other = {"messages": [{"role": "user", "content": "And in Troy?"}]}
    assert await request(ASK, then=other) == ANSWER
    assert len(calls) == 4  # different turns are screened, whatever was screened before
    assert await chain.ainvoke(ASK) == ANSWER and await chain.ainvoke(ASK) == ANSWER
    assert len(calls) == 6  # without a request context nothing is reused


class Down(FakeListChatModel):
    """A model that fails with `error` before answering (and counts its calls)."""

    error: type[Exception] = ValueError
    calls: int = 0

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        raise self.error("provider down")

    def _stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        raise self.error("provider down")
        yield  # a generator

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        raise self.error("provider down")
        yield  # an async generator


async def test_fallbacks_answer_on_every_path_and_only_for_the_listed_errors() -> None:
    down = Down(responses=["never"])
    chain = _chain(down.with_fallbacks([FakeListChatModel(responses=[ANSWER] * 4)], exceptions_to_handle=(ValueError,)))
    assert chain.invoke(ASK) == ANSWER and await chain.ainvoke(ASK) == ANSWER
    assert "".join(chain.stream(ASK)) == ANSWER
    assert "".join([p async for p in chain.astream(ASK)]) == ANSWER
    assert down.calls == 4
    other = Down(responses=["never"], error=TypeError)
    chain = _chain(other.with_fallbacks([FakeListChatModel(responses=[ANSWER])], exceptions_to_handle=(ValueError,)))
    with pytest.raises(TypeError):
        await chain.ainvoke(ASK)
    with pytest.raises(TypeError):
        _ = [p async for p in chain.astream(ASK)]
    all_down = _chain(Down(responses=["x"]).with_fallbacks([Down(responses=["y"])], exceptions_to_handle=(ValueError,)))
    with pytest.raises(ValueError, match="provider down"):
        await all_down.ainvoke(ASK)
