"""How much work the customer said the job is ("200 acres", "a 3-hour shoot"), and what the listings' own
per-unit prices come to for it.

A listing prices per acre, hour, session, project or delivery, and a budget is for the whole job: "budget is like
300 bucks" for 200 acres is not met by "$12 per acre" although 12 is under 300. When the customer gave an amount
in a listing's unit, the answer says what its starting price comes to (price x amount, nothing else: no travel,
no minimum, "from" as the listing says) and whether that fits the budget. Hours are read only as the job's
length ("for 3 hours", "a 2-hour shoot"), never as a deadline ("within 48 hours", "in the next 24 hours").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chains.assistant.naming import names
from chains.claims import money

__all__ = ["amounts", "estimate_text", "over_budget"]

_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_ACRES = re.compile(rf"\b{_NUMBER}\s*(?:-\s*)?(?:acres?|ac)\b", re.IGNORECASE)
_HOURS = re.compile(rf"\b{_NUMBER}\s*(?:-\s*)?(?:hours?|hrs?)\b", re.IGNORECASE)
# what makes "N hours" a deadline, a distance or a schedule rather than the job's length
_NOT_LENGTH_BEFORE = re.compile(r"(?:within|in|next|under|less than|after|before|every|per|by|than|last|past)\s*$",
                                re.IGNORECASE)
_NOT_LENGTH_AFTER = re.compile(r"^\s*(?:notice|away|ago|from now|of driving|drive|later|turnaround|a day|a week|/)",
                               re.IGNORECASE)


def _value(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if 0 < value < 1_000_000 else None


def amounts(turns: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """The job's size in each unit the customer gave, the latest mention of a unit winning (a correction);
    e.g. (("acre", 200.0),).

    Args:
        turns: the customer's turns, oldest first.
    """
    found: dict[str, float] = {}
    for turn in turns:
        for m in _ACRES.finditer(turn):
            if (value := _value(m.group(1))) is not None:
                found["acre"] = value
        for m in _HOURS.finditer(turn):
            before, after = turn[: m.start()], turn[m.end():]
            if _NOT_LENGTH_BEFORE.search(before) or _NOT_LENGTH_AFTER.search(after):
                continue
            if (value := _value(m.group(1))) is not None:
                found["hour"] = value
    return tuple(sorted(found.items()))


def over_budget(listing: Any, sizes: Sequence[tuple[str, float]], cap: float | None) -> bool:
    """Whether the listing's starting price, times the job's size in its unit, is more than the budget (False
    when there is no budget, or no size in its unit: the search's cap on the price itself holds then)."""
    size = dict(sizes).get(listing.price_unit)
    return cap is not None and size is not None and listing.price_from_usd * size > cap


def _amount(n: float, unit: str) -> str:
    return f"{n:g} {unit}{'' if n == 1 else 's'}"


def estimate_text(listings: Sequence[Any], sizes: Sequence[tuple[str, float]], cap: float | None) -> str:
    """What each listing priced in a unit the customer gave an amount of comes to, and whether it fits the
    budget; '' when no cited listing prices in such a unit.

    Args:
        listings: the cited listings, best first.
        sizes: `amounts()` of the conversation.
        cap: the customer's budget (the request's price cap), if any.
    """
    size = dict(sizes)
    priced = [(x, x.price_from_usd * size[x.price_unit]) for x in listings if x.price_unit in size]
    if not priced:
        return ""
    unit = priced[0][0].price_unit
    n = size[unit]
    named = dict(zip((id(x) for x in listings), names(listings), strict=True))  # same titles told apart
    each = [f"{named[id(x)]} from about {money(total)} ({money(x.price_from_usd)} per {x.price_unit})"
            for x, total in priced]
    listed = "; ".join(each)
    if cap is None:
        return f"For {_amount(n, unit)}: {listed}."
    within = [x for x, total in priced if total <= cap]
    if not within:
        return (f"For {_amount(n, unit)}, none of these comes within your {money(cap)} at its starting price: "
                f"{listed}.")
    if len(within) == len(priced):  # all of them: each one's figure says it
        return f"For {_amount(n, unit)}, within your {money(cap)}: {listed}."
    fit = "; ".join(named[id(x)] for x in within)  # titles may hold commas ("Farm Drone Services, Fraser")
    return f"For {_amount(n, unit)}, within your {money(cap)}: {fit}. At their starting prices: {listed}."
