"""Output side: a canary token in every system prompt, and a check that no answer leaks it or the prompt.

Usage: `canary = make_canary()` per request (or per process), put it in the system prompt through the
`{canary}` variable, and pass the model's answer through `check_output()` or the `build_leak_guard()` step.
An answer that contains the canary (even spaced out or in another case) or a long verbatim run of the system
prompt is replaced by `REFUSAL` and reported as flagged.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable, RunnableGenerator

__all__ = ["REFUSAL", "LeakVerdict", "build_leak_guard", "check_output", "make_canary", "redact_leak"]

log = logging.getLogger("skymarket.guard")

REFUSAL = "Sorry, I can't share that. I can help you find, compare and book drone services around Metro Detroit."
_WORD = re.compile(r"\w+")
_SQUASH = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class LeakVerdict:
    """The outcome of `check_output()`.

    Attributes:
        leaked: True if the answer must not be returned.
        reasons: "canary" and/or "system_prompt_verbatim: N words".
        longest_run: the longest run of words shared with the system prompt.
    """

    leaked: bool
    reasons: list[str] = field(default_factory=list)
    longest_run: int = 0

    def __bool__(self) -> bool:
        return self.leaked


def make_canary() -> str:
    """A fresh, unguessable canary token (e.g. `SKYCANARY-5f1c2a9e0b7d4c36`)."""
    return f"SKYCANARY-{secrets.token_hex(8)}"


def check_output(answer: str, *, canary: str, system_prompt: str = "", min_words: int = 12) -> LeakVerdict:
    """Checks a model answer for the canary or a long verbatim run of the system prompt.

    The canary is matched case-insensitively with separators ignored ("s k y c a n a r y - 5 f ..."), and
    its random part alone also counts. A shared run of `min_words` consecutive words with the system prompt
    (after lower-casing and dropping punctuation) counts as a verbatim leak.

    Args:
        answer: the model's answer.
        canary: the token put in this request's system prompt.
        system_prompt: the rendered system prompt (with the canary in it, or not).
        min_words: the shortest shared word run that counts as a leak.
    """
    reasons: list[str] = []
    squashed = _SQUASH.sub("", answer).lower()
    secret = canary.rsplit("-", 1)[-1].lower()
    if canary and (_SQUASH.sub("", canary).lower() in squashed or (len(secret) >= 8 and secret in squashed)):
        reasons.append("canary")
    run = _longest_shared_run(answer, system_prompt.replace(canary, " ") if canary else system_prompt)
    if run >= min_words:
        reasons.append(f"system_prompt_verbatim: {run} words")
    return LeakVerdict(leaked=bool(reasons), reasons=reasons, longest_run=run)


def redact_leak(answer: str, *, canary: str, system_prompt: str = "", min_words: int = 12) -> tuple[str, LeakVerdict]:
    """Returns `REFUSAL` instead of a leaking answer (and logs the event), else the answer unchanged.

    Args:
        answer: the model's answer.
        canary: the token put in this request's system prompt.
        system_prompt: the rendered system prompt.
        min_words: see `check_output()`.
    """
    verdict = check_output(answer, canary=canary, system_prompt=system_prompt, min_words=min_words)
    if verdict.leaked:
        log.warning("guard flag: output leak", extra={"reasons": verdict.reasons})
        return REFUSAL, verdict
    return answer, verdict


def build_leak_guard(
    *, canary: str, system_prompt: str, min_words: int = 12, holdback: int = 240
) -> Runnable[Any, Any]:
    """A step after the model: passes answers through, replaces leaking ones with `REFUSAL`.

    Works on `invoke` (a string or an `AIMessage` in, the same type out) and on streams of strings or
    `AIMessageChunk`s: the last `holdback` characters are held back until the rest of the answer is checked,
    so a canary or a verbatim run shorter than that never leaves, and the refusal replaces the rest. A
    replaced message carries `response_metadata["guard"] = {"action": "flag", "reasons": [...]}`.

    Args:
        canary: the token in this request's system prompt.
        system_prompt: the rendered system prompt.
        min_words: see `check_output()`.
        holdback: characters held back while streaming (keep it above a 12-word run, ~100 characters).
    """

    def transform(chunks: Iterator[Any]) -> Iterator[Any]:
        state = _LeakStream(canary, system_prompt, min_words, holdback)
        for chunk in chunks:
            yield from state.feed(chunk)
        yield from state.close()

    async def atransform(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        state = _LeakStream(canary, system_prompt, min_words, holdback)
        async for chunk in chunks:
            for out in state.feed(chunk):
                yield out
        for out in state.close():
            yield out

    return RunnableGenerator(transform, atransform).with_config(run_name="guard_output")


class _LeakStream:
    """Accumulates an answer, releases it behind a hold-back window, and swaps a leak for the refusal."""

    def __init__(self, canary: str, system_prompt: str, min_words: int, holdback: int) -> None:
        self.canary, self.system_prompt, self.min_words, self.holdback = canary, system_prompt, min_words, holdback
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
        verdict = check_output(
            self.text, canary=self.canary, system_prompt=self.system_prompt, min_words=self.min_words
        )
        if verdict.leaked:
            self.leaked = True
            log.warning("guard flag: output leak", extra={"reasons": verdict.reasons})
            refusal = REFUSAL if self.sent == 0 else "\n\n" + REFUSAL
            return [self._make(refusal, verdict.reasons)]
        upto = len(self.text) - self.holdback
        if upto > self.sent:
            out = self._make(self.text[self.sent : upto])
            self.sent = upto
            return [out]
        return []

    def close(self) -> list[Any]:
        if self.leaked or self.sent >= len(self.text):
            return []
        rest = self.text[self.sent :]
        self.sent = len(self.text)
        return [self._make(rest)]

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


def _longest_shared_run(answer: str, system_prompt: str) -> int:
    if not system_prompt or not answer:
        return 0
    ref = _WORD.findall(system_prompt.lower())
    out = _WORD.findall(answer.lower())
    n = 4  # shingle size: runs are found by chaining shared 4-grams
    if len(ref) < n or len(out) < n:
        return 0
    grams = {tuple(ref[i : i + n]) for i in range(len(ref) - n + 1)}
    best = streak = 0
    for i in range(len(out) - n + 1):
        streak = streak + 1 if tuple(out[i : i + n]) in grams else 0
        best = max(best, streak)
    return best + n - 1 if best else 0
