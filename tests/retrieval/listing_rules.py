"""What every listings file must satisfy, shipped or generated: each problem is one line naming the listing
(line number and id) and the field, so an operator's edit that breaks a rule is found without a diff."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import ValidationError

from retrieval.places import Gazetteer, haversine_miles
from retrieval.schema import Listing
from retrieval.vocab import FEATURES, implied_features

MAX_MILES_FROM_CITY = 5.5
WORDS = (40, 150)


def _where(n: int, row: Any) -> str:
    lid = row.get("id") if isinstance(row, dict) else None
    return f"line {n} ({lid})" if isinstance(lid, str) else f"line {n}"


def listing_problems(rows: list[Any], gaz: Gazetteer) -> list[str]:
    """Every broken rule of every listing: schema, unique ids, known features, implied features, a city of its
    county with coordinates near it, a description of 40-150 words, services listed once each.

    Args:
        rows: the parsed JSON lines, in file order.
        gaz: the places (data/places.json).
    """
    out: list[str] = []
    first_line: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        where = _where(n, row)
        try:
            x = Listing.model_validate(row)
        except ValidationError as exc:
            out += [f"{where}: {'.'.join(map(str, e['loc'])) or 'listing'}: {e['msg']}" for e in exc.errors()]
            continue
        if x.id in first_line:
            out.append(f"{where}: id: {x.id!r} already on line {first_line[x.id]}")
        first_line.setdefault(x.id, n)
        if unknown := sorted(set(x.features) - set(FEATURES)):
            out.append(f"{where}: features: {unknown} not in the vocabulary (retrieval/vocab/features.py)")
        if missing := sorted(implied_features(x.category, x.services) - set(x.features)):
            out.append(f"{where}: features: lacks {missing}, implied by its category or services")
        if dupes := sorted(s for s, k in Counter(x.services).items() if k > 1):
            out.append(f"{where}: services: {dupes} listed twice")
        if not x.services:
            out.append(f"{where}: services: empty")
        words = len(x.description.split())
        if not WORDS[0] <= words <= WORDS[1]:
            out.append(f"{where}: description: {words} words, not {WORDS[0]}-{WORDS[1]}")
        city = gaz.get(x.city)
        if city is None or city.county != x.county:
            out.append(f"{where}: city: {x.city!r} is not a place of {x.county} County in data/places.json")
        else:
            miles = haversine_miles(x.lat, x.lon, city.lat, city.lon)
            if miles > MAX_MILES_FROM_CITY:
                out.append(f"{where}: lat/lon: {miles:.1f} miles from {x.city}, more than {MAX_MILES_FROM_CITY}")
    return out


def report(problems: list[str], limit: int = 25) -> str:
    """The first problems, one per line, for an assertion message."""
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n".join(problems[:limit]) + more
