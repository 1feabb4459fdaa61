"""The customer chat assistant, served at `/chat`.

Input: `{"messages": [{"role": "user"|"assistant", "content": str}, ...]}`, the last from the user. The
chat playground sends LangChain's shape (`{"type": "human"|"ai", "content": ...}`), accepted too. Output:
the assistant's text (a string: the chat playground rejects an AIMessage output on this stack).

    messages -> guard (screen user turns: block = 400 before any model call; flag = fenced as data)
             -> [system prompt from prompts/<preset>.yaml, with this request's canary] + history
             -> model (with fallbacks) -> text -> leak guard (canary or system prompt in the answer = refusal)

The prompt, the canary and the leak guard are per request; the chain (`ChatChain`) is built once and makes
them on each call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableWithFallbacks
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chains.guard import GuardConfig, guard_messages, make_canary, redact_leak
from chains.guard.leak import LeakStream
from chains.prompting import PromptFile, PromptStore
from errors import InputRejected
from gateway import context

__all__ = ["ChatChain", "ChatMessage", "build_chat_chain", "chat_precheck", "make_chat_input", "screen_chat_input"]

# Characters a stream always holds back for the leak check, besides what might become a leak (a word being
# written, a run shared with the system prompt, a possible canary start: chains/guard/canary.py LeakCheck.safe_end).
_HOLDBACK = 0
_MIN_WORDS = 12  # a shared run of this many words with the system prompt is a leak
# The last screening of this request: (its RequestContext, (guard, turns), screened messages). Set by the
# stream pre-check in the request's task; the stream's task starts from a copy of that context.
_SCREENED: ContextVar[tuple[Any, Any, list[BaseMessage]] | None] = ContextVar("chat_screened", default=None)
_ROLE = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}


class ChatMessage(BaseModel):
    """One turn. Give `role` (user, assistant) or LangChain's `type` (human, ai)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"] | None = None
    type: Literal["human", "ai"] | None = None
    content: str

    @model_validator(mode="after")
    def _one_role(self) -> ChatMessage:
        if self.role is None and self.type is None:
            raise ValueError("each message needs a 'role': 'user' or 'assistant'")
        if self.role is not None and self.type is not None and _ROLE[self.role] != _ROLE[self.type]:
            raise ValueError("'role' and 'type' disagree")
        return self

    @property
    def speaker(self) -> str:
        return _ROLE[self.role or self.type or "user"]


def make_chat_input(*, max_messages: int, max_chars: int) -> type[BaseModel]:
    """Builds the `/chat` input model with the configured limits (they show in the JSON schema)."""

    class ChatInput(BaseModel):
        """A conversation, oldest first; the last message is the customer's."""

        messages: list[ChatMessage] = Field(..., min_length=1, max_length=max_messages)

        @model_validator(mode="after")
        def _check(self) -> ChatInput:
            if self.messages[-1].speaker != "user":
                raise ValueError("the last message must be from the user")
            for i, m in enumerate(self.messages):
                if not m.content.strip():
                    raise ValueError(f"message {i} is empty")
                if len(m.content) > max_chars:
                    raise ValueError(f"message {i} is {len(m.content)} characters long; the limit is {max_chars}")
            return self

    return ChatInput


def _field(data: Any, name: str) -> Any:
    return data.get(name) if isinstance(data, dict) else getattr(data, name)


def _history(data: Any) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for m in _field(data, "messages"):
        msg = m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)
        out.append(HumanMessage(msg.content) if msg.speaker == "user" else AIMessage(msg.content))
    return out


