"""The claim rules of `data/claims.yaml`: loaded, validated and re-read after an edit.

A rule says which phrases make a claim (`match`) and where the facts must back it (`support` in the fields
named by `in`, or a `kind` with its own test). The file's header documents every key; this module only
checks that each rule is well-formed and names the rule when it is not.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from errors import ConfigError
from livefiles import live_file

__all__ = ["FEATURES", "FIELDS", "KNOWN", "RANKS", "ClaimRules", "Rule", "load_claims", "parse_claims"]

# The fields a rule may name in `in` (chains/claims/facts.py fills them for a describe input and a listing).
FIELDS = frozenset({"certifications", "services", "features", "title", "notes", "category", "operator", "places",
                    "figures"})
# The catalogues a `known` rule draws its phrases from (chains/claims/facts.py `Catalog`).
KNOWN = frozenset({"services", "names", "places"})
# The features whose text a rule applies to; a rule without `for` applies to both.
FEATURES = frozenset({"describe", "assistant"})
# What a `rank` rule compares the cited listings by (chains/claims/facts.py `Facts.ranks`), and which end is first:
# the best rated and the most reviewed are the highest, the cheapest and the closest the lowest.
RANKS = {"rating": max, "reviews": max, "price": min, "distance": min}
_KINDS = {"pattern", "price", "price_unit", "number", "known", "id", "rank"}
_KEYS = {"id", "reason", "match", "support", "in", "when", "kind", "known", "for", "by"}


@dataclass(frozen=True)
class Rule:
    """One claim rule of `claims.yaml`."""

    id: str
    reason: str
    match: tuple[re.Pattern[str], ...]
    kind: str = "pattern"
    support: tuple[re.Pattern[str], ...] = ()
    fields: tuple[str, ...] = ()
    when: str | None = None
    known: str | None = None
    features: frozenset[str] = FEATURES
    by: str | None = None

    @property
    def offer(self) -> bool:
        """A claim about what an operator offers (a credential, insurance, an operation, a feature, a service),
        as opposed to an entity (a name, id, price, figure, place, contact) that must exist in the data."""
        return self.kind == "pattern" or self.known == "services"


@dataclass(frozen=True)
class ClaimRules:
    """All rules, and the file's content hash (part of the describe cache key)."""

    rules: tuple[Rule, ...]
    version: str

    def for_feature(self, feature: str) -> tuple[Rule, ...]:
        """The rules that apply to one feature's text ("describe" or "assistant")."""
        return tuple(r for r in self.rules if feature in r.features)


def _compile(patterns: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"{where}: expected a list of regexes")
    try:
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)
    except re.error as exc:
        raise ConfigError(f"{where}: bad regex ({exc})") from None


def _rule(raw: Any, source: str) -> Rule:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("reason"):
        raise ConfigError(f"{source}: each rule needs an id and a reason")
    where = f"{source}: rule {raw['id']!r}"
    unknown = set(raw) - _KEYS
    kind = str(raw.get("kind", "pattern"))
    fields = tuple(raw.get("in") or ())
    features = frozenset(raw.get("for") or FEATURES)
    if unknown or kind not in _KINDS or not set(fields) <= FIELDS or not features <= FEATURES:
        raise ConfigError(f"{where}: unknown key, kind, field or feature ({sorted(unknown) or kind or fields})")
    if raw.get("when") not in (None, "insured"):
        raise ConfigError(f"{where}: 'when' can only be 'insured'")
    if kind == "pattern" and not raw.get("when") and not (raw.get("support") and fields):
        raise ConfigError(f"{where}: needs 'support' and 'in', or 'when'")
    if kind == "known" and (raw.get("known") not in (*KNOWN, None) or not (raw.get("known") or raw.get("match"))
                            or not fields):
        raise ConfigError(f"{where}: a 'known' rule needs 'known' ({', '.join(sorted(KNOWN))}) or 'match', and 'in'")
    if kind != "known" and not raw.get("match"):
        raise ConfigError(f"{where}: needs 'match'")
    if (kind == "rank") != (raw.get("by") is not None) or (kind == "rank" and raw["by"] not in RANKS):
        raise ConfigError(f"{where}: a 'rank' rule, and only one, needs 'by' ({', '.join(sorted(RANKS))})")
    return Rule(id=str(raw["id"]), reason=str(raw["reason"]), match=_compile(raw.get("match") or [], where),
                kind=kind, support=_compile(raw.get("support") or [], where), fields=fields, when=raw.get("when"),
                known=raw.get("known"), features=features, by=raw.get("by"))


def parse_claims(text: str, source: str) -> ClaimRules:
    """Validates the rules file's text (`source` names it in errors)."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'rules'")
    rules = tuple(_rule(r, source) for r in (raw.get("rules") or []))
    return ClaimRules(rules=rules, version=hashlib.sha256(text.encode()).hexdigest()[:12])


def load_claims(path: Path) -> ClaimRules:
    """Loads (and re-loads after an edit: `livefiles`) the claim rules; a bad edit keeps the last good rules.

    Args:
        path: the rules file, normally `settings.describe_claims_file`.

    Raises:
        ConfigError: at the first read, the file is missing or a rule is malformed (the message names the rule).
    """
    try:
        return live_file(path, lambda text: parse_claims(text, path.name), kind="claims").get()
    except OSError:
        raise ConfigError(f"no claims file at {path}") from None
