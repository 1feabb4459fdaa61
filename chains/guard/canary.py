"""Output side: a canary token in every system prompt, and a check that no answer leaks it or the prompt.

Usage: `canary = make_canary()` per request (or per process), put it in the system prompt through the
`{canary}` variable, and pass the model's answer through `check_output()` or the `build_leak_guard()` step
(`chains/guard/leak.py`).
An answer that contains the canary (even spaced out or in another case) or a long verbatim run of the system
prompt is replaced by `REFUSAL` and reported as flagged.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from dataclasses import dataclass, field

__all__ = ["REFUSAL", "LeakVerdict", "check_output", "make_canary", "redact_leak"]

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


_GRAM = 4  # shingle size: runs are found by chaining shared 4-grams


@functools.lru_cache(maxsize=64)
def _prompt_grams(system_prompt: str) -> frozenset[tuple[str, ...]]:
    """The system prompt's word 4-grams; cached: a prompt is checked against every chunk of every answer."""
    ref = _WORD.findall(system_prompt.lower())
    return frozenset(tuple(ref[i : i + _GRAM]) for i in range(len(ref) - _GRAM + 1))


def _longest_shared_run(answer: str, system_prompt: str) -> int:
    if not system_prompt or not answer:
        return 0
    grams = _prompt_grams(system_prompt)
    out = _WORD.findall(answer.lower())
    n = _GRAM
    if not grams or len(out) < n:
        return 0
    best = streak = 0
    for i in range(len(out) - n + 1):
        streak = streak + 1 if tuple(out[i : i + n]) in grams else 0
        best = max(best, streak)
    return best + n - 1 if best else 0