def screen_chat_input(data: Any, *, guard: GuardConfig) -> list[BaseMessage]:
    """Screens the customer's turns; records the verdict on the request's audit context.

    A stream's pre-check (`chat_precheck`) and the chain screen the same turns in the same request: the
    second call reuses the first one's result (same request context, turns and guard) instead of screening
    again. Without a request context nothing is reused.

    Args:
        data: the chat input (model or dict).
        guard: the guard's configuration.

    Returns:
        The conversation as LangChain messages, user text sanitized (and fenced as data when flagged).

    Raises:
        InputRejected: a user turn is blocked ("guard_blocked") or too long ("guard_too_long").
    """
    history = _history(data)
    ctx = context.current()
    key = (guard, tuple((m.type, m.content) for m in history))
    done = _SCREENED.get()
    if ctx is not None and done is not None and done[0] is ctx and done[1] == key:
        return done[2]
    try:
        screened, verdict = guard_messages(history, source="chat", config=guard)
    except InputRejected as exc:
        if ctx is not None:
            ctx.guard_action, ctx.guard_reasons = "block", [exc.code]
        raise
    if ctx is not None:
        ctx.guard_action, ctx.guard_reasons = verdict.action, list(verdict.reasons)
    out = [m for m in screened if isinstance(m, BaseMessage)]
    if ctx is not None:
        _SCREENED.set((ctx, key, out))
    return out


def chat_precheck(guard: GuardConfig) -> Callable[[Any], Awaitable[None]]:
    """The check `server.py` runs before a chat stream opens: the guard's screening of the customer's turns.

    Malformed input is left to LangServe's validation (422); a blocked turn raises `InputRejected` (400).
    """

    async def check(data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("messages"), list):
            try:
                screen_chat_input(data, guard=guard)
            except (ValueError, TypeError):
                return

    return check


@dataclass(frozen=True)
class _Turn:
    """One request's model input and what the leak guard checks the answer against."""

    messages: list[BaseMessage]
    canary: str
    system: str


