"""The listing record, exactly as `data/listings.jsonl` spells it, and the text that gets indexed.

Listing text (title, description, services, operator) is untrusted operator input: it is screened at ingest
and must only ever reach a prompt fenced as data (see `retrieval.fence`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from retrieval.vocab import CATEGORIES, Category

__all__ = ["CATEGORIES", "PRICE_UNITS", "Category", "Listing", "PriceUnit"]

PriceUnit = Literal["hour", "project", "acre", "delivery", "session"]
PRICE_UNITS: tuple[str, ...] = get_args(PriceUnit)


class Listing(BaseModel):
    """One drone service offered by one operator in one city."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    category: Category
    services: list[str] = Field(max_length=30)
    operator: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    county: str = Field(min_length=1, max_length=100)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    service_radius_miles: float = Field(gt=0, le=500)
    price_from_usd: float = Field(ge=0)
    price_unit: PriceUnit
    rating: float = Field(ge=1, le=5)
    review_count: int = Field(ge=0)
    certifications: list[str] = Field(max_length=30)
    insured: bool
    features: list[str] = Field(max_length=30)

    def search_text(self) -> str:
        """The text embedded and indexed for BM25: what a customer would search by."""
        return "\n".join(
            [
                self.title,
                f"{self.category.replace('_', ' ')} in {self.city}, {self.county} County",
                "Services: " + ", ".join(self.services),
                "Features: " + ", ".join(f.replace("_", " ") for f in self.features),
                self.description,
            ]
        )

    def embed_text(self) -> str:
        """The text embedded for vector search: the gist first (documents are cut to a few dozen tokens)."""
        return (
            f"{self.title}. {self.category.replace('_', ' ')} drone service in {self.city}. "
            f"{', '.join(self.services)}. {' '.join(f.replace('_', ' ') for f in self.features)}. "
            f"{self.description}"
        )

    def text_hash(self) -> str:
        """A hash of the embedded text (`embed_text`): a listing is re-embedded only when this changes."""
        return _digest(self.embed_text())

    def content_hash(self) -> str:
        """A stable hash of what the index stores: every field set to something other than its default.

        A new optional field changes no listing's hash until a listing sets it. A change to any other field
        (a price, a rating) changes it: the index's copy is then updated, re-embedded only when `text_hash`
        changed too (retrieval.ingest).
        """
        dump = self.model_dump(mode="json", exclude_defaults=True)
        return _digest(json.dumps(dump, sort_keys=True, ensure_ascii=False))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
