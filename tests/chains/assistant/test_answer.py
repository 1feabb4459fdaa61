"""The answer built from the data says which filters held: the insurance a customer asked for is named."""

from __future__ import annotations

from types import SimpleNamespace

from chains.assistant.answer import (
    GENERAL,
    TRUST,
    found_text,
    general_text,
    none_found_text,
    offered_text,
    unanswered_text,
)
from chains.assistant.conversation import Request
from retrieval.query import Interpreted, PlaceRef

GP = PlaceRef(name="Grosse Pointe", county="Wayne", kind="city", lat=42.39, lon=-82.91)
LISTING = SimpleNamespace(id="lst-9001", title="Lakeside Aerials", operator="Kestrel Works", city="Warren",
                          price_from_usd=125.0, price_unit="session", rating=4.7, review_count=12, insured=True,
                          features=[])


def test_an_insured_search_says_so() -> None:
    insured = Request(Interpreted(text="aerial photos", category="aerial_photography", insured=True, place=GP,
                                  features=["thermal_camera"]))
    text = found_text(insured, [LISTING])
    assert text.startswith("Here is 1 insured aerial photography listing that serves Grosse Pointe.")
    assert "It does not list a thermal camera." in text  # asked for, it ranks them: which lists it is said, as is
    assert none_found_text(insured).startswith("I found no insured aerial photography listing")
    plain = Request(Interpreted(text="aerial photos", category="aerial_photography", place=GP))
    assert "insured" not in found_text(plain, [LISTING])


def test_a_category_reads_as_words() -> None:
    mapping = Request(Interpreted(text="topo map", category="mapping_surveying", place=GP))
    assert found_text(mapping, [LISTING, LISTING]).startswith(
        "Here are 2 mapping and surveying listings that serve Grosse Pointe.")
    offered = [SimpleNamespace(category=c) for c in ("mapping_surveying", "real_estate", "mapping_surveying")]
    assert offered_text("Troy", offered).startswith(
        "Operators that serve Troy offer mapping and surveying and real estate.")


def test_a_question_no_field_answers_quotes_their_own_words_or_says_they_do_not_say() -> None:
    school = SimpleNamespace(id="lst-1", title="Sky School", city="Novi", description=(
        "We teach small groups. Bring your own drone or use ours. Weekend classes available."))
    fly = SimpleNamespace(id="lst-2", title="Fly Right", city="Troy", description="Classroom prep is how we teach.")
    both = [school, fly]
    nothing = unanswered_text(both, "he's 14, is that ok?")  # no word to look for: no quote, no guess
    assert nothing == ("Their listings do not say, so ask the operators before you book (message them or request "
                       "a quote on the listing on SkyMarket).")
    assert unanswered_text([fly], "he's 14, is that ok?").startswith("Its listing does not say, so ask the operator ")
    own = unanswered_text(both, "can I bring my own drone?")
    assert 'Sky School writes: "Bring your own drone or use ours."' in own and "Fly Right writes" not in own
    assert "lst-" not in own  # the cards carry the ids: the text is for people
    # one word in common ("teach") answers nothing of "do they teach teenagers?"
    assert "writes" not in unanswered_text(both, "do they teach teenagers?")
    # "sit" and "kid" count: one word in common of three ("lesson") quotes nothing
    lessons = SimpleNamespace(id="lst-3", title="Fly Class", city="Warren",
                              description="Hands-on flight lessons with real drones in an open field.")
    assert "writes" not in unanswered_text([lessons], "can i sit in on the lesson or is it just the kid")


def test_a_general_question_about_trust_says_what_listings_show() -> None:
    assert general_text("are the drone pilots on here vetted? how do I know they're legit") == TRUST
    assert "insured" in TRUST and "Part 107" in TRUST
    assert general_text("How do I list a drone for sale?") == GENERAL


def test_the_top_match_is_said_with_its_distance_and_its_city_once() -> None:
    sterling = SimpleNamespace(id="lst-9002", title="Roof Checks, Sterling Heights", operator="Skyline",
                               city="Sterling Heights", price_from_usd=350.0, price_unit="project", rating=4.5,
                               review_count=11, insured=True, distance_miles=9.7)
    ro = PlaceRef(name="Royal Oak", county="Oakland", kind="city", lat=42.49, lon=-83.14)
    text = found_text(Request(Interpreted(text="roof", category="inspection", place=ro)), [sterling])
    assert "The top match is Roof Checks, Sterling Heights by Skyline, 10 miles from Royal Oak, from $350" in text
    assert text.count("Sterling Heights") == 1


def test_cheapest_first_across_units_says_to_compare_what_each_covers() -> None:
    hourly = SimpleNamespace(**(vars(LISTING) | {"price_unit": "hour", "distance_miles": None}))
    job = SimpleNamespace(**(vars(LISTING) | {"id": "lst-9003", "price_from_usd": 399.0, "price_unit": "project",
                                              "distance_miles": None}))
    it = Interpreted(text="wedding video", category="videography", place=GP)
    assert "different units" in found_text(Request(it, order="price"), [hourly, job])
    assert "different units" not in found_text(Request(it, order="price"), [hourly, hourly])
    assert "different units" not in found_text(Request(it), [hourly, job])  # not ordered by price


def test_the_listings_are_named_by_the_categories_found_and_a_county_gives_no_distance() -> None:
    photo = SimpleNamespace(**(vars(LISTING) | {"category": "aerial_photography", "distance_miles": 4.0}))
    home = SimpleNamespace(**(vars(LISTING) | {"id": "lst-9004", "category": "real_estate", "distance_miles": 6.0}))
    it = Interpreted(text="listing shots", category="real_estate", place=GP)
    assert found_text(Request(it), [photo, home]).startswith(
        "Here are 2 aerial photography and real estate listings that serve Grosse Pointe.")  # as found, not asked
    wayne = PlaceRef(name="Wayne County", county="Wayne", kind="county", lat=42.28, lon=-83.26)
    text = found_text(Request(Interpreted(text="listing shots", category="real_estate", place=wayne)), [home])
    assert "miles from Wayne County" not in text
    assert "The top match is Lakeside Aerials by Kestrel Works in Warren, from" in text
