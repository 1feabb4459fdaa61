"""The deterministic query parser: it always runs, in microseconds, and never fails.

"wedding videographer Ann Arbr under $500" -> category videography, place Ann Arbor (typo fixed), max price
500, and the words left to search. One pass over the text: the filter phrases first (each one found is
blanked), then places, categories and features in what is left. Phrases come from the vocabulary
(retrieval/vocab); places from `places.json` (municipalities, counties, aliases, and well-known places
outside the service area); typos are matched with rapidfuzz.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Levenshtein

from retrieval.filters import SearchFilters, accepts
from retrieval.lru import LRUCache
from retrieval.places import Gazetteer, OutsidePlace, Place
from retrieval.text import STOPWORDS, stem
from retrieval.vocab import (
    CATEGORY_PATTERNS,
    CATEGORY_WORDS,
    CREDENTIAL_PATTERN,
    FEATURE_PATTERNS,
    FILTER_PATTERNS,
    FIRM,
    NEGATION_PATTERN,
    OPERATOR_CREDENTIAL_PATTERN,
    PREPOSITIONS,
    SCENERY_WHERE_PATTERN,
    SCENERY_WHO_PATTERN,
    SERVICE_HINT_PATTERNS,
    SERVICE_WORDS,
    Category,
    sited_words,
)

__all__ = ["Interpreted", "PlaceRef", "QueryParser", "hinted_services", "normalize", "spell_out"]

_TOKEN = re.compile(r"[a-z0-9]+")
_ASK = re.compile(r"\b(?:and|but|so|want|wants|need|needs|looking|like to|would like|hoping)\b")
_PERIOD = re.compile(r"\.(?=\s|$)")
_SCENERY = 1 / 3  # the weight of a service word that only sets the scene
# after a service: it is had already ("the survey is done already", "photos were taken care of")
# ("the inspection is done by drone" says how it is done: not turned down)
_DONE = re.compile(r"\s+(?:is|was|are|were|has been|have been|got)\s+(?:already\s+|all\s+)?"
                   r"(?:done|finished|complete|completed|taken care of|handled|covered|sorted)\b"
                   r"(?!\s+(?:by|with|using|from|in|on|at|for|via|through|remotely|safely|properly|quickly)\b)")
_SERVICE_SET = frozenset(SERVICE_WORDS)
_VOWELS = frozenset("aeiouy")
_JOINED = frozenset({"", "or", "nor", "/", "and/or"})  # between two phrases turned down by one "no"
_LANDMARK = re.compile(r"\b(?:(?:north|south|east|west)(?:east|west)?\s+of|across\s+(?:\w+\s+){0,3}?from)"
                       r"\s+(?:the\s+)?$")
# before a word, a determiner says it is a thing ("the attic", "our landing"): no typo'd place name
_DETERMINERS = frozenset({"the", "a", "an", "my", "our", "your", "his", "her", "their", "this", "that", "these",
                          "those", "its"})
_WATER = frozenset({"lake"})  # "Lake St. Clair" is water, not the city of St. Clair ("Lake Orion" is a place name)
_UNITS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_U, _T = "|".join(_UNITS), "|".join(_TENS)
_U1 = "|".join(w for w in _UNITS if w != "a")  # "twenty a month" is not 21
# "a hundred", "two hundred and fifty", "seventy five", "a grand", "2 grand": prices said in words
_SPELLED = re.compile(
    rf"\b(?:(?P<h>{_U})\s+hundred(?:\s+and)?(?:\s+(?P<ht>{_T}))?(?:\s+(?P<hu>{_U1}))?"
    rf"|(?P<su>{_U1})[\s-]+(?P<st>{_T})(?:[\s-]+(?P<sv>{_U1}))?"  # "two fifty (five)": the hundred left out
    rf"|(?P<t>{_T})(?:[\s-]+(?P<tu>{_U1}))?|(?P<g>{_U}|\d+)\s+grand)\b"
)
_GENERIC = frozenset(
    [
        "drone",
        "drones",
        "uav",
        "uas",
        "service",
        "services",
        "company",
        "companies",
        "pilot",
        "pilots",
        "operator",
        "operators",
        "cheap",
        "affordable",
        "quote",
        "price",
        "prices",
        "cost",
        "hire",
        "book",
        "someone",
        "somebody",
        "who",
        "can",
        "do",
        "help",
        "local",
        "area",
        "michigan",
        "mi",
        "usa",
    ]
)


# words of their own one slip away from a service word: "signed contracts" are no contractor
_NOT_TYPOS = frozenset({"contract", "contracts", "contact", "contacts", "contacted", "content", "context",
                        # words of their own, read by the categories' phrases where they name a service
                        "deliver", "delivers", "delivered", "delivering"})

_VOCAB_MEMO = 50_000  # words remembered by `_vocab_word`


class PlaceRef(BaseModel):
    name: str
    county: str | None = None
    kind: str
    lat: float
    lon: float


class Interpreted(SearchFilters):
    """What the search understood from the query (returned to the caller as `interpreted`): its filters
    (`category`, `categories`, `max_price`, `radius_miles`, `insured`, ...: retrieval.filters) and the rest."""

    text: str = Field(description="the words searched, without place and filter phrases")
    place: PlaceRef | None = None
    outside_place: PlaceRef | None = Field(default=None, description="a place outside the service area")
    features: list[str] = Field(default_factory=list)
    fuzzy_place: bool = Field(default=False, description="the place was matched despite a typo")
    llm: bool = Field(default=False, description="an LLM step added to this interpretation")


def normalize(text: str) -> str:
    """Lower case; 'Saint'/'St.' -> 'st', 'Mount'/'Mt.' -> 'mt', apostrophes and dots dropped."""
    text = text.lower().replace("'", "").replace("’", "").replace(".", " ")
    text = re.sub(r"\bsaint\b", "st", text)
    return re.sub(r"\bmount\b", "mt", text)


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    place: Place | OutsidePlace
    fuzzy: bool = False


def _ref(p: Place | OutsidePlace) -> PlaceRef:
    if isinstance(p, Place):
        return PlaceRef(name=p.name, county=p.county, kind=p.kind, lat=p.lat, lon=p.lon)
    return PlaceRef(name=f"{p.name}, {p.region}", kind="outside", lat=p.lat, lon=p.lon)


def _spelled(m: re.Match[str]) -> str:
    def unit(word: str | None) -> int:
        return 0 if word is None else _UNITS[word] if word in _UNITS else int(word)

    if m.group("g") is not None:
        return str(unit(m.group("g")) * 1000)
    if m.group("su") is not None:
        return str(unit(m.group("su")) * 100 + _TENS[m.group("st")] + unit(m.group("sv")))
    if m.group("h") is not None:
        return str(unit(m.group("h")) * 100 + _TENS.get(m.group("ht") or "", 0) + unit(m.group("hu")))
    return str(_TENS[m.group("t")] + unit(m.group("tu")))


def spell_out(text: str) -> str:
    """Numbers said in words as digits ("under a hundred" -> "under 100", "two grand" -> "2000"); a lone
    "one" or "a" stays a word."""
    return _SPELLED.sub(_spelled, text)


# Words many place names share ("Genoa Township", "Erie Township", "Oakland County"): a typo'd name must be close
# without them, or "Scio Township" reads as Genoa Township and "Brownstown Township" as Brandon Township.
_PLACE_KINDS = frozenset({"township", "twp", "charter", "county", "co", "city", "village", "of"})


def _kind_word(word: str) -> bool:
    """'township', 'twp', 'county'... and a typo'd 'township' ('townshp', 'twnship')."""
    return word in _PLACE_KINDS or (len(word) >= 6 and fuzz.ratio(word, "township") >= 80)


