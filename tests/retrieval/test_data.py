"""The shipped data: listings.jsonl (schema, coverage, varied text, coordinates) and places.json, and that the
committed listings are exactly what the seeded generator produces."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from retrieval.places import haversine_miles, load_gazetteer
from retrieval.schema import CATEGORIES, Listing
from retrieval.synth import generate_listings
from tests.conftest import ROOT

COUNTIES = {"Wayne", "Oakland", "Macomb", "Washtenaw", "Livingston", "Monroe", "St. Clair", "Lapeer"}


def test_places_cover_the_eight_counties() -> None:
    gaz = load_gazetteer(ROOT / "data" / "places.json")
    assert set(gaz.service_area) == COUNTIES
    assert {p.county for p in gaz.places if p.is_county} == COUNTIES
    assert len(gaz.municipalities()) >= 60
    for name in ["Detroit", "Dearborn", "Livonia", "Troy", "Southfield", "Novi", "Farmington Hills", "Warren",
                 "Sterling Heights", "Ann Arbor", "Ypsilanti", "Canton", "Brighton", "Howell", "Monroe", "Port Huron",
                 "Lapeer", "Pontiac", "Royal Oak", "Rochester Hills"]:  # fmt: skip
        assert gaz.get(name) is not None, name
    for p in gaz.places:  # south-east Michigan
        assert 41.7 < p.lat < 43.3 and -84.2 < p.lon < -82.3, p.name
    detroit, ann_arbor = gaz.get("Detroit"), gaz.get("Ann Arbor")
    assert detroit and ann_arbor
    assert 34 < haversine_miles(detroit.lat, detroit.lon, ann_arbor.lat, ann_arbor.lon) < 40
    assert {"Chicago", "Toledo", "Grand Rapids", "Lansing", "Flint"} <= {o.name for o in gaz.outside}


def test_listings_are_valid_and_cover_every_category_in_every_county(all_rows: list[dict[str, Any]]) -> None:
    listings = [Listing.model_validate(r) for r in all_rows]
    assert len(listings) >= 600
    assert len({x.id for x in listings}) == len(listings)
    assert {(c, k) for c in COUNTIES for k in CATEGORIES} <= {(x.county, x.category) for x in listings}
    per_county = Counter(x.county for x in listings)
    assert per_county["Wayne"] > per_county["Oakland"] > per_county["Washtenaw"] > per_county["Lapeer"]


def test_descriptions_are_varied_and_the_right_length(all_rows: list[dict[str, Any]]) -> None:
    words = [len(r["description"].split()) for r in all_rows]
    assert min(words) >= 40 and max(words) <= 150
    assert len({r["description"] for r in all_rows}) == len(all_rows)
    openings = Counter(" ".join(r["description"].split()[:6]) for r in all_rows)
    assert openings.most_common(1)[0][1] < len(all_rows) * 0.05  # no single stock opening


def test_coordinates_sit_in_the_listings_own_city(all_rows: list[dict[str, Any]]) -> None:
    gaz = load_gazetteer(ROOT / "data" / "places.json")
    for r in all_rows:
        city = gaz.get(r["city"])
        assert city is not None and city.county == r["county"], r["id"]
        assert haversine_miles(r["lat"], r["lon"], city.lat, city.lon) < 5.5, r["id"]


def test_shipped_file_is_what_the_seeded_generator_writes(all_rows: list[dict[str, Any]]) -> None:
    gaz = load_gazetteer(ROOT / "data" / "places.json")
    again = generate_listings(gazetteer=gaz, count=len(all_rows), seed=7)
    assert [json.dumps(r) for r in again] == [json.dumps(r) for r in all_rows]
