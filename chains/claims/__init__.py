"""The claim checker every feature shares: generated text may claim only what its sources back.

    rules.py   data/claims.yaml: which phrases make a claim, where the facts must back it
    facts.py   the sources (a describe input, the cited listings, the request) and the catalogue of names
    check.py   sentence by sentence: check -> findings; strip; trim_words

`/describe` checks a description against the operator's input; the assistant checks its answer against the
listings it cites. No model call anywhere here.
"""

from chains.claims.check import Finding, check, complete_sentences, split_sentences, strip, trim_words
from chains.claims.facts import ALWAYS_NAMES, AREA_NAMES, Catalog, Facts, context_facts, listing_facts, money
from chains.claims.rules import ClaimRules, Rule, load_claims

__all__ = [
    "ALWAYS_NAMES",
    "AREA_NAMES",
    "Catalog",
    "ClaimRules",
    "Facts",
    "Finding",
    "Rule",
    "check",
    "complete_sentences",
    "context_facts",
    "listing_facts",
    "load_claims",
    "money",
    "split_sentences",
    "strip",
    "trim_words",
]
