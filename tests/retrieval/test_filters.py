"""The filter model: which filters are set, explicit ones over the query's (and one turn's over another's),
each predicate over the index's columns (a listing without the attribute fails an upper bound), values a
phrase may set only within the model's bounds, and the route's input being one flat set of filters."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from chains.search import SearchInput
from retrieval.filters import InputFilters, SearchFilters, accepts, columns, hints, mask
from retrieval.query import Interpreted
from retrieval.schema import Listing
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def listings() -> list[Listing]:
    with (ROOT / "data" / "listings.jsonl").open(encoding="utf-8") as fh:
        return [Listing.model_validate_json(line) for _, line in zip(range(60), fh, strict=False)]


def passing(f: SearchFilters, listings: list[Listing], dist: np.ndarray | None = None) -> list[Listing]:
    ok = mask(f, columns(listings), len(listings), dist)
    return [x for x, keep in zip(listings, ok.tolist(), strict=True) if keep]


def test_given_is_what_is_set() -> None:
    inp = SearchInput(query="roofs", lat=42.5, lon=-83.1, max_price=300)
    assert inp.given() == {"max_price": 300}  # the query, limit and point are not filters
    assert SearchFilters(categories=[], insured=None).given() == {}
    assert Interpreted(text="x", categories=["inspection"], insured=True).given() == {
        "categories": ["inspection"],
        "insured": True,
    }


def test_explicit_filters_override_the_query_and_an_explicit_category_replaces_its_list() -> None:
    it = Interpreted(text="thermal roof", category="inspection", categories=["inspection", "thermal_imaging"],
                     max_price=500, insured=True)  # fmt: skip
    out = it.override(InputFilters(category="agriculture", max_price=100))
    assert (out.category, out.categories, out.max_price, out.insured) == ("agriculture", ["agriculture"], 100, True)
    assert out.text == "thermal roof" and it.max_price == 500  # a copy: the original is unchanged
    assert it.override(InputFilters()) == it


def test_a_later_turn_keeps_what_it_did_not_say() -> None:
    first = Interpreted(text="roof inspection", category="inspection", categories=["inspection"], max_price=400)
    later = Interpreted(text="insured ones", insured=True)
    merged = first.override(later)
    assert (merged.category, merged.max_price, merged.insured) == ("inspection", 400, True)
    merged.categories.append("construction")
    assert first.categories == ["inspection"]  # lists are copies


def test_predicates(listings: list[Listing]) -> None:
    cheap = passing(SearchFilters(max_price=150), listings)
    assert cheap and all(x.price_from_usd <= 150 for x in cheap) and len(cheap) < len(listings)
    insured = passing(SearchFilters(insured=True), listings)
    assert {x.id for x in insured} == {x.id for x in listings if x.insured}
    assert len(passing(SearchFilters(insured=False), listings)) == len(listings)  # False asks nothing
    two = passing(SearchFilters(categories=["delivery", "training"]), listings)
    assert two and {x.category for x in two} == {"delivery", "training"}
    assert passing(SearchFilters(categories=["delivery", "training"], max_price=1), listings) == []
    near = np.arange(len(listings), dtype=np.float32)
    assert len(passing(SearchFilters(radius_miles=9.5), listings, near)) == 10
    assert len(passing(SearchFilters(radius_miles=9.5), listings)) == len(listings)  # no point: no distance


def test_an_upper_bound_fails_a_listing_without_the_attribute(listings: list[Listing]) -> None:
    from retrieval.filters import AtMost

    values = AtMost("price_from_usd").column(listings)
    assert values.dtype == np.float64
    column = np.array([np.nan, 1.0, 5.0])
    assert AtMost("x").keep(column, 2.0, None).tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [("max_price", 300.0, True), ("max_price", 0.0, False), ("radius_miles", 200.0, True),
     ("radius_miles", 500.0, False), ("insured", True, True)],
)  # fmt: skip
def test_a_phrase_value_must_fit_the_model(name: str, value: Any, ok: bool) -> None:
    assert accepts(name, value) is ok


def test_the_route_input_is_flat_and_unchanged() -> None:
    props = SearchInput.model_json_schema()["properties"]
    assert list(props) == ["query", "limit", "lat", "lon", "radius_miles", "category", "max_price"]
    assert all("$ref" not in json.dumps(p) for p in props.values())  # flat: no nested model
    nulls = SearchInput.model_validate({"query": "roofs", "lat": None, "lon": None, "radius_miles": None,
                                        "category": None, "max_price": None})  # fmt: skip
    assert nulls.given() == {}


def test_hinted_filters_are_marked_on_the_model() -> None:
    assert set(hints()) == {"max_price"} and "dollars" in hints()["max_price"]
