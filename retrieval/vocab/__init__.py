"""The search vocabulary, defined once: categories, services, features and filter phrases.

    categories.py  the categories (the `Category` type), the phrases that point a query to each, their services
    features.py    the features, the phrases that ask for each, what implies each
    phrases.py     the phrases that set a search filter (price, distance, insured), prepositions
    services.py    services said by their situation ("the dog ran off"): their names are searched too

Everything else is generated from these tables: the query parser compiles them (below), the LLM step's
schema and its prompt's variable parts come from them (retrieval.llm_hints; `python -m retrieval.vocab`
rewrites the generated parts of the prompt and its golden cases), the generator draws services and
features from them (retrieval.synth), and tests/retrieval/test_vocab.py fails when anything drifts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.text import stem, tokenize
from retrieval.vocab.categories import CATEGORIES, CATEGORY_PHRASES, FIRM, SERVICES, Category
from retrieval.vocab.features import FEATURES, Feature
from retrieval.vocab.phrases import (
    CREDENTIALS,
    FILTER_PHRASES,
    NEGATIONS,
    OPERATOR_CREDENTIALS,
    PREPOSITIONS,
    SCENERY_WHERE,
    SCENERY_WHO,
    FilterPhrase,
)
from retrieval.vocab.services import SERVICE_HINTS

__all__ = [
    "CATEGORIES",
    "CATEGORY_PATTERNS",
    "CATEGORY_WORDS",
    "CREDENTIAL_PATTERN",
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_PATTERNS",
    "FILTER_PATTERNS",
    "FIRM",
    "NEGATION_PATTERN",
    "OPERATOR_CREDENTIAL_PATTERN",
    "PREPOSITIONS",
    "SCENERY_WHERE_PATTERN",
    "SCENERY_WHO_PATTERN",
    "SERVICES",
    "SERVICE_HINTS",
    "SERVICE_HINT_PATTERNS",
    "SERVICE_WORDS",
    "Category",
    "Feature",
    "FilterPhrase",
    "implied_features",
    "named_services",
    "sharing_services",
    "sited_words",
]


def _words(alternatives: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)
CATEGORY_PATTERNS: dict[Category, list[tuple[re.Pattern[str], float]]] = {
    cat: [(_words(words), weight) for weight, words in groups] for cat, groups in CATEGORY_PHRASES.items()
}
FEATURE_PATTERNS: dict[str, re.Pattern[str]] = {name: _words(f.phrases) for name, f in FEATURES.items()}
FILTER_PATTERNS: tuple[tuple[FilterPhrase, re.Pattern[str]], ...] = tuple(
    (p, re.compile(p.pattern)) for p in FILTER_PHRASES
)
NEGATION_PATTERN: re.Pattern[str] = re.compile(NEGATIONS)
CREDENTIAL_PATTERN: re.Pattern[str] = re.compile(CREDENTIALS)
OPERATOR_CREDENTIAL_PATTERN: re.Pattern[str] = re.compile(OPERATOR_CREDENTIALS)
# The plain words (5 letters or more) that name a service: a typo of one is read as it ("chimny", "survay")
SERVICE_WORDS: tuple[str, ...] = tuple(sorted(
    {w for groups in CATEGORY_PHRASES.values() for _, alts in groups for a in alts
     if re.fullmatch(r"[a-z]{5,}", w := re.sub(r"(?:\(\?:e?s\)|s)\?$", "", a))}
    | {w for offered in SERVICES.values() for name in offered for w in name.split() if re.fullmatch(r"[a-z]{5,}", w)}
))
# category -> the plain words (5 letters or more) of its phrases and services: a typo beside a service already
# named is read as one of these only ("chimeny inspection", not "contracts" -> "contractor" in a delivery)
CATEGORY_WORDS: dict[str, frozenset[str]] = {
    cat: frozenset(
        {w for _, alts in CATEGORY_PHRASES[cat] for a in alts
         if re.fullmatch(r"[a-z]{5,}", w := re.sub(r"(?:\(\?:e?s\)|s)\?$", "", a))}
        | {w for name in SERVICES[cat] for w in name.split() if re.fullmatch(r"[a-z]{5,}", w)})
    for cat in CATEGORY_PHRASES
}
# service -> (its category, the phrases that describe it by its situation)
SERVICE_HINT_PATTERNS: dict[str, tuple[str, re.Pattern[str]]] = {
    service: (next(c for c, offered in SERVICES.items() if service in offered), _words(phrases))
    for service, phrases in SERVICE_HINTS.items()
}
SCENERY_WHERE_PATTERN: re.Pattern[str] = re.compile(SCENERY_WHERE)
SCENERY_WHO_PATTERN: re.Pattern[str] = re.compile(SCENERY_WHO)


def implied_features(category: str, services: list[str] | tuple[str, ...]) -> set[str]:
    """The features a listing of this category offering these services necessarily has.

    Args:
        category: the listing's category.
        services: the services it offers.
    """
    offered = {category, *services}
    return {name for name, f in FEATURES.items() if offered.intersection(f.implied_by)}


_ASK_WORDS = frozenset({"check", "assessment", "analysis", "detection", "response"})  # say what is done, to anything


def _distinctive() -> dict[str, tuple[str, frozenset[str]]]:
    """Each service: its category and the words that tell it from the category's other services (a word in
    two or more of them, "inspection", "video", "mapping", tells nothing; a service with no word of its own,
    "crop spraying", is told by all of its words)."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for category, offered in SERVICES.items():
        words = {s: set(tokenize(s)) - _ASK_WORDS for s in offered}
        common = {w for s in offered for w in words[s] if sum(w in words[o] for o in offered) >= 2}
        out.update({s: (category, frozenset(words[s] - common or words[s])) for s in offered})
    return out


