"""The `/describe` contract: `DescribeInput` -> `DescribeOutput`, and the canonical form of an input.

The canonical form (`canonical()`) is what the prompt, the grounding check and the cache key all see, so
two requests that differ only in spacing, letter case of list items or list order are one request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chains.claims import ALWAYS_NAMES, AREA_NAMES, Facts, context_facts
from chains.schemas import InputModel
from retrieval.schema import Category, PriceUnit

__all__ = ["DescribeError", "DescribeInput", "DescribeOutput", "Moderation", "Tone", "about", "canonical",
           "facts_of", "sources_of", "stems"]

Tone = Literal["professional", "friendly", "premium"]
_SPACE = re.compile(r"\s+")


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _items(values: list[str]) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively), sorted: list order carries no meaning in a listing."""
    seen: dict[str, str] = {}
    for v in values:
        s = _squash(v)
        if s and s.casefold() not in seen:
            seen[s.casefold()] = s
    return [seen[k] for k in sorted(seen)]


class DescribeInput(InputModel):
    """An operator's facts about one service; the description may claim nothing beyond them."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=120, description="the listing's title (operator text)")
    category: Category = Field(description="one of the 11 listing categories of the search")
    city: str = Field(min_length=1, max_length=80, description="the operator's base city in Detroit Metro")
    services: list[str] = Field(min_length=1, max_length=20, description="services offered, short tags")
    certifications: list[str] = Field(default_factory=list, max_length=20,
                                      description="e.g. 'FAA Part 107', 'Night operations', 'BVLOS waiver'")
    insured: bool = Field(default=False, description="whether the operator carries liability insurance")
    features: list[str] = Field(default_factory=list, max_length=20,
                                description="optional equipment/features, e.g. thermal_camera, lidar, same_day")
    price_from_usd: float | None = Field(default=None, ge=0, le=1_000_000)
    price_unit: PriceUnit | None = None
    notes: str = Field(default="", max_length=1000, description="free text from the operator")
    tone: Tone = "professional"
    max_words: int = Field(default=120, ge=30, le=300)

    @field_validator("services", "certifications", "features")
    @classmethod
    def _short_items(cls, values: list[str]) -> list[str]:
        for v in values:
            if len(v) > 80:
                raise ValueError(f"each item is at most 80 characters; {v[:20]!r}... is {len(v)}")
        return values

    @model_validator(mode="after")
    def _check(self) -> DescribeInput:
        if not self.title.strip():
            raise ValueError("title is empty")
        if not self.city.strip():
            raise ValueError("city is empty")
        if not _items(self.services):
            raise ValueError("services must list at least one non-empty service")
        if self.price_unit is not None and self.price_from_usd is None:
            raise ValueError("price_unit is set but price_from_usd is not")
        return self


class Moderation(BaseModel):
    """The moderation verdict on the generated text (flagged input never gets this far: it is refused)."""

    flagged: bool = False
    categories: list[str] = Field(default_factory=list)


class DescribeError(BaseModel):
    """Why one item of a batch failed (the other items are unaffected)."""

    code: str
    message: str


class DescribeOutput(BaseModel):
    """A listing description and what the checks found.

    `grounded` is true when the description is clean (every checked claim is backed by the input) and long
    enough to use. `error` is set only on a failed item of `/describe/batch`; `/describe/invoke` raises.
    """

    description: str
    flags: list[str] = Field(default_factory=list)
    moderation: Moderation = Field(default_factory=Moderation)
    grounded: bool
    cached: bool = False
    model: str
    error: DescribeError | None = None


def canonical(data: DescribeInput | dict[str, Any]) -> DescribeInput:
    """Validates and normalises an input: squashed whitespace, trimmed and sorted lists, rounded price.

    Args:
        data: a `DescribeInput` or a dict of its fields.

    Raises:
        pydantic.ValidationError: the input does not fit the contract.
    """
    inp = data if isinstance(data, DescribeInput) else DescribeInput.model_validate(data)
    return inp.model_copy(
        update={
            "title": _squash(inp.title),
            "city": _squash(inp.city),
            "services": _items(inp.services),
            "certifications": _items(inp.certifications),
            "features": _items(inp.features),
            "notes": _squash(inp.notes),
            "price_from_usd": None if inp.price_from_usd is None else round(inp.price_from_usd, 2),
        }
    )


def facts_of(inp: DescribeInput) -> Facts:
    """What a description of `inp` may claim: the operator's own facts, as the claim rules read them."""

    def joined(values: list[str]) -> str:
        return "\n".join(values).replace("_", " ")

    return Facts(
        fields={
            "certifications": joined(inp.certifications), "services": joined(inp.services),
            "features": joined(inp.features), "title": inp.title, "notes": inp.notes,
            "category": inp.category.replace("_", " "), "places": inp.city,
        },
        insured=inp.insured,
        prices=() if inp.price_from_usd is None else (inp.price_from_usd,),
        price_units=(inp.price_unit,) if inp.price_from_usd is not None and inp.price_unit else (),
    )


def sources_of(inp: DescribeInput, places: Sequence[str] = AREA_NAMES) -> list[Facts]:
    """What a description of `inp` is checked against: the operator's facts, and the names any description
    may use (the marketplace, the FAA, the calendar, and `places`: the service area's place names).

    Args:
        inp: the operator's input.
        places: the place names a description may use (the chain passes the gazetteer's).
    """
    return [facts_of(inp), context_facts(places=places, names=ALWAYS_NAMES)]


_WORD = re.compile(r"[a-z0-9]+")
_GENERIC = frozenset({"drone", "drones", "service", "services", "aerial", "aerials", "with", "from", "your", "and"})


def about(text: str, inp: DescribeInput) -> bool:
    """Whether a description speaks of this listing at all: it names its city, or a word of its services,
    category, features or title (by its first five letters: "inspect" is "inspection"). The embedded model
    sometimes answers with something else entirely ("we can't find the image for this product"), or echoes
    its instructions; such a text makes no false claim the rules can see, and is still no description."""
    own = " ".join([inp.city, inp.title, inp.category.replace("_", " "), *inp.services,
                    *(f.replace("_", " ") for f in inp.features)])
    return bool(stems(text) & stems(own, 4, skip=_GENERIC))


def stems(text: str, min_len: int = 0, *, skip: frozenset[str] = frozenset()) -> set[str]:
    """The first five letters of each word of `text` ("inspected" and "inspection" share "inspe"), for words of
    `min_len` letters or more not in `skip`: how a description is matched to its listing's words."""
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) >= min_len and w not in skip}
