"""The deterministic query parser: places (near/in, counties, aliases, typos, outside the area), category
synonyms, price limits, distances, features, and one pass: a filter phrase's words match nothing else."""

from __future__ import annotations

import pytest

from retrieval.places import load_gazetteer
from retrieval.query import QueryParser
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser(load_gazetteer(ROOT / "data" / "places.json"))


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("roof check", "inspection"),
        ("wedding video", "videography"),
        ("crop spraying", "agriculture"),
        ("survey my land", "mapping_surveying"),
        ("deliver medicine to grandma", "delivery"),
        ("photos of my house for sale", "real_estate"),
        ("heat loss scan of my house", "thermal_imaging"),
        ("missing hiker search and rescue", "public_safety"),
        ("weekly job site progress photos", "construction"),
        ("part 107 test prep class", "training"),
        ("aerial photos of the family farm reunion", "aerial_photography"),
        ("drone photos for a house listing", "real_estate"),
        ("help me study for my part 107", "training"),
    ],
)
def test_category_synonyms(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "place", "fuzzy"),
    [
        ("roof inspection near Troy", "Troy", False),
        ("videographer in ann arbor", "Ann Arbor", False),
        ("a2 graduation photos", "Ann Arbor", False),
        ("roof check in Sterling Hieghts", "Sterling Heights", True),
        ("Farmington Hils drone pictures", "Farmington Hills", True),
        ("lessons Livonai", "Livonia", True),
        ("spraying in Lapeer County", "Lapeer County", False),
        ("boat delivery Saint Clair Shores", "St. Clair Shores", False),
        ("mapping Mt. Clemens", "Mount Clemens", False),
    ],
)
def test_places(parser: QueryParser, query: str, place: str, fuzzy: bool) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place
    assert it.fuzzy_place is fuzzy
    assert place.split()[0].lower() not in it.text  # the place is not searched as text


def test_outside_the_service_area(parser: QueryParser) -> None:
    it = parser.parse("drone delivery in Chicago")
    assert it.place is None and it.outside_place is not None and it.outside_place.name.startswith("Chicago")
    assert it.category == "delivery"
    # a place of ours wins over an outside one named in the same query
    assert parser.parse("from Toledo to Monroe").place.name == "Monroe"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "price", "radius"),
    [
        ("real estate photos under $150", 150.0, None),
        ("videographer below 1,200 dollars", 1200.0, None),
        ("survey max $2k", 2000.0, None),
        ("delivery $40 or less", 40.0, None),
        ("mapping within 20 miles of Novi", None, 20.0),
        ("inspector under 10 miles from Troy", None, 10.0),
        ("roof inspection under $300.", 300.0, None),
        ("lessons, budget is like $100 a session", 100.0, None),
        ("lessons at $100 a session tops", 100.0, None),
    ],
)
def test_price_and_distance(parser: QueryParser, query: str, price: float | None, radius: float | None) -> None:
    it = parser.parse(query)
    assert it.max_price == price
    assert it.radius_miles == radius


def test_features_and_several_categories(parser: QueryParser) -> None:
    it = parser.parse("thermal inspection at night, insured, same day")
    assert {"night_ops", "thermal_camera", "same_day"} <= set(it.features)
    assert it.insured is True
    assert set(it.categories) == {"inspection", "thermal_imaging"}


def test_no_false_places_or_prices(parser: QueryParser) -> None:
    it = parser.parse("the best drone guy for my restaurant video")
    assert it.place is None and it.outside_place is None and it.max_price is None
    assert it.text  # never empty
    assert parser.parse("Detroit").text == "drone services"


def test_filter_phrases_are_read_first_and_match_nothing_else(parser: QueryParser) -> None:
    it = parser.parse("drone video up to 5k in Troy")
    assert it.max_price == 5000 and "4k_video" not in it.features  # "5k" is a budget here, not a camera
    it = parser.parse("insured roof inspector Farmington Hills")
    assert it.insured is True and it.text == "roof inspector"
    it = parser.parse("mapping within 20 miles of Novi")
    assert (it.radius_miles, it.place.name if it.place else None, it.text) == (20.0, "Novi", "mapping")


def test_a_value_the_filter_refuses_is_dropped_and_not_searched(parser: QueryParser) -> None:
    it = parser.parse("roof inspection within 500 miles")
    assert it.radius_miles is None and it.text == "roof inspection"
    it = parser.parse("roof inspection under $0")
    assert it.max_price is None and it.text == "roof inspection"
