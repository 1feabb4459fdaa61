"""The conversation input of /assistant and /chat, and its screening: the guard's pass over the customer's
turns, once per request (the stream pre-check's result is reused by the chain)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chains.guard import GuardConfig, aprefetch_learned, guard_messages
from chains.schemas import InputModel
from errors import InputRejected
from gateway import context

__all__ = ["ChatMessage", "aprefetch_chat_input", "make_chat_input", "screen_chat_input"]

# The last screening of this request: (its RequestContext, (guard, turns), screened messages). Set by the
# stream pre-check in the request's task; the stream's task starts from a copy of that context.
_SCREENED: ContextVar[tuple[Any, Any, list[BaseMessage]] | None] = ContextVar("chat_screened", default=None)
_ROLE = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}


class ChatMessage(InputModel):
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

    class ChatInput(InputModel):
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


async def aprefetch_chat_input(data: Any, *, guard: GuardConfig) -> None:
    """Runs the guard's learned layer for the customer's turns in a worker thread, before `screen_chat_input`.

    A new turn costs one ONNX run (5-10 ms of CPU); run on the event loop it would hold up every other request
    of the process for that long. Here it runs in the learned layer's batcher thread, in one run with the new
    turns of other requests arriving meanwhile, and `screen_chat_input`, called next, finds the probabilities
    cached (turns seen before are cached already and cost nothing).

    Args:
        data: the chat input (model or dict), already validated.
        guard: the guard's configuration.
    """
    texts = [str(m.content) for m in _history(data) if isinstance(m, HumanMessage)]
    if texts:
        await aprefetch_learned(texts, source="chat", config=guard)


def screen_chat_input(data: Any, *, guard: GuardConfig) -> list[BaseMessage]:
    """Screens the customer's turns; records the verdict on the request's audit context.

    A stream's pre-check (`AssistantChain.aprecheck`) and the chain screen the same turns in the same request: the
    second call reuses the first one's result (same request context, turns and guard) instead of screening
    again. Without a request context nothing is reused.

    Args:
        data: the chat input (model or dict).
        guard: the guard's configuration.

    Returns:
        The conversation as LangChain messages, user text sanitized (and fenced as data when flagged).

    Raises:
        InputRejected: a user turn is blocked ("guard_blocked").
        InputTooLong: a user turn is over the guard's length limit (422).
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
