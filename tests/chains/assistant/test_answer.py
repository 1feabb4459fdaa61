"""The answer built from the data says which filters held: the insurance a customer asked for is named."""

from __future__ import annotations

from types import SimpleNamespace

from chains.assistant.answer import found_text, none_found_text
from chains.assistant.conversation import Request
from retrieval.query import Interpreted, PlaceRef

GP = PlaceRef(name="Grosse Pointe", county="Wayne", kind="city", lat=42.39, lon=-82.91)
LISTING = SimpleNamespace(id="lst-9001", title="Lakeside Aerials", operator="Kestrel Works", city="Warren",
                          price_from_usd=125.0, price_unit="session", rating=4.7, review_count=12, insured=True)


def test_an_insured_search_says_so() -> None:
    insured = Request(Interpreted(text="aerial photos", category="aerial_photography", insured=True, place=GP,
                                  features=["thermal_camera"]))
    text = found_text(insured, [LISTING])
    assert text.startswith("Here is 1 insured aerial photography listing that serves Grosse Pointe.")
    assert "thermal" not in text  # features only rank listings: the answer does not promise them
    assert none_found_text(insured).startswith("I found no insured aerial photography listing")
    plain = Request(Interpreted(text="aerial photos", category="aerial_photography", place=GP))
    assert "insured" not in found_text(plain, [LISTING])


def test_a_category_reads_as_words() -> None:
    mapping = Request(Interpreted(text="topo map", category="mapping_surveying", place=GP))
    assert found_text(mapping, [LISTING, LISTING]).startswith(
        "Here are 2 mapping and surveying listings that serve Grosse Pointe.")
