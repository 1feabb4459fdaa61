"""How a cited listing is named in a sentence: its title, told apart from another cited listing of the same
title by its city, or by its operator when the city is the same too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["names"]


def names(listings: Sequence[Any]) -> list[str]:
    """Each listing's title, with its city when another cited listing has the same title, and its operator when
    another has the same title in the same city ("Real Estate Aerial Package — Madison Heights by ...")."""
    titles = [x.title for x in listings]
    placed = [(x.title, x.city) for x in listings]
    return [x.title if titles.count(x.title) == 1 else f"{x.title} in {x.city}"
            if placed.count((x.title, x.city)) == 1 else f"{x.title} by {x.operator}" for x in listings]
