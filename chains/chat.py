"""The customer chat assistant, served at `/chat`.

Input: `{"messages": [{"role": "user"|"assistant", "content": str}, ...]}`, the last from the user. The
chat playground sends LangChain's shape (`{"type": "human"|"ai", "content": ...}`), accepted too. Output:
the assistant's text (a string: the chat playground rejects an AIMessage output on this stack).

    messages -> [system prompt from prompts/<preset>.yaml] + history -> model (with fallbacks) -> text
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chains.prompting import PromptStore

__all__ = ["ChatMessage", "build_chat_chain", "make_chat_input"]

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


def build_chat_chain(
    *,
    model: Runnable,
    prompts: PromptStore,
    prompt_name: str,
    input_type: type[BaseModel],
    today: Callable[[], dt.date] = dt.date.today,
) -> Runnable:
    """Builds the chat runnable.

    Args:
        model: the chat model with its fallbacks (`chains.models.build_chat_model`).
        prompts: where prompt files are loaded from; read on every call, so edits apply at once.
        prompt_name: the system prompt's file name (from the chat preset).
        input_type: the input model (`make_chat_input`).
        today: the date shown to the model (a seam for tests).
    """

    def to_messages(data: Any) -> list[BaseMessage]:
        prompt = prompts.get(prompt_name)
        system, _ = prompt.render(today=today().isoformat())
        out: list[BaseMessage] = [SystemMessage(system)]
        for m in _field(data, "messages"):
            msg = m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)
            out.append(HumanMessage(msg.content) if msg.speaker == "user" else AIMessage(msg.content))
        return out

    chain = (
        RunnableLambda(to_messages).with_config(run_name="chat_prompt")
        | model
        | StrOutputParser().with_config(run_name="chat_text")
    )
    return chain.with_types(input_type=input_type, output_type=str).with_config(run_name="chat")
