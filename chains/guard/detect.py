"""Injection and jailbreak detection: regex rules kept as data (`data/guard/patterns.yaml`), a noisy-OR score.

The rules run on detection views of the text (see `chains/guard/fold.py`): the folded text, a leetspeak-undone
view, a ROT13 view when the text reads like ROT13, and every payload decoded from invisible characters or
encoded blobs. A rule counts once however many views it fires in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from chains.guard.anchors import Anchor, anchors, match_at, search_windows

__all__ = [
    "PATTERNS_FILE",
    "Detection",
    "Rule",
    "RuleSet",
    "cipher_views",
    "combine",
    "load_rules",
    "scan",
    "words_of",
]

PATTERNS_FILE = Path(__file__).resolve().parents[2] / "data" / "guard" / "patterns.yaml"
_RULE_KEYS = {"id", "family", "weight", "any", "pattern"}
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


@dataclass(frozen=True)
class Rule:
    """One detection rule."""

    id: str
    family: str
    weight: float
    regex: re.Pattern[str]
    words: frozenset[str] = frozenset()  # the regex runs only if one of these words ...
    literals: tuple[str, ...] = ()  # ... or one of these substrings is in the view
    anchors: frozenset[Anchor] | None = None  # every match starts at one of these: `match` there, no `search`


@dataclass(frozen=True)
class RuleSet:
    """The compiled rules plus the weights for Unicode findings and decoded payloads."""

    rules: tuple[Rule, ...]
    unicode: Mapping[str, float]
    encoded: Mapping[str, float]


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


@cache
def load_rules(path: Path = PATTERNS_FILE) -> RuleSet:
    """Loads and compiles the rules file once; a malformed rule names itself.

    Args:
        path: the YAML file with `unicode`, `encoded` and `rules` sections.

    Raises:
        ValueError: if a rule has unknown or missing keys, a bad weight or a regex that does not compile.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for i, body in enumerate(raw["rules"]):
        if set(body) != _RULE_KEYS:
            raise ValueError(f"{path.name}: rule #{i} keys {sorted(body)}; expected {sorted(_RULE_KEYS)}")
        weight = float(body["weight"])
        if not 0 < weight <= 1:
            raise ValueError(f"{path.name}: rule {body['id']}: weight must be in (0, 1]")
        try:
            regex = re.compile(body["pattern"])
        except re.error as exc:
            raise ValueError(f"{path.name}: rule {body['id']}: {exc}") from None
        triggers = [str(t).lower() for t in body["any"]]
        words = frozenset(t for t in triggers if t.isalnum())
        literals = tuple(t for t in triggers if not t.isalnum())
        if not triggers:
            raise ValueError(f"{path.name}: rule {body['id']}: `any` must list at least one trigger")
        places = anchors(body["pattern"])
        rules.append(Rule(str(body["id"]), str(body["family"]), weight, regex, words, literals, places))
    return RuleSet(tuple(rules), dict(raw["unicode"]), dict(raw["encoded"]))


def scan(views: Iterable[str], detection: Detection, rules: RuleSet | None = None, *, stop_at: float = 1.01) -> None:
    """Runs every rule over each view and records the hits in `detection`.

    Args:
        views: detection views (folded text, decoded payloads, ...).
        detection: where hits are recorded.
        rules: the rule set; the packaged file by default.
        stop_at: stop early once the score reaches this (the block threshold): the verdict cannot change.
    """
    rs = rules or load_rules()
    for view in views:
        if not view:
            continue
        words = words_of(view)
        for rule in rs.rules:
            if rule.id in detection.hits:
                continue
            triggers = [w for w in rule.words if w in words] + [lit for lit in rule.literals if lit in view]
            if not triggers:
                continue
            if rule.anchors is not None:
                found = match_at(rule.regex, view, rule.anchors)
            else:
                found = search_windows(rule.regex, view, triggers)
            if found:
                detection.add(rule.id, rule.weight)
                if detection.score >= stop_at:
                    return


def words_of(view: str) -> set[str]:
    """The ASCII words of a lower-case view (non-ASCII characters split words), as rule triggers are."""
    return set(view.encode("ascii", "replace").translate(_SPLIT_BYTES).decode("ascii").split())


def cipher_views(text: str) -> list[tuple[str, str, bool]]:
    """ROT13 and Atbash views worth scanning, as (cipher, view, reads_like_english).

    A view "reads like English" when it has clearly more common English words than the text itself; a
    view of a text with almost no common words (code, a blob) is returned for probing too, unconfirmed.

    Args:
        text: a lower-case view.
    """
    words = text.encode("ascii", "replace").translate(_SPLIT_BYTES).decode("ascii").split()
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