class ChatChain(Runnable[Any, str]):
    """The chat runnable: one object built at start-up, the per-request parts (canary, prompt) made per call.

    A single run (`chat`) whose child is the model run: the steps (screen, prompt, model, text, leak guard)
    are plain code rather than a composed sequence, because every composed step costs LangChain's config
    merging and callback bookkeeping on every request (measured in bench/overhead.py: about half the CPU the
    service added over a bare route). Callbacks, `stream_log` and the playground see the same run tree as
    before: the `chat` run, with the prompt name and version in its metadata, and the model run inside.
    """

    name: str | None = "chat"

    def __init__(
        self, *, model: Runnable, prompts: PromptStore, prompt_name: str, input_type: type[BaseModel],
        guard: GuardConfig, today: Callable[[], dt.date],
    ) -> None:
        self.model, self.prompts, self.prompt_name = model, prompts, prompt_name
        self.input_type, self.guard, self.today = input_type, guard, today
        # The fallbacks are tried here rather than by RunnableWithFallbacks, which adds a run and a task per
        # call; the order and the errors that move on to the next model are the same.
        self.models, self.fallback_on = _fallbacks(model)

    @property
    def InputType(self) -> type[BaseModel]:
        return self.input_type

    @property
    def OutputType(self) -> type[str]:
        return str

    # --- the per-request parts ---
    def _start(self, config: RunnableConfig | None) -> tuple[RunnableConfig, PromptFile]:
        """The prompt file (a stat; a parse after an edit) and the run's config with its name and version."""
        prompt = self.prompts.get(self.prompt_name)
        config = ensure_config(config)
        meta = {**config.get("metadata", {}), "prompt": self.prompt_name, "prompt_version": prompt.version}
        return {**config, "metadata": meta}, prompt

    def _turn(self, data: Any, prompt: PromptFile) -> _Turn:
        history = screen_chat_input(data, guard=self.guard)
        canary = make_canary()
        system, _ = prompt.render(today=self.today().isoformat(), canary=canary)
        return _Turn([SystemMessage(system), *history], canary, system)

    def _leak_stream(self, turn: _Turn) -> LeakStream:
        return LeakStream(turn.canary, turn.system, _MIN_WORDS, _HOLDBACK)

    def _answer(self, turn: _Turn, message: Any) -> str:
        text, _ = redact_leak(_text(message), canary=turn.canary, system_prompt=turn.system, min_words=_MIN_WORDS)
        return text

    # --- the model, then its fallbacks ---
    def _call(self, messages: list[BaseMessage], config: RunnableConfig) -> Any:
        first: BaseException | None = None
        for model in self.models:
            try:
                return model.invoke(messages, config)
            except self.fallback_on as exc:
                first = first or exc
        assert first is not None
        raise first

    async def _acall(self, messages: list[BaseMessage], config: RunnableConfig) -> Any:
        first: BaseException | None = None
        for model in self.models:
            try:
                return await model.ainvoke(messages, config)
            except self.fallback_on as exc:
                first = first or exc
        assert first is not None
        raise first

    def _stream(self, messages: list[BaseMessage], config: RunnableConfig) -> Iterator[Any]:
        """A failure before the first chunk moves on to the next model; after it, the error ends the stream."""
        first: BaseException | None = None
        for model in self.models:
            stream = model.stream(messages, config)
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except self.fallback_on as exc:
                first = first or exc
                continue
            yield chunk
            yield from stream
            return
        assert first is not None
        raise first

    async def _astream(self, messages: list[BaseMessage], config: RunnableConfig) -> AsyncIterator[Any]:
        first: BaseException | None = None
        for model in self.models:
            stream = model.astream(messages, config).__aiter__()
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except self.fallback_on as exc:
                first = first or exc
                continue
            yield chunk
            async for chunk in stream:
                yield chunk
            return
        assert first is not None
        raise first

    # --- invoke ---
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        config, prompt = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        try:
            turn = self._turn(input, prompt)
            out = self._answer(turn, self._call(turn.messages, patch_config(config, callbacks=run.get_child())))
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(out)
        return out

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        config, prompt = self._start(config)
        run = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        try:
            turn = self._turn(input, prompt)
            message = await self._acall(turn.messages, patch_config(config, callbacks=run.get_child()))
            out = self._answer(turn, message)
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(out)
        return out

    # --- streams: text chunks behind the leak guard's hold-back window ---
    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str]:
        config, prompt = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        sent: list[str] = []
        try:
            turn = self._turn(input, prompt)
            leak = self._leak_stream(turn)
            for chunk in self._stream(turn.messages, patch_config(config, callbacks=run.get_child())):
                for out in leak.feed(_text(chunk)):
                    sent.append(out)
                    yield out
            for out in leak.close():
                sent.append(out)
                yield out
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end("".join(sent))

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[str]:
        config, prompt = self._start(config)
        run = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        sent: list[str] = []
        try:
            turn = self._turn(input, prompt)
            leak = self._leak_stream(turn)
            async for chunk in self._astream(turn.messages, patch_config(config, callbacks=run.get_child())):
                for out in leak.feed(_text(chunk)):
                    sent.append(out)
                    yield out
            for out in leak.close():
                sent.append(out)
                yield out
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end("".join(sent))


def _fallbacks(model: Runnable) -> tuple[list[Runnable], tuple[type[BaseException], ...]]:
    """The models to try in order, and the errors that move on to the next one."""
    if isinstance(model, RunnableWithFallbacks) and model.exception_key is None:
        return [model.runnable, *model.fallbacks], tuple(model.exceptions_to_handle)
    return [model], ()


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: keep the text ones
        parts = [p if isinstance(p, str) else p.get("text", "") for p in content if isinstance(p, str | dict)]
        return "".join(str(p) for p in parts)
    return str(content)


def build_chat_chain(
    *,
    model: Runnable,
    prompts: PromptStore,
    prompt_name: str,
    input_type: type[BaseModel],
    guard: GuardConfig,
    today: Callable[[], dt.date] = dt.date.today,
) -> Runnable:
    """Builds the chat runnable (`ChatChain`).

    Args:
        model: the chat model with its fallbacks (`chains.models.build_chat_model`).
        prompts: where prompt files are loaded from; read on every call, so edits apply at once.
        prompt_name: the system prompt's file name (from the chat preset).
        input_type: the input model (`make_chat_input`).
        guard: the guard's configuration (input screening).
        today: the date shown to the model (a seam for tests).
    """
    return ChatChain(
        model=model, prompts=prompts, prompt_name=prompt_name, input_type=input_type, guard=guard, today=today
    )
