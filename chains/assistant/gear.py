"""Equipment a category never has: the request moves to the category that is that equipment.

"200 head of cattle near Capac" then "something infrared would help": no agriculture listing has a heat camera;
thermal imaging is that camera (`FEATURES[...].implied_by`), and it counts livestock. The request moves there,
its words, place, cap and features kept, when a service of that category shares a word with what was asked
("livestock") and one of its listings serves the place. Otherwise nothing moves: "crop spraying, with thermal
cameras" stays spraying (no thermal imaging service sprays), and the spraying listings that lack the camera
are still the answer; "listing photos and a thermal scan" asks for both services, and keeps both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from chains.assistant.conversation import Request
from retrieval.vocab import CATEGORIES, FEATURE_PATTERNS, FEATURES, sharing_services

__all__ = ["elsewhere", "offered_features"]


def offered_features(listings: Iterable[object]) -> dict[str, frozenset[str]]:
    """Each category's features, as its listings have them (any listing with `category` and `features`)."""
    out: dict[str, set[str]] = {}
    for x in listings:
        out.setdefault(x.category, set()).update(x.features)  # type: ignore[attr-defined]
    return {c: frozenset(f) for c, f in out.items()}


def _without_gear(text: str) -> str:
    """The words without those that ask for equipment: they share nothing ("spotted by their heat")."""
    spans = [m.span() for p in FEATURE_PATTERNS.values() for m in p.finditer(text)]
    return "".join(" " if any(a <= i < b for a, b in spans) else c for i, c in enumerate(text))


def elsewhere(request: Request, offered: Mapping[str, frozenset[str]]) -> Request | None:
    """The request moved to the category that is the equipment asked for, or None (see the module's docstring).

    Args:
        request: the condensed request.
        offered: each category's features (`offered_features` of the index's listings).
    """
    it = request.interpreted
    if it is None or it.category is None or not it.features:
        return None
    have = offered.get(it.category, frozenset())
    for feature in it.features:
        if feature in have:
            continue
        for category in FEATURES[feature].implied_by:
            if (category not in CATEGORIES or category in it.categories  # asked as a service too: both stay
                    or feature not in offered.get(category, ())):
                continue
            shared = sharing_services(_without_gear(it.text), category)
            if shared:
                words = " ".join(shared)
                moved = it.model_copy(update={"category": category, "categories": [category],
                                              "text": f"{it.text} {words}"})
                return replace(request, interpreted=moved)
    return None
