"""Injection and jailbreak detection: regex rules kept as data (`data/guard/patterns.yaml`), a noisy-OR score.

The rules run on detection views of the text (see `chains/guard/fold.py`): the folded text, a leetspeak-undone
view, a ROT13 view when the text reads like ROT13, and every payload decoded from invisible characters or
encoded blobs. A rule counts once however many views it fires in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from chains.guard.anchors import match_at, search_windows
from chains.guard.rules import PATTERNS_FILE, Rule, RuleSet, load_rules

__all__ = [
    "PATTERNS_FILE",
    "Detection",
    "Rule",
    "RuleSet",
    "cipher_views",
    "combine",
    "load_rules",
    "scan",
    "scan_view",
    "words_of",
]

# Views are lower case: everything that is not [a-z0-9] splits words (a C-speed translate + split).
_SPLIT_BYTES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_COMMON = frozenset(
    [
        "the",
        "and",
        "you",
        "to",
        "is",
        "of",
        "it",
        "that",
        "this",
        "what",
        "for",
        "are",
        "in",
        "with",
        "be",
        "your",
        "me",
        "how",
        "can",
        "all",
        "say",
        "yes",
        "do",
        "not",
        "my",
        "a",
        "i",
        "an",
        "on",
        "at",
        "please",
        "tell",
        "now",
        "was",
        "have",
        "will",
        "from",
        "or",
        "as",
        "if",
        "no",
        "just",
        "print",
    ]
)
# Words that make a cipher view worth probing even when it is not prose (HTML/JS payloads).
_PROBE = _COMMON | frozenset(["img", "src", "script", "javascript", "alert", "onerror", "href", "http", "https"])
_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
_ATBASH = str.maketrans("abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba")


@dataclass
class Detection:
    """Rule ids that fired, each with its weight."""

    hits: dict[str, float] = field(default_factory=dict)

    def add(self, reason: str, weight: float) -> None:
        """Records a reason, keeping the highest weight if it fired before."""
        if weight > self.hits.get(reason, 0.0):
            self.hits[reason] = weight

    @property
    def score(self) -> float:
        """The noisy-OR of the weights recorded so far."""
        return combine(self.hits.values())


def scan(
    views: Iterable[str], detection: Detection, rules: RuleSet | None = None, *, stop_at: float = 1.01,
    source: str = "chat",
) -> None:
    """Runs every rule over each view and records the hits in `detection`.

    Args:
        views: detection views (folded text, decoded payloads, ...).
        detection: where hits are recorded.
        rules: the rule set; the packaged file by default.
        stop_at: stop early once the score reaches this (the block threshold): the verdict cannot change.
        source: where the text comes from: rules with `sources` run only for theirs.
    """
    rs = rules or load_rules()
    for view in views:
        if view and scan_view(view, words_of(view), detection, rs, stop_at=stop_at, source=source):
            return


def scan_view(
    view: str, words: set[str], detection: Detection, rules: RuleSet, *, stop_at: float = 1.01, source: str = "chat"
) -> bool:
    """Runs the rules whose triggers occur in one view; True once the score has reached `stop_at`.

    Args:
        view: a lower-case detection view.
        words: `words_of(view)` (the caller often has it already).
        detection: where hits are recorded.
        rules: the rule set.
        stop_at: the block threshold.
        source: where the text comes from: rules with `sources` run only for theirs.
    """
    # Which rules can fire at all is one set intersection plus a substring test per literal trigger.
    candidates: set[int] = set()
    for word in rules.triggers.intersection(words):
        candidates.update(rules.by_word[word])
    for literal, indexes in rules.by_literal:
        if literal in view:
            candidates.update(indexes)
    hits = detection.hits
    for i in sorted(candidates):  # rule order, so early stopping is deterministic
        rule = rules.rules[i]
        if rule.id in hits or (rule.sources is not None and source not in rule.sources):
            continue
        if (rule.need_words or rule.need_literals) and not (
            not rule.need_words.isdisjoint(words) or any(n in view for n in rule.need_literals)
        ):
            continue  # the rule's second required part is absent: skip its (costly) regex
        if rule.anchors is not None:
            found = match_at(rule.regex, view, rule.anchors, words)
        else:
            triggers = [w for w in rule.words if w in words] + [lit for lit in rule.literals if lit in view]
            found = search_windows(rule.regex, view, triggers)
        if found:
            detection.add(rule.id, rule.weight)
            if detection.score >= stop_at:
                return True
    return False


def words_of(view: str) -> set[str]:
    """The ASCII words of a lower-case view (non-ASCII characters split words), as rule triggers are."""
    return set(view.encode("ascii", "replace").translate(_SPLIT_BYTES).decode("ascii").split())


def cipher_views(text: str, words: set[str] | None = None) -> list[tuple[str, str, bool]]:
    """ROT13 and Atbash views worth scanning, as (cipher, view, reads_like_english).

    A view "reads like English" when it has clearly more common English words than the text itself; a
    view of a text with almost no common words (code, a blob) is returned for probing too, unconfirmed.

    Args:
        text: a lower-case view.
        words: `words_of(text)` if the caller has it (saves a split).
    """
    words = words_of(text) if words is None else words
    if len(words) < 2:
        return []
    before = len(_COMMON.intersection(words))
    if before >= 4:
        return []  # plainly English: a cipher view would need twice as many common words, which is rare
    out = []
    probe_before = len(_PROBE.intersection(words))
    for name, table in (("rot13", _ROT13), ("atbash", _ATBASH)):
        view = text.translate(table)
        view_words = view.encode("ascii", "replace").translate(_SPLIT_BYTES).decode().split()
        after = len(_COMMON.intersection(view_words))
        if after >= 2 and after > 2 * before:
            out.append((name, view, True))
        elif before <= 1 and len(_PROBE.intersection(view_words)) > probe_before:
            out.append((name, view, False))  # code or a blob whose cipher view has more familiar words
    return out


def combine(weights: Iterable[float]) -> float:
    """Noisy-OR of independent signals: 1 - prod(1 - w).

    Args:
        weights: each in [0, 1].
    """
    return 1.0 - math.prod(1.0 - min(max(w, 0.0), 1.0) for w in weights)
