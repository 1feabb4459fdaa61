"""`build_leak_guard()`: the output-side step that keeps a canary or a verbatim system prompt from leaving,
on `invoke` and on streams (with a hold-back window)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable, RunnableGenerator

from chains.guard.canary import REFUSAL, LeakCheck, redact_leak

__all__ = ["LeakStream", "build_leak_guard"]

log = logging.getLogger("skymarket.guard")


def build_leak_guard(
    *, canary: str, system_prompt: str, min_words: int = 12, holdback: int = 0
) -> Runnable[Any, Any]:
    """A step after the model: passes answers through, replaces leaking ones with `REFUSAL`.

    Works on `invoke` (a string or an `AIMessage` in, the same type out) and on streams of strings or
    `AIMessageChunk`s: what might still become a leak (`LeakCheck.safe_end()`: a word being written, a run of
    words shared with the system prompt, a possible start of the canary) is held back until the next chunk
    decides, so the canary and a verbatim run never leave, the refusal replaces the rest, and ordinary text
    streams with a delay of about one word. A replaced message carries
    `response_metadata["guard"] = {"action": "flag", "reasons": [...]}`.

    Args:
        canary: the token in this request's system prompt.
        system_prompt: the rendered system prompt.
        min_words: see `check_output()`.
        holdback: characters always held back besides (0: only what `LeakCheck.safe_end()` holds).
    """

    def transform(chunks: Iterator[Any]) -> Iterator[Any]:
        state = LeakStream(canary, system_prompt, min_words, holdback)
        for chunk in chunks:
            yield from state.feed(chunk)
        yield from state.close()

    async def atransform(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        state = LeakStream(canary, system_prompt, min_words, holdback)
        async for chunk in chunks:
            for out in state.feed(chunk):
                yield out
        for out in state.close():
            yield out

    return RunnableGenerator(transform, atransform).with_config(run_name="guard_output")


class LeakStream:
    """Accumulates an answer, releases it behind a hold-back window, and swaps a leak for the refusal.

    `feed(chunk)` returns what may leave now; `close()` the rest at the end. Chunks are strings or
    `AIMessageChunk`s (the first decides the type of what comes out); a whole `AIMessage` is checked at once.
    """

    def __init__(self, canary: str, system_prompt: str, min_words: int, holdback: int) -> None:
        self.canary, self.system_prompt, self.min_words, self.holdback = canary, system_prompt, min_words, holdback
        self.check = LeakCheck(canary=canary, system_prompt=system_prompt, min_words=min_words)
        self.text = ""
        self.sent = 0
        self.leaked = False
        self.template: Any = None  # the first chunk: its type decides the type of what we emit

    def feed(self, chunk: Any) -> list[Any]:
        if self.leaked:
            return []
        if isinstance(chunk, BaseMessage) and not isinstance(chunk, AIMessageChunk):
            return [self._whole_message(chunk)]  # a complete message (invoke): check it at once
        text = chunk.content if isinstance(chunk, AIMessageChunk) else chunk
        if not isinstance(text, str):
            return [chunk]
        if self.template is None:
            self.template = chunk
        self.text += text
        verdict = self.check.add(text)
        if verdict.leaked:
            return [self._refuse(verdict.reasons)]
        upto = min(len(self.text) - self.holdback, self.check.safe_end(self.text))
        if upto > self.sent:
            out = self._make(self.text[self.sent : upto])
            self.sent = upto
            return [out]
        return []

    def close(self) -> list[Any]:
        if self.leaked:
            return []
        verdict = self.check.finish()
        if verdict.leaked:  # the last word completed a run
            return [self._refuse(verdict.reasons)]
        if self.sent >= len(self.text):
            return []
        rest = self.text[self.sent :]
        self.sent = len(self.text)
        return [self._make(rest)]

    def _refuse(self, reasons: list[str]) -> Any:
        self.leaked = True
        log.warning("guard flag: output leak", extra={"reasons": reasons})
        return self._make(REFUSAL if self.sent == 0 else "\n\n" + REFUSAL, reasons)

    def _make(self, text: str, reasons: list[str] | None = None) -> Any:
        if isinstance(self.template, AIMessageChunk):
            meta = {"guard": {"action": "flag", "reasons": reasons}} if reasons else {}
            return AIMessageChunk(content=text, id=self.template.id, response_metadata=meta)
        return text

    def _whole_message(self, msg: BaseMessage) -> BaseMessage:
        if not isinstance(msg.content, str):
            return msg
        safe, verdict = redact_leak(
            msg.content, canary=self.canary, system_prompt=self.system_prompt, min_words=self.min_words
        )
        if not verdict.leaked:
            return msg
        self.leaked = True
        meta = {**msg.response_metadata, "guard": {"action": "flag", "reasons": verdict.reasons}}
        return AIMessage(content=safe, response_metadata=meta, id=msg.id)
