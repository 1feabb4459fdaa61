"""The assistant's answer checked against what it cites, on invoke and sentence by sentence on streams.

The checker is the one /describe uses (chains/claims, rules in data/claims.yaml, `for: assistant` rules
included): prices, operators, titles, listing ids, places, figures, certifications, insurance, FAA waivers,
services and features in the model's text must be backed by the cited listings, or by the request itself
(the place searched, the service area). Two more tests hold whatever the model: when listings are cited, a
sentence that declines or denies ("sorry, I can't...") contradicts the search and is dropped, and an answer
that names none of the cited listings is not an answer to the request. What fails is dropped; nothing
unchecked is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chains.assistant.conversation import Request
from chains.claims import (
    ALWAYS_NAMES,
    AREA_NAMES,
    Catalog,
    ClaimRules,
    Facts,
    Finding,
    check,
    complete_sentences,
    context_facts,
    listing_facts,
    split_sentences,
)
from chains.guard import check_output

__all__ = ["ALWAYS_NAMES", "AREA_NAMES", "SentenceGate", "Sources", "sources_for"]

_DECLINE = re.compile(
    r"\b(sorry|unfortunately|unable|can ?not|can'?t|could ?n'?t|not able|do(es)? ?n[o']t (have|offer|provide|know)|"
    r"no (operators?|one|listings?)|not available)\b|^\s*no\b",
    re.IGNORECASE,
)
_DECLINES = "the search found listings, but the sentence declines or denies"
_FINISHED = re.compile(r"[.!?][\"')\]]*\s*$")
_LIST_MARKER = re.compile(r"\s*(?:\d{1,2}[.)]|[-*•])\s*")  # a numbered or bulleted list's marker alone


@dataclass(frozen=True)
class Sources:
    """What one answer may claim: the cited listings and the request, with the rules and the catalogue."""

    facts: tuple[Facts, ...]
    rules: ClaimRules
    catalog: Catalog | None
    owners: frozenset[tuple[str, str]] = frozenset()  # (title, operator) of each cited listing, lower case

    @property
    def cited(self) -> list[Facts]:
        return [f for f in self.facts if not f.context]

    def check(self, text: str) -> list[Finding]:
        """The sentences of `text` that claim more than the sources back, decline what the search found, or
        give one listing's title to another listing's operator."""
        found = check(text, self.facts, self.rules, feature="assistant", catalog=self.catalog)
        if self.cited:
            for sentence in split_sentences(text):
                if _DECLINE.search(sentence):
                    found.append(Finding("decline", _DECLINES, sentence))
                if self._mixed(sentence):
                    found.append(Finding("attribution", "gives a listing's title to another operator", sentence))
        return found

    def _mixed(self, sentence: str) -> bool:
        """'<title> by <operator>', '<operator>'s <title>', '<title> (<operator>': a pair no cited listing has."""
        low = sentence.lower()
        titles = {t for t, _ in self.owners if t in low}
        operators = {o for _, o in self.owners if o in low}
        for t in titles:
            for o in operators:
                if (t, o) in self.owners:
                    continue
                tail = re.escape(t) + r"[\"”']?\s*(?:,|\(|by|from|with|-|—)\s*(?:by\s+)?" + re.escape(o)
                if re.search(tail, low) or f"{o}'s {t}" in low or f"{o}’s {t}" in low:
                    return True
        return False

    def names_a_listing(self, text: str) -> bool:
        """Whether `text` names a cited listing (title, operator or id), or there is none to name."""
        low = text.lower()
        return not self.cited or any(n and n.lower() in low for f in self.cited for n in f.names)


def sources_for(
    listings: Sequence[Any], request: Request, *, rules: ClaimRules, catalog: Catalog | None,
    counties: Iterable[str] = (),
) -> Sources:
    """The sources of one answer.

    Args:
        listings: the cited listings.
        request: the conversation's request (its place and figures may be repeated).
        rules: the claim rules.
        catalog: every name the data knows (services, operators and titles, places).
        counties: the service area's counties (always nameable).
    """
    places = [*AREA_NAMES, *counties, *(f"{c} County" for c in counties)]
    figures: list[Any] = []
    it = request.interpreted
    if it is not None:
        if it.place is not None:
            places += [it.place.name, *([it.place.county, f"{it.place.county} County"] if it.place.county else [])]
        figures += [v for v in (it.max_price, it.radius_miles) if v is not None]
    context = context_facts(places=places, figures=figures, names=[*ALWAYS_NAMES, *places])
    facts = [listing_facts(x) for x in listings] + [context]
    owners = frozenset((x.title.lower(), x.operator.lower()) for x in listings)
    return Sources(facts=tuple(facts), rules=rules, catalog=catalog, owners=owners)


@dataclass
class SentenceGate:
    """Lets an answer through one checked sentence at a time (a stream, or a whole answer at once).

    A sentence goes out only if it makes no unbacked claim and the answer so far does not leak the system
    prompt or its canary (a leak ends the answer). While listings are cited, sentences wait until one of
    them names a cited listing; if none ever does, none goes out (`close`).

    Args:
        sources: what the answer may claim.
        canary: this request's canary.
        system: the system prompt's own words, when asked (without the listings: quoting a listing is no
            leak; asked late: the prompt is the one of the model that answers).
        min_words: a run of this many words shared with `system` is a leak.
    """

    sources: Sources
    canary: str
    system: Callable[[], str]
    min_words: int
    findings: list[Finding] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    leaked: bool = False
    _waiting: list[str] = field(default_factory=list)
    _named: bool = False
    _buffer: str = ""
    _marker: str = ""  # a list number ("2.") waiting for its item: it goes out with it, or not at all

    def feed(self, chunk: str) -> list[str]:
        """Adds streamed text; returns the sentences that may go out now."""
        if self.leaked:
            return []
        self._buffer += chunk
        cut = complete_sentences(self._buffer)
        if cut == 0:
            return []
        done, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._pass(split_sentences(done))

    def close(self, *, cut: bool = False) -> list[str]:
        """The last sentence, if it passes; what waited for a listing's name is dropped if none came.

        Args:
            cut: the model stopped at its token limit: an unfinished last sentence is dropped.
        """
        rest, self._buffer = self._buffer, ""
        if cut and rest.strip() and not _FINISHED.search(rest):
            self.findings.append(Finding("cut", "the model stopped in the middle of a sentence", rest.strip()))
            rest = ""
        out = [] if self.leaked or not rest.strip() else self._pass(split_sentences(rest))
        if self._waiting:
            self.findings.append(Finding("unrelated", "the answer names none of the cited listings",
                                         " ".join(self._waiting)))
            self.sent = [s for s in self.sent if s not in self._waiting]
            self._waiting = []
        return out

    def take(self, text: str, *, cut: bool = False) -> str:
        """A whole answer through the gate: the sentences that pass, joined (`cut`: see `close`)."""
        return " ".join([*self.feed(text), *self.close(cut=cut)])

    @property
    def words(self) -> int:
        return sum(len(s.split()) for s in self.sent)

    def take_back(self, sentence: str) -> None:
        """Removes a sentence already let through (moderation refused it) and ends the answer."""
        if sentence in self.sent:
            self.sent.remove(sentence)
        self.leaked = True

    def _pass(self, sentences: list[str]) -> list[str]:
        out: list[str] = []
        for item in sentences:
            if _LIST_MARKER.fullmatch(item):
                self._marker = item
                continue
            sentence, self._marker = (f"{self._marker} {item}" if self._marker else item), ""
            found = self.sources.check(item)
            if found:
                self.findings += found
                continue
            leak = check_output(" ".join([*self.sent, sentence]), canary=self.canary, system_prompt=self.system(),
                                min_words=self.min_words)
            if leak.leaked:
                self.findings.append(Finding("leak", "repeats the system prompt", sentence))
                self.leaked = True
                break
            self.sent.append(sentence)
            if self._named or self.sources.names_a_listing(sentence):
                self._named = True
                out += [*self._waiting, sentence]
                self._waiting = []
            else:
                self._waiting.append(sentence)
        return out