def _same_root(said: str, name: str, cutoff: float) -> bool:
    """Whether a fuzzy match still holds on the words that tell places apart (True when either is only those)."""
    a = " ".join(w for w in said.split() if not _kind_word(w))
    b = " ".join(w for w in name.split() if not _kind_word(w))
    return not a or not b or (a == said and b == name) or fuzz.ratio(a, b) >= cutoff


class QueryParser:
    """Parses free-text queries against one gazetteer.

    Args:
        gazetteer: the places of the service area (and outside it).
        cache_size: how many recent parses to keep (the parser is deterministic); 0 keeps none.
    """

    def __init__(self, gazetteer: Gazetteer, *, cache_size: int = 0) -> None:
        self.gazetteer = gazetteer
        self._cache: LRUCache[str, str] = LRUCache(cache_size)  # query -> its Interpreted as JSON
        self._vocab = [p for pairs in CATEGORY_PATTERNS.values() for p, _ in pairs] + list(FEATURE_PATTERNS.values())
        self._vocab_seen: dict[str, bool] = {}  # word -> a vocabulary word? (~60 patterns a word otherwise)
        self._names: dict[tuple[str, ...], Place | OutsidePlace] = {}
        for o in gazetteer.outside:
            for name in (o.name, *o.aliases):
                self._names.setdefault(tuple(_TOKEN.findall(normalize(name))), o)
        for p in gazetteer.places:  # inside the area wins over an outside namesake
            names = [p.name, *p.aliases]
            if p.is_county:
                names += [f"{p.county} county", f"{p.county} co"]
            for name in names:
                key = tuple(_TOKEN.findall(normalize(name)))
                if key and (len("".join(key)) >= 3 or any(c.isdigit() for c in name)):
                    self._names[key] = p
        self._choices = {" ".join(k): k for k in self._names if len(" ".join(k)) >= 5}
        self._longest = max(len(k) for k in self._names)

    def _vocab_word(self, word: str) -> bool:
        if word in STOPWORDS or word in _GENERIC or word.isdigit():
            return True
        seen = self._vocab_seen.get(word)
        if seen is None:
            if len(self._vocab_seen) >= _VOCAB_MEMO:  # customers' words are unbounded: start over
                self._vocab_seen.clear()
            seen = self._vocab_seen[word] = any(p.fullmatch(word) for p in self._vocab)
        return seen

    def _places(self, tokens: list[str]) -> list[_Match]:
        found: list[_Match] = []
        water: set[int] = set()  # the tokens of a lake's name ("lake st clair"): no place, not even a typo'd one
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                exact = self._names.get(tuple(tokens[i : i + n]))
                if exact is not None:
                    if i > 0 and tokens[i - 1] in _WATER:
                        water.update(range(i, i + n))
                    else:
                        found.append(_Match(i, i + n, exact))
                    i += n
                    break
            else:
                i += 1
        if found:
            return [self._extend(tokens, m) for m in found]
        best: tuple[float, int, _Match] | None = None
        for i in range(len(tokens)):
            for n in (3, 2, 1):
                gram = tokens[i : i + n]
                if len(gram) < n or any(self._vocab_word(w) for w in gram) or water.intersection(range(i, i + n)):
                    continue
                cand = " ".join(gram)
                if len(cand) < 5:
                    continue
                if i > 0 and tokens[i - 1] in _DETERMINERS:
                    continue
                placed = i > 0 and tokens[i - 1] in PREPOSITIONS
                cutoff = 78 if placed else 85
                hit = process.extractOne(cand, self._choices.keys(), scorer=fuzz.ratio, score_cutoff=cutoff)
                if hit is not None and not _same_root(cand, hit[0], cutoff):
                    continue  # "scio township" is no "genoa township": the shared word is not the name
                if hit is not None and not placed and isinstance(self._names[self._choices[hit[0]]], OutsidePlace):
                    continue  # "no landing spot" is no Lansing: a guessed place outside the area needs "in ..."
                if hit is not None and (best is None or (hit[1], n) > best[:2]):
                    best = (hit[1], n, _Match(i, i + n, self._names[self._choices[hit[0]]], fuzzy=True))
        return [best[2]] if best else []

    def _extend(self, tokens: list[str], m: _Match) -> _Match:
        """'Farmington Hils': the exact 'Farmington' plus a typo'd next word may be a longer name."""
        if m.end >= len(tokens) or self._vocab_word(tokens[m.end]):
            return m
        cand = " ".join(tokens[m.start : m.end + 1])
        hit = process.extractOne(cand, self._choices.keys(), scorer=fuzz.ratio, score_cutoff=85)
        if hit is None or len(self._choices[hit[0]]) <= m.end - m.start or not _same_root(cand, hit[0], 85):
            return m
        return _Match(m.start, m.end + 1, self._names[self._choices[hit[0]]], fuzzy=True)

    def parse(self, query: str) -> Interpreted:
        """Interprets one query (a copy of the earlier answer when the same text was parsed recently).

        Args:
            query: what the customer typed.
        """
        known = self._cache.get(query)
        if known is None:
            parsed = self._parse(query)
            self._cache.put(query, parsed.model_dump_json())
            return parsed
        # A new object each time (callers may change theirs); from JSON, five times cheaper than a deep copy.
        return Interpreted.model_validate_json(known)

    @staticmethod
    def _categories(low: str, out: Interpreted) -> tuple[list[Category], list[tuple[int, int]]]:
        """Scores the categories named in `low` (sets `out.category`); returns them and the turned-down spans.
        A loose word inside a longer feature phrase is that feature's ("no place to land" asks for no survey)."""
        scores: dict[Category, float] = {}
        claimed: list[tuple[int, int]] = []
        turned_down: list[tuple[int, int]] = []
        hits = [(m, cat, w) for cat, pairs in CATEGORY_PATTERNS.items() for p, w in pairs for m in p.finditer(low)]
        if any(w < FIRM for _, _, w in hits):
            gear = [g.span() for p in FEATURE_PATTERNS.values() for g in p.finditer(low)]
            hits = [(m, cat, w) for m, cat, w in hits if w >= FIRM or not any(
                a <= m.start() and m.end() <= b and b - a > m.end() - m.start() for a, b in gear)]
        kept: list[tuple[re.Match[str], Category, float]] = []
        for m, cat, w in sorted(hits, key=lambda h: h[0].start() - h[0].end()):  # longest phrase first
            if not any(m.start() < b and a < m.end() for a, b in claimed):
                claimed.append(m.span())
                kept.append((m, cat, w))
        end = -1  # where the last turned-down phrase ended: "no wedding film", "not photos or video" go together
        for m, _, _ in sorted(kept, key=lambda h: h[0].start()):
            if _negated(low, m.start()) or _DONE.match(low, m.end()) or (
                    end >= 0 and low[end : m.start()].strip() in _JOINED):
                turned_down.append(m.span())  # "not photos": its words count for nothing else, it is not scored
                end = m.end()
            else:
                end = -1
        for m, cat, w in kept:  # longest phrase first, as claimed: a tie goes to the longer phrase's category
            if m.span() not in turned_down and w > 0:  # a phrase of weight 0 claims its words and names nothing
                scores[cat] = scores.get(cat, 0.0) + (w * _SCENERY if _scenery(low, m.start()) else w)
        if not scores:
            return [], turned_down
        top = max(scores.values())
        ranked = sorted(scores, key=lambda c: -scores[c])
        out.category = ranked[0]
        return [c for c in ranked if scores[c] >= min(top, 2.0)] or [ranked[0]], turned_down

    def _parse(self, query: str) -> Interpreted:
        low = spell_out(normalize(_PERIOD.sub(";", query)))  # a sentence's end stays one (normalize drops dots)
        found: dict[str, Any] = {}
        for phrase, pattern in FILTER_PATTERNS:  # first, so their words match nothing else
            if phrase.filter in found:
                continue
            m = pattern.search(low)
            if m is None:
                continue
            value = phrase.value if phrase.value is not None else _number(m)
            if accepts(phrase.filter, value):
                found[phrase.filter] = value
            low = low[: m.start()] + " " * (m.end() - m.start()) + low[m.end() :]
        said_of_them = [m.span() for m in CREDENTIAL_PATTERN.finditer(low)]  # "licensed for commercial work"
        low = OPERATOR_CREDENTIAL_PATTERN.sub(lambda m: " " * len(m.group()), low)  # "they need a part 107 license"
        out = Interpreted(text="", **found)
        spans = list(_TOKEN.finditer(low))
        tokens = [t.group() for t in spans]
        matches = self._places(tokens)  # before the categories: "Grosse Pointe Farms" asks for no farming
        drop: set[int] = set()  # the places and their prepositions: not searched
        lead: dict[int, int] = {}  # a place match's first word (with its prepositions), for "not in Troy"
        for k, pm in enumerate(matches):
            first, last = spans[pm.start].start(), spans[pm.end - 1].end()
            low = low[:first] + " " * (last - first) + low[last:]
            j = pm.start - 1
            while j >= 0 and tokens[j] in PREPOSITIONS:
                j -= 1
            lead[k] = pm.start if j == pm.start - 1 else j + 1
            if isinstance(pm.place, Place) or not any(isinstance(m.place, Place) for m in matches):
                drop.update(range(lead[k], pm.end))
        out.categories, turned_down = self._categories(low, out)
        if not out.categories and not turned_down:  # no service named: perhaps one typo'd ("chimny inspecton")
            fixed = {i: w for i, t in enumerate(tokens) if i not in drop and (w := _service_word(t)) is not None}
            if fixed:
                spelled = " ".join(fixed.get(i, t) for i, t in enumerate(tokens) if i not in drop)
                scratch = Interpreted(text="")
                categories, _ = self._categories(spelled, scratch)
                if categories:
                    out.categories, out.category = categories, scratch.category
                    tokens = [fixed.get(i, t) for i, t in enumerate(tokens)]
        elif out.categories:  # a service named, and perhaps another typo'd beside it ("chimeny inspection"): only
            # a word of the categories named, and no other form of the same word ("panels" stays)
            near = frozenset().union(*(CATEGORY_WORDS[c] for c in out.categories))
            fixed = {i: w for i, t in enumerate(tokens) if i not in drop and not self._vocab_word(t)
                     and (w := _service_word(t)) is not None and w in near and stem(w) != stem(t)}
            if fixed:
                spelled = low
                for i in sorted(fixed, reverse=True):  # in place: the clauses and turned-down words still count
                    spelled = spelled[: spans[i].start()] + fixed[i] + spelled[spans[i].end() :]
                scratch = Interpreted(text="")
                categories, _ = self._categories(spelled, scratch)
                if categories:
                    out.categories, out.category = categories, scratch.category
                tokens = [fixed.get(i, t) for i, t in enumerate(tokens)]
        out.features = [f for f, p in FEATURE_PATTERNS.items() if _asked(p, low)]
        inside = [(k, m) for k, m in enumerate(matches) if isinstance(m.place, Place)]
        said = [m for k, m in inside if not _negated(low, spans[lead[k]].start())] or [m for _, m in inside]
        # "north of Detroit, Royal Oak": a place said as a landmark gives way to the place meant
        meant = [m for m in said if not _LANDMARK.search(low, 0, spans[m.start].start())]
        outside = [m for k, m in enumerate(matches) if not isinstance(m.place, Place)
                   and not _LANDMARK.search(low, 0, spans[m.start].start())]
        if said and not meant and outside:  # "in sarnia, just across the bridge from port huron": Sarnia is meant
            said = []
            matches = outside
        said = meant or said
        if said:  # the most precise: a town over its county or region ("in the thumb, near Imlay City")
            here = next((m for m in said if not m.place.is_county), said[0])  # type: ignore[union-attr]
            out.place = _ref(here.place)
            out.fuzzy_place = here.fuzzy
        elif matches:
            out.outside_place = _ref(matches[0].place)
        unsearched = turned_down + said_of_them
        kept = [w for i, w in enumerate(tokens)
                if i not in drop and not (unsearched and any(a <= spans[i].start() < b for a, b in unsearched))]
        kept += _service_words(low, out.categories, kept, turned_down)
        sited = sited_words(low, out.categories, kept)  # "panels on the barn roof": the roof names no service
        kept = [w for w in kept if stem(w) not in sited] if sited else kept
        out.text = " ".join(kept).strip() or (out.category or "drone services").replace("_", " ")
        return out


