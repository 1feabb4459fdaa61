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

__all__ = ["REFUSAL", "LeakVerdict", "check_output", "make_canary", "redact_leak", "unsafe_tail"]

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


@functools.lru_cache(maxsize=64)
def _gram_prefixes(system_prompt: str) -> frozenset[tuple[str, ...]]:
    """The first 1, 2 and 3 words of every 4-gram: a tail that may still grow into a shared run."""
    return frozenset(g[:k] for g in _prompt_grams(system_prompt) for k in range(1, _GRAM))


def unsafe_tail(text: str, *, canary: str, system_prompt: str = "", window: int = 600) -> int:
    """Where the part of a growing answer that may not leave yet begins (`len(text)` if none).

    For a stream: what lies before this index cannot turn into a leak whatever comes next, up to the
    limits `check_output()` allows; what lies after it might, so it is held until the next chunk decides.
    Held: a word the chunk ended inside, a run of words shared with the system prompt (from its first word:
    a run that grows to `min_words` never shows any of itself), the first words of a possible run, and a
    tail that could be the beginning of the canary or of its random part (separators ignored).

    Args:
        text: the answer so far (already checked with `check_output()`).
        canary: this request's canary.
        system_prompt: the rendered system prompt.
        window: how many trailing characters are examined (a run is held from here at the latest).
    """
    end = len(text)
    start = max(0, end - window)
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(text, start)]
    if words and start > 0 and words[0][0] == start:
        words = words[1:]  # possibly cut by the window
    if words and words[-1][0] + len(words[-1][1]) == end:
        end = words[-1][0]  # a word still being written
        words = words[:-1]
    if system_prompt:
        ref = system_prompt.replace(canary, " ") if canary else system_prompt
        grams, prefixes = _prompt_grams(ref), _gram_prefixes(ref)
        toks = [w for _, w in words]
        m = len(toks)
        i = m - _GRAM
        if i >= 0 and tuple(toks[i:]) in grams:
            while i > 0 and tuple(toks[i - 1 : i - 1 + _GRAM]) in grams:
                i -= 1
            end = min(end, words[i][0] if i > 0 or start == 0 else start)
        else:
            for k in range(min(_GRAM - 1, m), 0, -1):
                if tuple(toks[m - k :]) in prefixes:
                    end = min(end, words[m - k][0])
                    break
    if canary:
        end = min(end, _canary_prefix_start(text, end, canary))
    return end


def _canary_prefix_start(text: str, end: int, canary: str) -> int:
    """The start of the longest tail of `text[:end]` that spells the canary's (or its secret's) beginning."""
    whole = _SQUASH.sub("", canary).lower()
    secret = canary.rsplit("-", 1)[-1].lower()
    chars: list[tuple[int, str]] = []  # trailing word characters, nearest last
    i = end - 1
    while i >= 0 and len(chars) < len(whole):
        ch = text[i]
        if ch.isalnum():
            chars.append((i, ch.lower()))
        elif not _SQUASH.fullmatch(ch):
            break
        i -= 1
    chars.reverse()
    for k in range(len(chars)):
        tail = "".join(c for _, c in chars[k:])
        if whole.startswith(tail) or secret.startswith(tail):
            return chars[k][0]
    return end


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
