"""Filter phrases: the words in a query that set a search filter ("under $300", "within 10 miles", "insured").

The parser tries them in this order, first, and blanks each phrase that matched before it looks for places,
categories and features: "within 24 hours" can set a filter without also asking for 24-hour call-outs.
For each filter the first phrase that matches wins. A phrase reads its value from the named group `n` (a
number; `k` after it means thousands) unless it has a fixed `value`. A value the filter model refuses (a
radius of 500 miles) is dropped, and its words are still not searched.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FILTER_PHRASES", "PREPOSITIONS", "FilterPhrase"]


@dataclass(frozen=True)
class FilterPhrase:
    """One way of saying a filter.

    Args:
        filter: the `retrieval.filters.SearchFilters` field it sets.
        pattern: a regex over the normalised, lower-case query; `(?P<n>...)` captures the number.
        value: the filter's value when the phrase says it without a number (`insured` -> True).
    """

    filter: str
    pattern: str
    value: float | bool | None = None


# a number that is not a distance, a duration or a weight; `k` = thousands
_NUM = (
    r"\$?\s*(?P<n>\d[\d,]*(?:\.\d+)?)(?![\d,]|\.\d)\s*(?P<k>k\b)?(?!\s*(?:miles?|mi\b|km|minutes?|mins?|hours?|hrs?|"
    r"acres?|lbs?|pounds?|kg|feet|ft|stars?|%|percent))\s*(?:dollars|usd|bucks)?"
)

FILTER_PHRASES: tuple[FilterPhrase, ...] = (
    FilterPhrase(
        "max_price",
        r"\b(?:under|below|less than|cheaper than|max(?:imum)?|up to|no more than|at most|budget(?: of| is)?)"
        r"\s*(?:(?:a|like|about|around|roughly)\s+)?" + _NUM,
    ),
    FilterPhrase("max_price", r"<=?\s*" + _NUM),
    FilterPhrase(
        "max_price",
        r"\$\s*(?P<n>\d[\d,]*(?:\.\d+)?)\s*(?P<k>k)?\s*(?:(?:a|an|per|each|the)\s+\w+\s+)?"
        r"(?:or less|or under|or below|max|and under|tops|at most)\b",
    ),
    FilterPhrase(
        "radius_miles", r"\b(?:within|in a|inside|under|less than)\s+(?P<n>\d+(?:\.\d+)?)\s*[- ]?(?:miles?|mi)\b"
    ),
    FilterPhrase("insured", r"\b(?:insured|insurance certificate|liability insurance|coi)\b", True),
)

# words before a place name that go with it ("near Troy", "in Ann Arbor"): not searched either
PREPOSITIONS = frozenset({"in", "near", "around", "at", "by", "from", "to", "close", "nearby", "within", "of"})
