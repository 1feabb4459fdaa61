"""The customer chat assistant, served at `/chat`.

Input: `{"messages": [{"role": "user"|"assistant", "content": str}, ...]}`, the last from the user. The
chat playground sends LangChain's shape (`{"type": "human"|"ai", "content": ...}`), accepted too. Output:
the assistant's text (a string: the chat playground rejects an AIMessage output on this stack).

    messages -> guard (screen user turns: block = 400 before any model call; flag = fenced as data)
             -> [system prompt from prompts/<preset>.yaml, with this request's canary] + history
             -> model (with fallbacks) -> text -> leak guard (canary or system prompt in the answer = refusal)

The prompt, the canary and the leak guard are per request, so the chain is built per call by `plan()`; it
streams all the same (a RunnableLambda that returns a Runnable streams that Runnable).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chains.guard import GuardConfig, build_leak_guard, guard_messages, make_canary
from chains.prompting import PromptStore
from errors import InputRejected
from gateway import context

__all__ = ["ChatMessage", "build_chat_chain", "chat_precheck", "make_chat_input", "screen_chat_input"]

# Characters a stream holds back for the leak check: the whole canary (26) and most of a 12-word verbatim run
# never leave; more would delay the first token of every answer (~30 tokens/s on the local model).
_HOLDBACK = 64
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


def _const(value: Any) -> Callable[[Any], Any]:
    async def give(_: Any) -> Any:
        return value

    return give


def screen_chat_input(data: Any, *, guard: GuardConfig) -> list[BaseMessage]:
    """Screens the customer's turns; records the verdict on the request's audit context.

    Args:
        data: the chat input (model or dict).
        guard: the guard's configuration.

    Returns:
        The conversation as LangChain messages, user text sanitized (and fenced as data when flagged).

    Raises:
        InputRejected: a user turn is blocked ("guard_blocked") or too long ("guard_too_long").
    """
    ctx = context.current()
    try:
        screened, verdict = guard_messages(_history(data), source="chat", config=guard)
    except InputRejected as exc:
        if ctx is not None:
            ctx.guard_action, ctx.guard_reasons = "block", [exc.code]
        raise
    if ctx is not None:
        ctx.guard_action, ctx.guard_reasons = verdict.action, list(verdict.reasons)
    return [m for m in screened if isinstance(m, BaseMessage)]


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


def build_chat_chain(
    *,
    model: Runnable,
    prompts: PromptStore,
    prompt_name: str,
    input_type: type[BaseModel],
    guard: GuardConfig,
    today: Callable[[], dt.date] = dt.date.today,
) -> Runnable:
    """Builds the chat runnable.

    Args:
        model: the chat model with its fallbacks (`chains.models.build_chat_model`).
        prompts: where prompt files are loaded from; read on every call, so edits apply at once.
        prompt_name: the system prompt's file name (from the chat preset).
        input_type: the input model (`make_chat_input`).
        guard: the guard's configuration (input screening).
        today: the date shown to the model (a seam for tests).
    """

    def plan(data: Any) -> Runnable:
        history = screen_chat_input(data, guard=guard)
        prompt = prompts.get(prompt_name)
        canary = make_canary()
        system, _ = prompt.render(today=today().isoformat(), canary=canary)
        messages: list[BaseMessage] = [SystemMessage(system), *history]
        return (
            RunnableLambda(lambda _: messages, afunc=_const(messages)).with_config(run_name="chat_prompt")
            | model
            | StrOutputParser().with_config(run_name="chat_text")
            | build_leak_guard(canary=canary, system_prompt=system, holdback=_HOLDBACK).with_config(
                run_name="leak_guard"
            )
        ).with_config(metadata={"prompt": prompt_name, "prompt_version": prompt.version})

    async def aplan(data: Any) -> Runnable:
        return plan(data)  # CPU only: an async twin spares LangChain a thread hop per async call

    return (
        RunnableLambda(plan, afunc=aplan)
        .with_types(input_type=input_type, output_type=str)
        .with_config(run_name="chat")
    )
