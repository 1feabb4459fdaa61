"""Grounded claims: every sentence of a generated description is checked against the operator's input.

The rules are data (`data/claims.yaml`): certifications, insurance, FAA-restricted operations, equipment,
offers, rankings, figures and prices. `check()` returns one `Finding` per (sentence, rule) that is not
backed by the input; `strip()` removes those sentences. Pure functions, no model calls.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chains.describe.schema import DescribeInput
from errors import ConfigError

__all__ = ["ClaimRules", "Finding", "Rule", "check", "load_claims", "split_sentences", "strip", "trim_words"]

_FIELDS = {"certifications", "services", "features", "title", "notes", "category"}
_KINDS = {"pattern", "price", "number"}
# A period after these is not a sentence end ("St. Clair Shores", "Mt. Clemens", "approx. 2 hours").
_ABBREV = {"st", "mt", "ft", "dr", "mr", "mrs", "ms", "inc", "co", "ltd", "jr", "sr", "approx", "vs", "no",
           "e.g", "i.e", "u.s", "etc", "sq", "hr", "min", "est"}
_END = re.compile(r"[.!?]+[\"')\]]*(?:\s+|$)|\n+")


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


@dataclass(frozen=True)
class ClaimRules:
    """All rules, and the file's content hash (part of the describe cache key)."""

    rules: tuple[Rule, ...]
    version: str


@dataclass(frozen=True)
class Finding:
    """A sentence making a claim the input does not back."""

    rule: str
    reason: str
    sentence: str

    @property
    def flag(self) -> str:
        return f"{self.rule}: {self.reason}"


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
    unknown = set(raw) - {"id", "reason", "match", "support", "in", "when", "kind"}
    kind = str(raw.get("kind", "pattern"))
    fields = tuple(raw.get("in") or ())
    if unknown or kind not in _KINDS or not set(fields) <= _FIELDS:
        raise ConfigError(f"{where}: unknown key, kind or field ({sorted(unknown) or kind or fields})")
    if raw.get("when") not in (None, "insured"):
        raise ConfigError(f"{where}: 'when' can only be 'insured'")
    if kind == "pattern" and not raw.get("when") and not (raw.get("support") and fields):
        raise ConfigError(f"{where}: needs 'support' and 'in', or 'when'")
    return Rule(id=str(raw["id"]), reason=str(raw["reason"]), match=_compile(raw.get("match"), where), kind=kind,
                support=_compile(raw.get("support") or [], where), fields=fields, when=raw.get("when"))


_cache: dict[Path, tuple[tuple[int, int], ClaimRules]] = {}
_lock = threading.Lock()


def load_claims(path: Path) -> ClaimRules:
    """Loads (and re-loads after an edit) the claim rules.

    Args:
        path: the rules file, normally `settings.describe_claims_file`.

    Raises:
        ConfigError: the file is missing or a rule is malformed (the message names the rule).
    """
    try:
        st = path.stat()
    except OSError:
        raise ConfigError(f"no claims file at {path}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with _lock:
        text = path.read_text(encoding="utf-8")
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path.name}: not valid YAML ({exc})") from None
        rules = tuple(_rule(r, path.name) for r in (raw.get("rules") or []))
        loaded = ClaimRules(rules=rules, version=hashlib.sha256(text.encode()).hexdigest()[:12])
        _cache[path] = (stamp, loaded)
    return loaded


def split_sentences(text: str) -> list[str]:
    """Splits text into sentences (a line break also ends one); abbreviations like "St." do not."""
    out: list[str] = []
    start = 0
    for m in _END.finditer(text):
        if "\n" not in m.group() and m.group().startswith("."):
            words = text[start : m.start()].split()
            if words and words[-1].lower().rstrip(".") in _ABBREV:
                continue
        piece = text[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _haystack(inp: DescribeInput, fields: tuple[str, ...]) -> str:
    parts: list[str] = []
    for f in fields:
        value = getattr(inp, f)
        parts.extend(value if isinstance(value, list) else [str(value)])
    return "\n".join(parts).replace("_", " ")


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _backed(rule: Rule, match: re.Match[str], inp: DescribeInput) -> bool:
    hay = _haystack(inp, rule.fields)
    if rule.kind == "pattern":
        if rule.when == "insured":
            return inp.insured
        return any(p.search(hay) for p in rule.support)
    value = _number(next((g for g in match.groups() if g), match.group()))
    if value is None:
        return False
    if rule.kind == "price" and inp.price_from_usd is not None and abs(value - inp.price_from_usd) < 0.5:
        return True
    given = {_number(n) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", hay)}
    return value in given


def check(text: str, inp: DescribeInput, rules: ClaimRules) -> list[Finding]:
    """Finds every sentence that makes a claim the input does not back.

    Args:
        text: the generated description.
        inp: the canonical input it was generated from.
        rules: the loaded claim rules.

    Returns:
        One finding per (sentence, rule), in text order.
    """
    found: list[Finding] = []
    for sentence in split_sentences(text):
        for rule in rules.rules:
            for pattern in rule.match:
                unbacked = [m for m in pattern.finditer(sentence) if not _backed(rule, m, inp)]
                if unbacked:
                    found.append(Finding(rule=rule.id, reason=rule.reason, sentence=sentence))
                    break
    return found


def strip(text: str, findings: list[Finding]) -> str:
    """The text without the sentences of `findings` (the rest joined with single spaces)."""
    bad = {f.sentence for f in findings}
    return " ".join(s for s in split_sentences(text) if s not in bad)


def trim_words(text: str, max_words: int) -> tuple[str, bool]:
    """Keeps whole sentences up to `max_words` words (cuts the first sentence if it alone is longer).

    Returns:
        The text and whether it was shortened.
    """
    if len(text.split()) <= max_words:
        return text, False
    kept: list[str] = []
    count = 0
    for sentence in split_sentences(text):
        n = len(sentence.split())
        if count + n > max_words:
            break
        kept.append(sentence)
        count += n
    if not kept:
        return " ".join(text.split()[:max_words]).rstrip(",;:") + "…", True
    return " ".join(kept), True
