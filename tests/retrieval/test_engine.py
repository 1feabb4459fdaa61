"""The search engine on both backends, over an 80-listing subset: relevance, filters, geo (a listing serves a
place within its service radius; nearer ranks higher), counties, and honesty outside the service area."""

from __future__ import annotations

import pytest

from retrieval.engine import SearchEngine
from retrieval.filters import InputFilters
from retrieval.places import haversine_miles


def test_roof_inspection_near_troy(engine: SearchEngine) -> None:
    out = engine.search("roof inspection near Troy", limit=5)
    assert out.in_service_area and out.hits
    troy = engine.gazetteer.get("Troy")
    assert troy is not None
    assert out.hits[0].listing.category == "inspection"
    for h in out.hits:
        d = haversine_miles(troy.lat, troy.lon, h.listing.lat, h.listing.lon)
        assert h.distance_miles == pytest.approx(d, abs=0.1)
        assert d <= h.listing.service_radius_miles
    scores = [h.score for h in out.hits]
    assert scores == sorted(scores, reverse=True)


def test_filters_from_text_and_from_arguments(engine: SearchEngine) -> None:
    out = engine.search("aerial photos under $200", limit=20)
    assert out.hits and all(h.listing.price_from_usd <= 200 for h in out.hits)
    assert out.interpreted.max_price == 200
    explicit = engine.search("drone", filters=InputFilters(category="agriculture", max_price=25), limit=20)
    assert explicit.hits and all(h.listing.category == "agriculture" for h in explicit.hits)
    assert all(h.listing.price_from_usd <= 25 for h in explicit.hits)


def test_explicit_point_and_radius(engine: SearchEngine) -> None:
    ann_arbor = engine.gazetteer.get("Ann Arbor")
    assert ann_arbor is not None
    out = engine.search(
        "drone services", lat=ann_arbor.lat, lon=ann_arbor.lon, filters=InputFilters(radius_miles=15), limit=50
    )
    assert out.hits and all(h.distance_miles is not None and h.distance_miles <= 15 for h in out.hits)
    far = engine.search("drone services", lat=41.88, lon=-87.63)  # Chicago by coordinates
    assert not far.in_service_area and far.hits == [] and far.notice


def test_county_search_prefers_listings_in_the_county(engine: SearchEngine) -> None:
    out = engine.search("drone services in Macomb County", limit=5)
    assert out.interpreted.place is not None and out.interpreted.place.kind == "county"
    assert out.hits and out.hits[0].listing.county == "Macomb"


def test_out_of_area_is_honest(engine: SearchEngine) -> None:
    out = engine.search("drone delivery in Chicago")
    assert out.in_service_area is False and out.hits == []
    assert out.notice and "Chicago" in out.notice and "Detroit Metro" in out.notice
    assert "for example Detroit, Troy or Ann Arbor" in out.notice  # far away: well-known towns of the area
    near = engine.search("roof inspection in Lansing").notice  # a drive away: the area's nearest towns
    assert near is not None and "The closest part of the area to Lansing, Michigan is around Fowlerville" in near
    windsor = engine.search("roof inspection in Windsor, Ontario").notice  # across the border: no drive
    assert windsor is not None and "closest part" not in windsor and "Windsor" in windsor


def test_typo_notice_and_no_match(engine: SearchEngine) -> None:
    out = engine.search("roof inspection Sterling Hieghts", limit=3)
    assert out.notice == "Showing results for Sterling Heights."
    none = engine.search("crop spraying under $1", limit=3)
    assert none.in_service_area and none.hits == [] and none.notice


def test_a_listing_offering_the_service_named_ranks_over_one_that_shares_only_words(engine: SearchEngine) -> None:
    out = engine.search("inspection of a cell tower, check the antenna for corrosion", limit=3)
    offering = [h for h in out.hits if "cell tower inspection" in h.listing.services]
    assert offering and out.hits[0] in offering
    ranked = [("cell tower inspection" in h.listing.services) for h in out.hits]
    assert ranked == sorted(ranked, reverse=True)  # every one that offers it comes first
