"""The claim check: every sentence of a generated text is tested against every rule, against its sources.

    check(text, facts, rules, feature=..., catalog=...) -> [Finding]   one per (sentence, rule) not backed
    strip(text, findings) -> the text without those sentences
    trim_words(text, n)   -> whole sentences up to n words

A sentence that names some of its sources (a listing's title, operator or id) is checked against those
sources only, so "SkyEye is insured" needs SkyEye to be insured, not any cited listing; a sentence that
names none is about all of them: "they are insured" needs every one insured, while a price or a name in it
only has to be one of theirs. With no source at all (an answer that cites nothing), a sentence about
operators is general advice: only names, ids, prices, figures and places are checked. Context facts (the
request: the place searched) back every sentence. A comparison ("X has the best reviews", `kind: rank`) must
name a source that is first of all of them by that field. Pure functions, no model calls: `/describe` checks
against the operator's input, the assistant against the listings it cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chains.claims.facts import Catalog, Facts
from chains.claims.rules import RANKS, ClaimRules, Rule

__all__ = ["Finding", "check", "complete_sentences", "split_sentences", "strip", "trim_words"]

# A period after these is not a sentence end ("St. Clair Shores", "Mt. Clemens", "approx. 2 hours").
_ABBREV = {"st", "mt", "ft", "dr", "mr", "mrs", "ms", "inc", "co", "ltd", "jr", "sr", "approx", "vs", "no",
           "e.g", "i.e", "u.s", "etc", "sq", "hr", "min", "est"}
_END = re.compile(r"[.!?]+[\"')\]]*(?:\s+|$)|\n+")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_DOLLARS = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")


@dataclass(frozen=True)
class Finding:
    """A sentence making a claim its sources do not back."""

    rule: str
    reason: str
    sentence: str

    @property
    def flag(self) -> str:
        return f"{self.rule}: {self.reason}"


def _ends(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: a sentence ends at . ! ? followed by a space, or at a line break."""
    spans, start = [], 0
    for m in _END.finditer(text):
        if "\n" not in m.group() and m.group().startswith("."):
            words = text[start : m.start()].split()
            if words and words[-1].lower().rstrip(".") in _ABBREV:
                continue
        spans.append((start, m.end()))
        start = m.end()
    return spans


def complete_sentences(text: str) -> int:
    """How much of a text still being written is whole sentences: the index after the last sentence end
    that is followed by a space or a line break (a final "." may yet be "4.8" or "St. Clair")."""
    ends = [e for _, e in _ends(text) if e < len(text) or text[-1:].isspace()]
    return ends[-1] if ends else 0


def _pieces(text: str) -> list[tuple[str, str]]:
    """Each sentence with what ended it: "\n" when a line break did, else " "."""
    out: list[tuple[str, str]] = []
    start = 0
    for begin, end in _ends(text):
        piece = text[begin:end].strip()
        if piece:
            out.append((piece, "\n" if "\n" in text[begin:end] else " "))
        start = end
    tail = text[start:].strip()
    if tail:
        out.append((tail, " "))
    return out


def _join(pieces: list[tuple[str, str]]) -> str:
    """Sentences back into a text: a sentence a line break ended keeps its line (lines read as sentences, so
    joining two with a space would make one sentence of them, and change what the check sees)."""
    return "".join(s + sep for s, sep in pieces).rstrip()


def split_sentences(text: str) -> list[str]:
    """Splits text into sentences (a line break also ends one); abbreviations like "St." do not."""
    return [s for s, _ in _pieces(text)]


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _normal(text: str) -> str:
    return re.sub(r"[\s-]+", " ", text.lower()).strip()


def _backed(rule: Rule, match: re.Match[str], sources: Sequence[Facts]) -> bool:
    if rule.kind == "pattern":
        if rule.when == "insured":
            return any(f.insured for f in sources if not f.context)
        hay = "\n".join(f.text(rule.fields) for f in sources)
        return any(p.search(hay) for p in rule.support)
    if rule.kind == "id":
        return match.group().lower() in {f.id.lower() for f in sources if f.id}
    if rule.kind == "known":
        hay = "\n".join(f.normal(rule.fields) for f in sources)
        words = _normal(match.group()).split()
        # "Try Jaber Aerial": a name pattern may take a sentence's first words with it; the name is its tail.
        tails = [" ".join(words[i:]) for i in range(max(1, len(words) - 1))]
        return any(t in hay or (t.endswith("s") and t[:-1] in hay) for t in tails)
    value = _number(next((g for g in match.groups() if g), match.group()))
    if value is None:
        return False
    if rule.kind == "price_unit":
        return _unit_backed(value, match.group(match.lastindex or 0), sources)
    if rule.kind == "price" and any(abs(value - p) < 0.5 for f in sources for p in f.prices):
        return True
    hay = "\n".join(f.text(rule.fields) for f in sources)
    # An amount must appear as an amount ("$40 travel fee"): "25 acres" in a description backs no $25.
    found = _DOLLARS.findall(hay) if rule.kind == "price" else _NUMBER.findall(hay)
    return value in {_number(n) for n in found}


