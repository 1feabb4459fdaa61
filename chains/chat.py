"""The customer chat assistant, served at `/chat`.

Input: `{"messages": [{"role": "user"|"assistant", "content": str}, ...]}`, the last from the user. The
chat playground sends LangChain's shape (`{"type": "human"|"ai", "content": ...}`), accepted too. Output:
the assistant's text (a string: the chat playground rejects an AIMessage output on this stack).

    messages -> guard (screen user turns: block = 400 before any model call; flag = fenced as data)
             -> [system prompt from prompts/<preset>.yaml, with this request's canary] + history
             -> model (with fallbacks) -> text -> leak guard (canary or system prompt in the answer = refusal)

The prompt, the canary and the leak guard are per request; the chain (`ChatChain`) is built once and makes
them on each call. The input model and its screening are in chains/chat_input.py (re-exported here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from pydantic import BaseModel

from chains.chat_input import ChatMessage, chat_precheck, make_chat_input, screen_chat_input
from chains.fallbacks import Fallbacks
from chains.guard import GuardConfig, make_canary, redact_leak
from chains.guard.leak import LeakStream
from chains.prompting import PromptFile, PromptStore

__all__ = ["ChatChain", "ChatMessage", "build_chat_chain", "chat_precheck", "make_chat_input", "screen_chat_input"]

# Characters a stream always holds back for the leak check, besides what might become a leak (a word being
# written, a run shared with the system prompt, a possible canary start: chains/guard/canary.py LeakCheck.safe_end).
_HOLDBACK = 0
_MIN_WORDS = 12  # a shared run of this many words with the system prompt is a leak


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
        self.models = Fallbacks(model)  # tried here: RunnableWithFallbacks adds a run and a task per call

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

    # --- invoke ---
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        config, prompt = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        try:
            turn = self._turn(input, prompt)
            out = self._answer(turn, self.models.invoke(turn.messages, patch_config(config, callbacks=run.get_child())))
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
            message = await self.models.ainvoke(turn.messages, patch_config(config, callbacks=run.get_child()))
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
            for chunk in self.models.stream(turn.messages, patch_config(config, callbacks=run.get_child())):
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
            async for chunk in self.models.astream(turn.messages, patch_config(config, callbacks=run.get_child())):
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