def _service_word(token: str) -> str | None:
    """The service word `token` is a typo of ("chimny" -> "chimney", "vidoe" -> "video"), or None. The same
    first letter and one slip: a letter left out or added, two swapped, a vowel for a vowel ("survay"); two
    slips in a long word ("photografer"). A consonant for a consonant is a word of its own ("party", "parts")."""
    if (len(token) < 5 or token in STOPWORDS or token in _GENERIC or not token.isalpha() or token in _SERVICE_SET
            or token in _NOT_TYPOS):
        return None
    best: tuple[int, str] | None = None
    for w in SERVICE_WORDS:
        if w[0] != token[0] or abs(len(w) - len(token)) > 2:
            continue
        d = OSA.distance(token, w, score_cutoff=2)
        if d > 2 or (d == 2 and min(len(w), len(token)) < 8):
            continue
        if d == 1 and len(w) == len(token) and Levenshtein.distance(token, w) == 1:  # one letter for another
            ((a, b),) = [(x, y) for x, y in zip(token, w, strict=True) if x != y]
            if a not in _VOWELS or b not in _VOWELS:
                continue
        if best is None or (d, w) < best:
            best = (d, w)
    return best[1] if best is not None else None


def hinted_services(low: str, categories: Sequence[str],
                    turned_down: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The services of `categories` that `low` (a `normalize`d text) describes by their situation
    (retrieval/vocab/services.py: "our dog ran off" is search for missing pets); a phrase negated ("no video")
    or inside a `turned_down` span names none."""
    return [service for service, (category, pattern) in SERVICE_HINT_PATTERNS.items()
            if category in categories and any(
                not _negated(low, m.start()) and not any(a <= m.start() < b for a, b in turned_down)
                for m in pattern.finditer(low))]


def _service_words(low: str, categories: list[Category], kept: list[str],
                   turned_down: list[tuple[int, int]]) -> list[str]:
    """The names of the services `low` describes by their situation, for the categories it points to: their
    words not already searched ("our dog ran off" + "search missing pets")."""
    hinted = hinted_services(low, categories, turned_down)
    if not hinted:
        return []
    have = {stem(w) for w in kept}
    out: list[str] = []
    for service in hinted:
        for w in service.split():
            if w not in STOPWORDS and stem(w) not in have:
                have.add(stem(w))
                out.append(w)
    return out


def _scenery(low: str, start: int) -> bool:
    """Whether the phrase at `start` tells who the customer is or where, not what they ask for: "we run a little
    strawberry farm", "my dad's been farming it forever", "everyone standing in the field"."""
    clause = max(low.rfind(c, 0, start) for c in ".,;!?") + 1
    if SCENERY_WHERE_PATTERN.search(low, max(clause, start - 40), start) is not None:
        return True
    who = SCENERY_WHO_PATTERN.search(low, clause, start)  # "we run an orchard and want ...": the ask ends the scene
    # "what we need now is someone to ...": an ask inside the clause is no scene either
    return who is not None and _ASK.search(low, who.start(), start) is None


def _asked(pattern: re.Pattern[str], low: str) -> bool:
    """Whether a feature's phrase is in `low` and not turned down every time ("weekdays, not on weekends")."""
    m = pattern.search(low)
    if m is None or not _negated(low, m.start()):
        return m is not None
    return any(not _negated(low, n.start()) for n in pattern.finditer(low, m.end()))


def _negated(low: str, start: int) -> bool:
    """Whether the phrase starting at `start` is turned down by the words just before it ("no video")."""
    return NEGATION_PATTERN.search(low, max(0, start - 32), start) is not None


def _number(m: re.Match[str]) -> float:
    """The number a filter phrase captured (`n`), times 1000 when `k` followed it."""
    return float(m.group("n").replace(",", "")) * (1000 if m.groupdict().get("k") else 1)