# How a sentence may name a listing's price unit (the listings' own words are "hour", "project", "session",
# "acre", "delivery").
_UNITS = {"hr": "hour", "hrs": "hour", "hours": "hour", "projects": "project", "job": "project", "sessions": "session",
          "acres": "acre", "ac": "acre", "deliveries": "delivery", "drop": "delivery", "drop-off": "delivery"}


def _unit_backed(value: float, unit: str, sources: Sequence[Facts]) -> bool:
    """"$200 per project": if $200 is a source's price, one source with that price must use that unit. An
    amount that is no source's price is the `price` rule's business; a source of unknown unit backs any."""
    said = unit.lower().rstrip(".")
    said = _UNITS.get(said, said)
    priced = [(f, i) for f in sources for i, p in enumerate(f.prices) if abs(value - p) < 0.5]
    if not priced:
        return True
    return any(i >= len(f.price_units) or f.price_units[i] == said for f, i in priced)


def _sources(sentence: str, facts: Sequence[Facts]) -> tuple[list[Facts], list[Facts], bool]:
    """The sources a sentence is about (the ones it names; all when it names none), the context, and whether
    it named any."""
    low = sentence.lower()
    own = [f for f in facts if not f.context]
    named = [f for f in own if any(n and n.lower() in low for n in f.names)]
    return named or own, [f for f in facts if f.context], bool(named)


def _first(rule: Rule, about: list[Facts], own: list[Facts]) -> bool:
    """A `rank` claim ("X has the best reviews", "Y is the closest"): one of the listings the sentence names is
    first of all the cited listings by the rule's field (ties count as first); a sentence that names none
    ranks nobody in particular."""
    assert rule.by is not None
    values = [f.ranks[rule.by] for f in own if rule.by in f.ranks]
    if not values:
        return False
    top = RANKS[rule.by](values)
    return any(rule.by in f.ranks and abs(f.ranks[rule.by] - top) < 1e-9 for f in about)


def _claim_backed(rule: Rule, match: re.Match[str], about: list[Facts], context: list[Facts]) -> bool:
    """A claim about several sources at once ("they are insured") must hold for each of them; a name, price
    or figure only has to be one of theirs."""
    if not about and rule.offer:
        return True  # no operator to misattribute it to: general advice ("look for Part 107 pilots")
    if rule.kind == "pattern" and len(about) > 1:
        return all(_backed(rule, match, [f, *context]) for f in about)
    return _backed(rule, match, [*about, *context])


def _patterns(rule: Rule, catalog: Catalog | None) -> tuple[re.Pattern[str], ...]:
    if rule.kind != "known" or rule.known is None:
        return rule.match
    pattern = catalog.pattern(rule.known or "") if catalog is not None else None
    return (pattern,) if pattern is not None else ()


def check(
    text: str,
    facts: Facts | Sequence[Facts],
    rules: ClaimRules,
    *,
    feature: str = "describe",
    catalog: Catalog | None = None,
) -> list[Finding]:
    """Finds every sentence that makes a claim its sources do not back.

    Args:
        text: the generated text.
        facts: its sources (one `Facts`, or several: the cited listings plus the request's context).
        rules: the loaded claim rules.
        feature: whose text it is ("describe", "assistant"): rules with a `for` list apply to theirs only.
        catalog: the names the data knows, for `known` rules (skipped without one).

    Returns:
        One finding per (sentence, rule), in text order.
    """
    all_facts = [facts] if isinstance(facts, Facts) else list(facts)
    own = [f for f in all_facts if not f.context]
    active = [(r, _patterns(r, catalog)) for r in rules.for_feature(feature)]
    found: list[Finding] = []
    for sentence in split_sentences(text):
        about, context, named = _sources(sentence, all_facts)
        for rule, patterns in active:
            for pattern in patterns:
                if pattern.search(sentence) is None:  # the common case, without a generator per pattern
                    continue
                if rule.kind == "rank":  # a comparison: one of the listings named is first (naming none ranks nobody)
                    backed = not named or _first(rule, about, own)
                else:
                    backed = all(_claim_backed(rule, m, about, context) for m in pattern.finditer(sentence))
                if not backed:
                    found.append(Finding(rule=rule.id, reason=rule.reason, sentence=sentence))
                    break
    return found


def strip(text: str, findings: list[Finding]) -> str:
    """The text without the sentences of `findings` (the rest as they were laid out: a sentence a line break
    ended keeps its line)."""
    bad = {f.sentence for f in findings}
    return _join([p for p in _pieces(text) if p[0] not in bad])


def trim_words(text: str, max_words: int) -> tuple[str, bool]:
    """Keeps whole sentences up to `max_words` words (cuts the first sentence if it alone is longer).

    Returns:
        The text and whether it was shortened.
    """
    if len(text.split()) <= max_words:
        return text, False
    kept: list[tuple[str, str]] = []
    count = 0
    for sentence, sep in _pieces(text):
        n = len(sentence.split())
        if count + n > max_words:
            break
        kept.append((sentence, sep))
        count += n
    if not kept:
        return " ".join(text.split()[:max_words]).rstrip(",;:") + "…", True
    return _join(kept), True
