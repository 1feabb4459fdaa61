"""The rule file (`data/guard/patterns.yaml`) compiled into a `RuleSet`, with the indexes `scan()` needs.

The indexes make the cheap part of a scan one set intersection: `by_word` maps each trigger word to the rules
it unlocks, `by_literal` does the same for non-word triggers (`<`, `![`), and `vocab` is every word that
appears in any rule (used to decide whether a leetspeak-undone view says anything new).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from chains.guard.anchors import Finder, anchors, finders
from livefiles import live_file

__all__ = ["PATTERNS_FILE", "Rule", "RuleSet", "compile_rules", "load_rules"]

PATTERNS_FILE = Path(__file__).resolve().parents[2] / "data" / "guard" / "patterns.yaml"
_REQUIRED_KEYS = {"id", "family", "weight", "any", "pattern"}
_OPTIONAL_KEYS = {"needs", "sources"}
_SOURCES = frozenset({"chat", "search", "describe", "listing"})
_ESCAPE = re.compile(r"\\.")
_WORD = re.compile(r"[a-z0-9]{2,}")


@dataclass(frozen=True)
class Rule:
    """One detection rule."""

    id: str
    family: str
    weight: float
    regex: re.Pattern[str]
    words: frozenset[str] = frozenset()  # the regex runs only if one of these words ...
    literals: tuple[str, ...] = ()  # ... or one of these substrings is in the view
    anchors: tuple[Finder, ...] | None = None  # every match starts at one of these: `match` there, no `search`
    need_words: frozenset[str] = frozenset()  # and, if `needs` is set, one of these words ...
    need_literals: tuple[str, ...] = ()  # ... or one of these substrings is in the view too
    sources: frozenset[str] | None = None  # the sources it runs for (None: all)


@dataclass(frozen=True)
class RuleSet:
    """The compiled rules, their trigger indexes, and the weights for Unicode findings and decoded payloads."""

    rules: tuple[Rule, ...]
    unicode: Mapping[str, float]
    encoded: Mapping[str, float]
    by_word: Mapping[str, tuple[int, ...]]
    by_literal: tuple[tuple[str, tuple[int, ...]], ...]
    triggers: frozenset[str]  # the keys of `by_word`
    vocab: frozenset[str]  # every word of two or more characters in any trigger or pattern


def load_rules(path: Path = PATTERNS_FILE) -> RuleSet:
    """The compiled rules file, re-read after an edit (`livefiles`: a bad edit keeps the last good rules).

    Args:
        path: the YAML file with `unicode`, `encoded` and `rules` sections.

    Raises:
        ValueError: at the first read, a rule has unknown or missing keys, a bad weight or a regex that does
            not compile (a malformed rule names itself).
    """
    return live_file(path, lambda text: compile_rules(text, path), kind="guard-rules", hot=True).get()


def compile_rules(text: str, path: Path) -> RuleSet:
    """Validates and compiles the rules file's text (`path` names it in errors)."""
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise ValueError(f"{path.name}: expected a mapping with `unicode`, `encoded` and `rules`")
    rules = []
    by_word: dict[str, list[int]] = defaultdict(list)
    by_literal: dict[str, list[int]] = defaultdict(list)
    vocab: set[str] = set()
    for i, body in enumerate(raw["rules"]):
        keys = set(body)
        if not _REQUIRED_KEYS <= keys <= _REQUIRED_KEYS | _OPTIONAL_KEYS:
            raise ValueError(f"{path.name}: rule #{i} keys {sorted(body)}; expected {sorted(_REQUIRED_KEYS)}")
        weight = float(body["weight"])
        if not 0 < weight <= 1:
            raise ValueError(f"{path.name}: rule {body['id']}: weight must be in (0, 1]")
        try:
            regex = re.compile(body["pattern"])
        except re.error as exc:
            raise ValueError(f"{path.name}: rule {body['id']}: {exc}") from None
        triggers = [str(t).lower() for t in body["any"]]
        if not triggers:
            raise ValueError(f"{path.name}: rule {body['id']}: `any` must list at least one trigger")
        words = frozenset(t for t in triggers if t.isalnum())
        literals = tuple(t for t in triggers if not t.isalnum())
        needs = [str(t).lower() for t in body.get("needs", ())]
        need_words = frozenset(t for t in needs if t.isalnum())  # whole words, like `any`
        need_literals = tuple(t.rstrip("*") for t in needs if not t.isalnum())  # "prompt*": any substring
        for w in words:
            by_word[w].append(i)
        for lit in literals:
            by_literal[lit].append(i)
        vocab.update(_WORD.findall(_ESCAPE.sub(" ", body["pattern"])), *(_WORD.findall(t) for t in triggers))
        sources = None
        if "sources" in body:
            sources = frozenset(str(x) for x in body["sources"])
            if not sources or not sources <= _SOURCES:
                raise ValueError(f"{path.name}: rule {body['id']}: `sources` must list some of {sorted(_SOURCES)}")
        found = anchors(body["pattern"])
        places = None if found is None else finders(found)
        rule = Rule(
            str(body["id"]), str(body["family"]), weight, regex, words, literals, places, need_words, need_literals,
            sources,
        )
        rules.append(rule)
    return RuleSet(
        rules=tuple(rules),
        unicode=dict(raw["unicode"]),
        encoded=dict(raw["encoded"]),
        by_word={w: tuple(ix) for w, ix in by_word.items()},
        by_literal=tuple((lit, tuple(ix)) for lit, ix in by_literal.items()),
        triggers=frozenset(by_word),
        vocab=frozenset(vocab),
    )
