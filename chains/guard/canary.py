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

__all__ = ["REFUSAL", "LeakCheck", "LeakVerdict", "check_output", "make_canary", "redact_leak"]

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


def _suffix_prefix(tail: str, pattern: str) -> int:
    """The length of the longest end of `tail` that `pattern` starts with (0 if none)."""
    if not pattern:
        return 0
    k = tail.find(pattern[0])
    while k != -1:
        if pattern.startswith(tail[k:]):
            return len(tail) - k
        k = tail.find(pattern[0], k + 1)
    return 0


class LeakCheck:
    """`check_output()` for an answer that arrives in pieces, in time linear in its length, and where the part
    that may not leave yet begins.

    `add(piece)` checks what the new piece completes (the canary, spaced out or not; a run of words shared
    with the system prompt); `finish()` counts the last word, which `add` keeps open until it ends.
    `safe_end(text)` is how much of the answer so far can leave whatever comes next.
    """

    def __init__(self, *, canary: str, system_prompt: str = "", min_words: int = 12) -> None:
        self.canary, self.min_words = canary, min_words
        self.whole = _SQUASH.sub("", canary).lower() if canary else ""
        secret = canary.rsplit("-", 1)[-1].lower() if canary else ""
        self.secret = secret if len(secret) >= 8 else ""
        ref = system_prompt.replace(canary, " ") if canary else system_prompt
        self.grams = _prompt_grams(ref) if ref else frozenset()
        self.prefixes = _gram_prefixes(ref) if ref else frozenset()
        self.squashed = ""  # the squashed answer's tail: as long as the canary
        self.length = 0  # characters taken so far
        self.open_word = ""  # the last word while it may still grow (it ends the text)
        self.last: list[tuple[int, str]] = []  # the last four complete words, with where they start
        self.streak = self.best = 0
        self.run_start = 0  # where the current shared run (streak > 0) starts

    def add(self, piece: str) -> LeakVerdict:
        """Takes the next piece; the verdict covers everything so far but the open last word."""
        base = self.length - len(self.open_word)
        self.length += len(piece)
        if self.whole:
            self.squashed += _SQUASH.sub("", piece).lower()
            if self.whole in self.squashed or (self.secret and self.secret in self.squashed):
                return self._verdict(canary=True)
            self.squashed = self.squashed[-len(self.whole) :]
        buf = self.open_word + piece
        words = list(_WORD.finditer(buf))
        self.open_word = ""
        if words and words[-1].end() == len(buf):
            self.open_word = words.pop().group()
        for m in words:
            self._word(base + m.start(), m.group().lower())
        return self._verdict()

    def finish(self) -> LeakVerdict:
        """The verdict on the whole answer (the last word counted)."""
        if self.open_word:
            self._word(self.length - len(self.open_word), self.open_word.lower())
            self.open_word = ""
        return self._verdict()

    def safe_end(self, text: str) -> int:
        """Where the part of `text` (everything added so far) that may not leave yet begins.

        Held: the open last word; a run of words shared with the system prompt, from its first word (a run
        that grows to `min_words` never shows any of itself); the last words while they may start such a
        run; a tail that spells the beginning of the canary or of its random part (separators ignored).
        """
        end = self.length - len(self.open_word)
        if self.streak:
            end = min(end, self.run_start)
        else:
            for k in range(min(_GRAM - 1, len(self.last)), 0, -1):
                if tuple(w for _, w in self.last[-k:]) in self.prefixes:
                    end = min(end, self.last[-k][0])
                    break
        n = max(_suffix_prefix(self.squashed, self.whole), _suffix_prefix(self.squashed, self.secret))
        i = self.length
        while n > 0 and i > 0:  # back over n word characters (separators between them included)
            i -= 1
            if not _SQUASH.match(text[i]):
                n -= 1
        return min(end, i)

    def _word(self, start: int, word: str) -> None:
        self.last.append((start, word))
        if len(self.last) > _GRAM:
            del self.last[0]
        if len(self.last) == _GRAM:
            if tuple(w for _, w in self.last) in self.grams:
                if not self.streak:
                    self.run_start = self.last[0][0]
                self.streak += 1
                self.best = max(self.best, self.streak)
            else:
                self.streak = 0

    def _verdict(self, *, canary: bool = False) -> LeakVerdict:
        run = self.best + _GRAM - 1 if self.best else 0
        reasons = ["canary"] if canary else []
        if run >= self.min_words:
            reasons.append(f"system_prompt_verbatim: {run} words")
        return LeakVerdict(leaked=bool(reasons), reasons=reasons, longest_run=run)


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
