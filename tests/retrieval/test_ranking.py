"""The ranking's reading of which services a query names (its words, or the service names the parser added
for a situation said): most of a service's distinctive words, within the categories the query points to; and
nearness in miles among the listings that offer what was asked."""

from __future__ import annotations

from typing import Any

import pytest

from retrieval.index import ListingIndex
from retrieval.places import load_gazetteer
from retrieval.query import QueryParser
from retrieval.ranking import Weights, rank
from retrieval.schema import Listing
from retrieval.vocab import named_services
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("text", "categories", "named"),
    [
        ("roof inspection", ["inspection"], ["roof inspection"]),
        ("gutter check please", ["inspection"], ["gutter check"]),
        ("crop spraying soybeans", ["agriculture"], ["crop spraying"]),
        ("heat camera on the house", ["thermal_imaging"], []),  # "heat" alone: no building heat loss
        ("progress photos of our job site", ["construction"], []),  # "site" alone: no site planning
        ("attic heat loss", ["thermal_imaging"], ["building heat loss"]),
        ("roof inspection", ["thermal_imaging"], []),  # only the categories asked
    ],
)
def test_named_services(text: str, categories: list[str], named: list[str]) -> None:
    assert named_services(text, categories) == named


# --- nearness among the listings that offer what was asked (a real ListingIndex over three listings) ---


class _Store:
    """Just what ListingIndex.reload reads: the listings as Chroma metadata, one page."""

    embeddings = None

    def __init__(self, listings: list[Listing]) -> None:
        self.listings = listings

    def get(self, **_: object) -> dict[str, list[Any]]:
        rows = [{"listing": x.model_dump_json(), "embedding": "unknown"} for x in self.listings]  # as queries
        return {"ids": [x.id for x in self.listings], "metadatas": rows}


def _listing(id_: str, lat: float, lon: float, radius: float, services: list[str], description: str) -> Listing:
    return Listing(id=id_, title="Drone inspection", description=description, category="inspection",
                   services=services, operator=f"Operator {id_}", city="Somewhere", county="Oakland", lat=lat,
                   lon=lon, service_radius_miles=radius, price_from_usd=200, price_unit="project", rating=4.5,
                   review_count=20, certifications=[], insured=True, features=[])  # fmt: skip


# by its radius the far one is "near" (26 of 200 mi), the near one at its edge (7.5 of 8 mi)
FAR = _listing("far", 42.3086, -83.4821, 200, ["roof inspection"],  # ~26 mi from Troy
               "We inspect your roof. Roof inspect, roof inspect: we inspect every roof.")  # fmt: skip
NEAR = _listing("near", 42.6389, -83.2910, 8, ["roof inspection", "chimney inspection"],  # ~7.5 mi
                "Roof inspection reports with photos of shingles and flashing; chimneys checked too.")  # fmt: skip
CHIMNEY = _listing("chimney", 42.58, -83.14, 30, ["chimney inspection"],  # ~2 mi, not the service asked
                   "Chimney inspection: we inspect the crown, the flue and the flashing.")  # fmt: skip


def _rank(query: str, vector_order: list[str]) -> list[str]:
    index = ListingIndex(store=_Store([FAR, NEAR, CHIMNEY]))  # type: ignore[arg-type]
    index.reload()
    it = QueryParser(load_gazetteer(ROOT / "data" / "places.json")).parse(query)
    assert it.place is not None
    out = rank(index, it, [index.pos[i] for i in vector_order], point=(it.place.lat, it.place.lon), county=None,
               limit=3, weights=Weights())  # fmt: skip
    return [h.listing.id for h in out.hits]


def test_the_nearer_of_two_offering_the_named_service_comes_first() -> None:
    # the far listing wins on words and on vectors; both offer a roof inspection: the one 7 mi away comes first
    assert _rank("Who can inspect my roof in Troy?", ["far", "near", "chimney"])[:2] == ["near", "far"]


def test_nearness_does_not_lift_a_listing_without_the_named_service() -> None:
    ranked = _rank("Who can inspect my roof in Troy?", ["far", "near", "chimney"])
    assert ranked.index("chimney") > ranked.index("far")  # 2 mi away, but it does not inspect roofs


def test_a_nearer_listing_must_offer_every_named_service() -> None:
    # 2 mi away but only chimneys; 7.5 mi away and both the roof and the chimney
    assert _rank("roof and chimney inspection in Troy", ["chimney", "far", "near"])[0] == "near"


def test_no_nearness_in_miles_without_a_category() -> None:
    # nothing said about what is wanted: the order is the words', vectors' and radius-nearness's, as before
    ranked = _rank("Can someone help me out in Troy?", ["far", "near", "chimney"])
    assert ranked.index("near") > ranked.index("far")
