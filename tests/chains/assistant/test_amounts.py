"""The job's size the customer gave, and what the listings' per-unit prices come to for it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chains.assistant.amounts import amounts, estimate_text
from chains.assistant.answer import found_text
from chains.assistant.conversation import condense
from retrieval.engine import SearchEngine


@pytest.mark.parametrize(
    ("turns", "expected"),
    [(["spraying for my 80 acre soybean field"], (("acre", 80.0),)),
     (["scouting 1,200 acres of corn", "sorry, it's 1,500 acres"], (("acre", 1500.0),)),  # the correction wins
     (["film our 3-hour car show", "about 2 hrs actually"], (("hour", 2.0),)),
     (["video for 4 hours at the fair"], (("hour", 4.0),)),
     (["need it within 48 hours"], ()),  # a deadline, not the job's length
     (["can someone come in the next 24 hours?"], ()),
     (["the farm is 2 hours away from detroit"], ()),
     (["roof inspection in troy"], ())],
)
def test_the_job_size_is_read_and_deadlines_are_not(turns: list[str], expected: tuple[tuple[str, float], ...]) -> None:
    assert amounts(turns) == expected


def _listing(title: str, price: float, unit: str, city: str = "Troy", operator: str = "Op") -> SimpleNamespace:
    return SimpleNamespace(title=title, price_from_usd=price, price_unit=unit, city=city, operator=operator)


def test_a_budget_is_compared_with_what_the_whole_job_comes_to() -> None:
    per_acre = [_listing("Field Scouts", 12.0, "acre"), _listing("Ag Eyes", 28.0, "acre")]
    none = estimate_text(per_acre, (("acre", 200.0),), 300.0)
    assert "none of these comes within your $300" in none and "$2,400" in none and "$5,600" in none
    some = estimate_text(per_acre, (("acre", 20.0),), 300.0)
    assert "within your $300: Field Scouts." in some and "$240" in some
    both = estimate_text(per_acre, (("acre", 10.0),), 300.0)  # all within: each one's figure, no list of names
    assert both == ("For 10 acres, within your $300: Field Scouts from about $120 ($12 per acre); "
                    "Ag Eyes from about $280 ($28 per acre).")
    assert estimate_text(per_acre, (("hour", 3.0),), 300.0) == ""  # no listing priced in hours
    mixed = estimate_text([_listing("Set Price", 400.0, "project"), *per_acre], (("acre", 10.0),), None)
    assert mixed.startswith("For 10 acres: Field Scouts from about $120") and "Set Price" not in mixed


def test_the_answer_says_the_budget_of_the_whole_job(shipped_engine: SearchEngine) -> None:
    turns = ["my cows keep getting out, need someone to check fences on 200 acres in lapeer county",
             "budget is like 300 bucks"]
    request = condense(turns, shipped_engine.parser)
    it = request.interpreted
    assert it is not None and it.max_price == 300 and request.sizes == (("acre", 200.0),)
    listings = [h.listing for h in shipped_engine.search(it.text, interpreted=it, limit=3).hits]
    assert listings and all(x.price_unit == "acre" for x in listings)
    text = found_text(request, listings, turns[-1])
    assert "priced from $300 or less" not in text  # a per-acre price under 300 is not a job under 300
    assert "For 200 acres, none of these comes within your $300" in text
    for x in listings:
        assert f"about ${x.price_from_usd * 200:,.0f} (${x.price_from_usd:,.0f} per acre)" in text


def test_listings_of_one_title_are_told_apart_by_city_then_operator() -> None:
    novi, garden = _listing("Wedding Video", 399.0, "project", "Novi"), _listing("Wedding Video", 200.0, "hour",
                                                                                "Garden City")
    text = estimate_text([novi, garden], (("hour", 5.0),), None)
    assert text == "For 5 hours: Wedding Video in Garden City from about $1,000 ($200 per hour)."
    same = [_listing("RE Package", 225.0, "acre", operator="Wolverine"), _listing("RE Package", 450.0, "acre",
                                                                                  operator="Kestrel")]
    assert "RE Package by Wolverine from about $2,250" in estimate_text(same, (("acre", 10.0),), None)
