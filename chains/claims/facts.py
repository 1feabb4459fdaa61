"""What a generated text may claim: the facts of its sources, and the catalogue of names it could invent.

    Facts     one source of truth: a describe input, one cited listing, or the request itself (the place
              searched, the service area), as the fields a claim rule names in `in`
    Catalog   every service, operator / title and place name the data knows: a `known` rule flags one of
              them in a sentence when the sentence's sources do not carry it (an operator that was not
              cited, a service the listing does not offer, a town nobody searched)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = ["ALWAYS_NAMES", "AREA_NAMES", "Catalog", "Facts", "context_facts", "listing_facts", "money"]

# Names any generated text may use: the service area itself, the marketplace, the rules of the air, the calendar.
AREA_NAMES = ("Detroit", "Detroit Metro", "Metro Detroit", "Michigan", "Southeast Michigan", "SE Michigan")
ALWAYS_NAMES = (*AREA_NAMES, "SkyMarket", "FAA", "DTW", "LAANC", "Part", "Remote ID", "Detroit Metro Airport",
                "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February",
                "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")

_SPACE = re.compile(r"\s+")
_SEP = re.compile(r"[\s-]+")


def _join(values: Iterable[Any]) -> str:
    return "\n".join(str(v) for v in values if v is not None and str(v).strip()).replace("_", " ")


@dataclass(frozen=True)
class Facts:
    """One source a sentence may draw on.

    Attributes:
        fields: field name (`certifications`, `services`, `features`, `title`, `notes`, `category`, `operator`,
            `places`, `figures`) -> its text; underscores read as spaces.
        insured: whether the source carries liability insurance.
        prices: the prices it states (a `price` rule accepts these amounts).
        price_units: the unit of each price, in the same order ("hour", "project", ...); empty when unknown.
        id: a listing id (an `id` rule accepts only the ids of the sentence's sources).
        names: how a sentence names this source (a title, an operator): a sentence that names some sources
            is checked against those only; one that names none, against all.
        context: the request itself (searched place, service area): backs every sentence, names nothing.
        ranks: what a `rank` rule compares sources by ("rating", "reviews", "price", "distance"): a source
            without a value (no reviews, no distance) is never first by it.
    """

    fields: Mapping[str, str]
    insured: bool = False
    prices: tuple[float, ...] = ()
    price_units: tuple[str, ...] = ()
    id: str | None = None
    names: tuple[str, ...] = ()
    context: bool = False
    ranks: Mapping[str, float] = field(default_factory=dict)

    def text(self, names: Iterable[str]) -> str:
        return "\n".join(self.fields.get(n, "") for n in names)

    def normal(self, names: tuple[str, ...]) -> str:
        """`text(names)` lower-cased with runs of spaces and hyphens as one space (kept: a listing is checked
        against many sentences and names)."""
        cache: dict[tuple[str, ...], str] = self.__dict__.setdefault("_normal", {})
        if names not in cache:
            cache[names] = _SEP.sub(" ", self.text(names).lower())
        return cache[names]


def money(value: float) -> str:
    """A dollar amount as a listing states it: "$149", "$99.50" (every generated text says prices this way)."""
    return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"


def listing_facts(listing: Any) -> Facts:
    """The facts of one listing (a `retrieval.schema.Listing` or anything with its attributes); the same
    listing object gives the same `Facts` (cached while it lives, so its texts are normalised once)."""
    key = (id(listing), listing.id)
    hit = _LISTING_FACTS.get(key)
    if hit is not None and hit[0] is listing:
        return hit[1]
    facts = _listing_facts(listing)
    if len(_LISTING_FACTS) > 4096:
        _LISTING_FACTS.clear()
    _LISTING_FACTS[key] = (listing, facts)
    return facts


_LISTING_FACTS: dict[tuple[int, str], tuple[Any, Facts]] = {}


def _listing_facts(listing: Any) -> Facts:
    figures = [listing.price_from_usd, listing.rating, listing.review_count, listing.service_radius_miles]
    ranks = {"reviews": float(listing.review_count), "price": float(listing.price_from_usd)}
    if listing.review_count:
        ranks["rating"] = float(listing.rating)
    if (miles := getattr(listing, "distance_miles", None)) is not None:  # a search result: from the place searched
        ranks["distance"] = float(miles)
    return Facts(
        fields={
            "certifications": _join(listing.certifications),
            "services": _join(listing.services),
            "features": _join(listing.features),
            "title": _join([listing.title, listing.operator]),
            "operator": listing.operator,
            "notes": listing.description,
            "category": listing.category.replace("_", " "),
            "places": _join([listing.city, listing.county, f"{listing.county} County"]),
            "figures": _join(f"{v:g}" if isinstance(v, float) else v for v in figures),
        },
        insured=bool(listing.insured),
        prices=(float(listing.price_from_usd),),
        price_units=(str(listing.price_unit),),
        id=listing.id,
        names=(listing.title, listing.operator, listing.id),
        ranks=ranks,
    )


def context_facts(*, places: Iterable[str] = (), figures: Iterable[Any] = (), names: Iterable[str] = ()) -> Facts:
    """The request's own facts, true of every sentence: the places, figures and names it may use.

    Args:
        places: the place searched, its county, the service area's names.
        figures: numbers the request itself carries (a price cap, a radius).
        names: proper names any answer may use (SkyMarket, FAA, ...): read as the `title` field.
    """
    return Facts(fields={"places": _join(places), "figures": _join(figures), "title": _join(names)}, context=True)


def _alternation(phrases: Iterable[str], *, ignore_case: bool) -> re.Pattern[str] | None:
    """One regex over every phrase (longest first, whole words, an optional plural 's')."""
    words = sorted({_SPACE.sub(" ", p.strip()) for p in phrases if p and len(p.strip()) >= 3}, key=len, reverse=True)
    if not words:
        return None
    body = "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in words)
    return re.compile(rf"(?<![\w-])(?:{body})s?(?![\w-])", re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Catalog:
    """The names the data knows, by kind; each kind matched by one compiled pattern (built once).

    Services match in any letter case; names and places are proper nouns and match as written, so "troy
    ounce" is no town and "commerce" no township.
    """

    services: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    places: tuple[str, ...] = ()

    @cached_property
    def _compiled(self) -> dict[str, re.Pattern[str] | None]:
        return {
            "services": _alternation(self.services, ignore_case=True),
            "names": _alternation(self.names, ignore_case=False),
            "places": _alternation(self.places, ignore_case=False),
        }

    def pattern(self, kind: str) -> re.Pattern[str] | None:
        """The pattern of one kind (`services`, `names`, `places`); None when the catalogue has none."""
        return self._compiled.get(kind)

    @classmethod
    def from_listings(cls, listings: Iterable[Any], *, places: Iterable[str] = ()) -> Catalog:
        """Every service, operator and title of the listings, and the given place names."""
        items = list(listings)
        return cls(
            services=tuple(sorted({s for x in items for s in x.services})),
            names=tuple(sorted({n for x in items for n in (x.operator, x.title)})),
            places=tuple(sorted(set(places))),
        )
