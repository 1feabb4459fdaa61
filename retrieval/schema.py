"""The listing record, exactly as `data/listings.jsonl` spells it, and the text that gets indexed.

Listing text (title, description, services, operator) is untrusted operator input: it is screened at ingest
and must only ever reach a prompt fenced as data (see `retrieval.fence`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CATEGORIES", "PRICE_UNITS", "Category", "Listing", "PriceUnit"]

Category = Literal[
    "delivery",
    "aerial_photography",
    "videography",
    "real_estate",
    "inspection",
    "thermal_imaging",
    "mapping_surveying",
    "agriculture",
    "construction",
    "public_safety",
    "training",
]
PriceUnit = Literal["hour", "project", "acre", "delivery", "session"]
CATEGORIES: tuple[str, ...] = get_args(Category)
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

    def content_hash(self) -> str:
        """A stable hash of every field: a changed listing gets re-embedded, an unchanged one is skipped."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]