_DISTINCTIVE = _distinctive()


def named_services(text: str, categories: Sequence[str]) -> list[str]:
    """The services of `categories` that the searched words name: most of their distinctive words ("roof"
    names roof inspection, "heat loss" building heat loss; "heat" alone, "site" alone name nothing).

    Args:
        text: the words searched (the parser adds a service's name when the customer said its situation).
        categories: the categories the query points to.
    """
    said = set(tokenize(text))
    return [s for s, (c, words) in _DISTINCTIVE.items()
            if c in categories and 2 * len(words & said) > len(words)]


def sharing_services(text: str, category: str) -> list[str]:
    """The services of `category` that share a distinctive word with the words searched ("cattle ... livestock
    monitoring" shares "livestock" with thermal imaging's livestock and wildlife counts).

    Args:
        text: the words searched.
        category: the category whose services are looked at.
    """
    said = set(tokenize(text))
    return [s for s, (c, words) in _DISTINCTIVE.items() if c == category and words & said]


# where a thing sits: "the panels on our pole barn roof", "an antenna up on the roof"
_SITE = re.compile(r"\b(?:on|atop|up on|on top of)\s+(?:the|my|our|a|an|his|her|their|this|that|its)\s+"
                   r"(?:[a-z]+\s+){0,2}$")
_TOKEN = re.compile(r"[a-z0-9]+")


def _sits(low: str, i: int, tokens: list[tuple[int, str]], others: set[str]) -> bool:
    """Whether the word at `i` says where a thing just named sits: "panels on my barn roof" (`others`: the
    words of the other services named)."""
    m = _SITE.search(low, max(0, i - 48), i)
    return m is not None and any(t in others for j, t in tokens if m.start() - 40 <= j < m.start())


def sited_words(low: str, categories: Sequence[str], searched: Sequence[str] = ()) -> frozenset[str]:
    """The (stemmed) words of a service that `low` names only as where the object of another service it names
    sits ("40 solar panels on my pole barn roof": solar panels are inspected, the roof is where they are).

    Args:
        low: the normalised, lower-case query.
        categories: the categories the query points to.
        searched: the words searched besides (the services the query describes by their situation).
    """
    tokens = [(m.start(), stem(m.group())) for m in _TOKEN.finditer(low)]
    said = {t for _, t in tokens} | {stem(w) for w in searched}
    named = [s for s, (c, words) in _DISTINCTIVE.items() if c in categories and 2 * len(words & said) > len(words)]
    if len(named) < 2:
        return frozenset()
    sited: set[str] = set()
    for s in named:
        words = _DISTINCTIVE[s][1]
        others = {w for o in named if o != s for w in _DISTINCTIVE[o][1]} - words
        at = [i for i, t in tokens if t in words]
        if at and all(_sits(low, i, tokens, others) for i in at):
            sited |= words
    kept = [s for s in named if not _DISTINCTIVE[s][1] <= sited]
    return frozenset(sited) if kept else frozenset()
