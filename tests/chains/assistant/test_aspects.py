"""A question about the found listings is answered from their fields: what it asks is read from the newest
turn, and every value said is the listing's own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chains.assistant.answer import asked_text, found_text
from chains.assistant.aspects import (
    asked,
    aspect_text,
    is_question,
    lacking,
    miles,
    pick_text,
    pointed,
    pointed_top,
    referred,
)
from chains.assistant.conversation import Request
from retrieval.query import Interpreted, PlaceRef

ROYAL_OAK = PlaceRef(name="Royal Oak", county="Oakland", kind="city", lat=42.49, lon=-83.14)


def _listing(title: str, **kw: object) -> SimpleNamespace:
    base = {"id": f"lst-{abs(hash(title)) % 9999}", "title": title, "operator": "Op", "city": "Berkley",
            "price_from_usd": 180.0, "price_unit": "hour", "rating": 4.2, "review_count": 7, "insured": True,
            "certifications": ["FAA Part 107"], "features": [], "distance_miles": 3.4, "service_radius_miles": 25.0,
            "services": [], "description": ""}
    return SimpleNamespace(**(base | kw))


A = _listing("Heron Thermal", price_from_usd=240.0, price_unit="project", insured=False,
             features=["night_ops"], certifications=["FAA Part 107", "Level I Thermographer"], distance_miles=2.2)
B = _listing("Birch Aerial Works", price_from_usd=99.5, insured=True, features=["night_ops", "same_day"],
             review_count=0, distance_miles=6.8)


@pytest.mark.parametrize(("turn", "aspects", "features"), [
    ("ballpark, what are they charging for something like that?", ("price",), ()),
    ("and what would that set us back", ("price",), ()),
    ("what'll that run my mom, more or less? would it run her a lot", ("price",), ()),
    ("Would any of these have liability coverage", ("insured",), ()),
    ("are those guys any good? how many stars", ("rating",), ()),
    ("how far away are they from me", ("distance",), ()),
    ("is the first one licensed?", ("certifications",), ()),
    ("can either of them fly after dark?", ("features",), ("night_ops",)),
    ("what's the cost, and do they carry insurance?", ("price", "insured"), ()),
    ("which of those is the least expensive", ("top_price", "price"), ()),
    ("ok, who's got the top reviews?", ("top_rating", "rating"), ()),
    ("which one has been reviewed by the most people? most popular?", ("top_reviews",), ()),
    ("and which is nearest to my place?", ("top_distance",), ()),
    ("that first outfit, how much are they asking", ("price",), ()),  # the question after the listing pointed at
    ("are there cheaper ones?", (), ()),  # a comparative asks for other listings (conversation.py orders them)
    ("is that per hour or for the whole thing?", ("price",), ()),  # the unit a price is for
    ("is the first one cheaper than the second?", ("price",), ()),  # two of them compared
    ("which one would you pick?", ("pick",), ()),
    ("who do you recommend, the best rated?", ("pick",), ()),  # the pick says what each is first at
    ("phone number?", ("contact",), ()),
    ("are they insured and what certs do they have?", ("insured", "certifications"), ()),
    ("does that one do a report I can send to my insurance?", (), ()),  # the customer's insurer: no aspect
    ("how long until I get the report", ("turnaround",), ()),
    ("how do i call them", ("contact",), ()),
])
def test_a_question_about_the_results_is_read(turn: str, aspects: tuple[str, ...], features: tuple[str, ...]) -> None:
    assert asked(turn) == (aspects, features)


@pytest.mark.parametrize("turn", [
    "I need a thermal scan of my house at night",  # a need the search ranks by, not a question about results
    "quote for a roof inspection in troy please",
    "hello",
])
def test_a_request_is_not_a_question_about_the_results(turn: str) -> None:
    assert asked(turn) == ((), ())


def test_each_aspect_says_the_listings_own_values() -> None:
    listings = [A, B]
    price = aspect_text(("price",), (), listings, "Royal Oak")
    assert "$240 per project (Heron Thermal)" in price and "$99.50 per hour (Birch Aerial Works)" in price
    assert aspect_text(("insured",), (), listings, None) == (
        "Birch Aerial Works is insured; Heron Thermal does not say so.")
    assert aspect_text(("insured",), (), [B, B], None) == "Both are insured."
    assert aspect_text(("insured",), (), [A], None) == "It does not say it is insured."
    assert aspect_text(("rating",), (), listings, None) == (
        "Ratings: Heron Thermal 4.2 from 7 reviews; and Birch Aerial Works has no reviews yet.")
    assert aspect_text(("distance",), (), listings, "Royal Oak") == (
        "Heron Thermal is based in Berkley, 2 miles from Royal Oak; and Birch Aerial Works is based in Berkley, "
        "7 miles from Royal Oak.")
    twin = _listing("Heron Thermal", city="Novi", price_from_usd=310.0)
    twins = aspect_text(("price",), (), [A, twin], None)  # the same title twice: each says its city
    assert "$240 per project (Heron Thermal in Berkley)" in twins and "$310 per hour (Heron Thermal in Novi)" in twins
    assert "Heron Thermal lists FAA Part 107 and Level I Thermographer" in aspect_text(
        ("certifications",), (), listings, None)
    assert aspect_text(("features",), ("same_day",), listings, None) == (
        "Birch Aerial Works lists same-day service; Heron Thermal does not say so.")
    assert aspect_text(("features",), ("night_ops",), listings, None) == "Both list night flights."
    assert aspect_text(("price",), (), [], None) == ""


def test_which_is_first_is_answered_from_the_listings_values() -> None:
    C = _listing("Cedar Sky", rating=4.6, review_count=31, price_from_usd=99.5, distance_miles=9.0)
    three = [A, B, C]  # A: 4.2 from 7, $240/project, 2.2 mi; B: no reviews, $99.50/hour; C: 4.6 from 31, $99.50/hour
    assert aspect_text(("top_rating",), (), three, None) == (
        "Of these 3, Cedar Sky has the highest rating: 4.6 from 31 reviews.")
    assert aspect_text(("top_reviews",), (), three, None) == "Of these 3, Cedar Sky has the most reviews: 31."
    assert aspect_text(("top_price",), (), three, None) == (
        "Of these 3, Birch Aerial Works and Cedar Sky have the lowest starting price: $99.50 per hour "
        "(they price by different units, so compare what each price covers).")
    assert aspect_text(("top_distance",), (), three, "Royal Oak") == (
        "Of these 3, Heron Thermal is the closest to Royal Oak, 2 miles away.")
    assert "Tell me the city" in aspect_text(("top_distance",), (), three, None)
    assert aspect_text(("top_rating",), (), [B], None) == "It has no reviews yet."
    tie = _listing("Dune Aerial", rating=4.6, review_count=4)
    assert aspect_text(("top_rating",), (), [C, tie], None) == (
        "Of these 2, Cedar Sky and Dune Aerial share the highest rating, 4.6 "
        "(Cedar Sky from 31 reviews and Dune Aerial from 4 reviews).")


def test_a_pick_says_what_each_is_first_at_and_leaves_the_choice() -> None:
    c = _listing("Cedar Sky", price_from_usd=120.0, rating=4.9, review_count=40, distance_miles=9.0)
    text = pick_text([A, B, c], "Royal Oak")
    assert "Cedar Sky is the highest rated (4.9 from 40 reviews)" in text  # B has no reviews: no rating of its
    assert "Heron Thermal is the closest to Royal Oak (2 miles)" in text
    assert "Birch Aerial Works has the lowest starting price ($99.50 per hour)" in text
    assert "different units" in text  # per project beside per hour
    assert text.endswith("Heron Thermal is the best match for what you asked.")
    both = pick_text([c, _listing("Dune Air", price_from_usd=300.0, rating=4.1, distance_miles=12.0)], None)
    assert both.startswith("Cedar Sky is the highest rated (4.9 from 40 reviews) and has the lowest starting price "
                           "($120 per hour).")  # no place: no distance; one leads on all: no "it depends"
    assert text.startswith("It depends on what matters most to you.")  # each of three leads on one
    assert pick_text([c], None).startswith("Cedar Sky is the only one shown")


def test_the_answer_from_the_data_addresses_the_question() -> None:
    request = Request(Interpreted(text="thermal scan", category="thermal_imaging", place=ROYAL_OAK))
    plain = found_text(request, [A, B])
    assert "The top match is Heron Thermal" in plain and "Prices" not in plain
    priced = found_text(request, [A, B], question="roughly how much would that run me?")
    assert priced.startswith(
        "Here are 2 thermal imaging listings that serve Royal Oak. Prices start at $240 per project")
    assert "The top match" not in priced


def test_a_question_naming_a_service_says_which_listings_list_it() -> None:
    """'do any of them check gutters?' is answered from each listing's services, in the search's vocabulary."""
    from chains.assistant.aspects import asked_services

    roof = _listing("Roof Looks", services=["roof inspection", "gutter check"])
    tower = _listing("Tower Looks", services=["cell tower inspection"])
    request = Request(Interpreted(text="roof inspection", categories=["inspection"], place=ROYAL_OAK))
    assert asked_services("Do any of them check gutters too?", ["inspection"]) == ("gutter check",)
    assert asked_services("do they do video walkthroughs too?", ["real_estate"]) == ("property video tour",)
    assert asked_services("do they also do matterport / 3d tours?", ["real_estate"]) == ()  # a scan, no video
    assert asked_services("I also need the gutters checked", ["inspection"]) == ()  # a need, not a question
    assert asked_services("do any of them check gutters?", ["real_estate"]) == ()  # not a service of theirs
    assert asked_services("Who can check my gutters?", ["inspection"]) == ()  # asks for listings: a search
    text = found_text(request, [roof, tower], question="do any of them check gutters too?")
    assert "Roof Looks lists gutter check; Tower Looks does not say so." in text
    both = found_text(request, [roof, roof], question="can they check the gutters?")
    assert "Both list gutter check." in both
    # not among its services, but named in its own words: quoted, and it lacks nothing a new search would find
    towers = _listing("Spire Looks", services=["roof inspection"], description="We inspect roofs, chimneys and "
                      "towers. Reports in 48 hours.")
    chimneys = found_text(request, [towers, tower], question="do they do chimneys too?")
    assert 'Spire Looks writes: "We inspect roofs, chimneys and towers."' in chimneys
    assert not lacking((), (), [towers], ["chimney inspection"]) and lacking((), (), [tower], ["chimney inspection"])
    # a service that names a credential ("part 107 test prep") is the service asked, not their certificates
    course = _listing("Pilot Course", services=["part 107 test prep"])
    lessons = Request(Interpreted(text="lessons", categories=["training"], place=ROYAL_OAK), about_shown=True)
    prep = found_text(lessons, [course, tower], question="do they help with the part 107 test?")
    assert prep.startswith("Pilot Course lists part 107 test prep") and "lists FAA Part 107" not in prep
    # a credential asked by name: their certificates, and their own words when those name it
    surveyor = _listing("Land Maps", description="A licensed professional surveyor on staff signs every map.")
    mapping = Request(Interpreted(text="survey", categories=["mapping_surveying"]), about_shown=True)
    said = found_text(mapping, [surveyor, tower], question="do any have a licensed surveyor?")
    assert "Land Maps lists FAA Part 107" in said
    assert 'Land Maps writes: "A licensed professional surveyor on staff signs every map."' in said


def test_a_listing_pointed_at_is_found_by_position_city_or_operator() -> None:
    c = _listing("Cedar Sky", city="Wixom", operator="Marquardt Drone Co.", rating=4.8, review_count=40)
    three = [A, B, c]  # A and B are in Berkley
    assert referred("and the 2nd one - insured?", three) == [1]
    assert referred("that last outfit, what do they charge", three) == [2]
    assert referred("compare the first and the third one", three) == [0, 2]
    assert referred("is the Wixom one any good?", three) == [2]
    assert referred("the marquardt guys, are they certified", three) == [2]
    assert referred("are they all insured?", three) == []  # all of them: none in particular
    assert referred("the fifth one?", three) == []
    # "that one" after "which is ...est?": the one that answer named (B is the cheapest, C the best rated)
    assert referred("does that outfit carry insurance?", three, ["who's the least expensive of them"]) == [1]
    assert referred("and that company, licensed?", three, ["ok which has the top reviews"]) == [2]
    assert referred("does that one fly at night?", three, ["are they insured"]) == []  # named no one
    # "it" and "that one" carry the one pointed at through the turns after it
    talk = ["need a roof guy", "ok which has the top reviews", "and is that one insured?"]
    assert referred("how do I book it", three, talk) == [2]
    assert referred("great, can it do thermal too?", three, ["the wixom one, what's the price?"]) == [2]
    assert referred("how do I book it", three, ["are they insured?"]) == []  # it: none in particular
    assert referred("can they do it on a saturday?", three, ["is the Wixom one insured?"]) == []  # it: the job


def test_a_question_about_one_listing_shown_is_answered_for_it_alone() -> None:
    request = Request(Interpreted(text="thermal scan", category="thermal_imaging", place=ROYAL_OAK), about_shown=True)
    c = _listing("Cedar Sky", city="Wixom", insured=False)
    text = asked_text(request, [A, B, c], "is the Wixom one insured?")
    assert text.startswith("About Cedar Sky: it does not say it is insured.")
    assert "Heron Thermal" not in text and "Birch" not in text
    assert "say so and I'll look for listings" in text  # what the shown lack is a new search, the customer's call
    assert "say so and I'll look for listings" not in asked_text(request, [A, B, c], "is the 2nd one insured?")  # B is


def test_more_about_a_listing_shown_says_its_own_details_and_how_to_book() -> None:
    request = Request(Interpreted(text="thermal scan", category="thermal_imaging", place=ROYAL_OAK), about_shown=True)
    text = asked_text(request, [A, B], "tell me more about the first one")
    assert text.startswith("Heron Thermal by Op, based in Berkley: from $240 per project, rated 4.2 from 7 reviews")
    assert "does not say it is insured" in text and "Level I Thermographer" in text and "night flights" in text
    assert B.id not in text
    book = asked_text(request, [A, B], "ok how do I book the first one")  # how to, not every detail again
    assert book == (f"To book Heron Thermal by Op, open its listing on SkyMarket ({A.id}) and request a quote or "
                    "book there; the operator confirms the date and the price.")
    both = asked_text(request, [A, B], "compare the first two")  # each one's details, side by side
    assert both.startswith("Heron Thermal by Op") and "Birch Aerial Works by Op" in both
    assert asked_text(request, [A, B], "thanks") == ""  # asks nothing of them


def test_a_listing_pointed_at_by_a_superlative_is_the_one_first_by_that_field() -> None:
    c = _listing("Cedar Sky", city="Wixom", rating=4.8, review_count=40, distance_miles=9.0, price_from_usd=150.0)
    three = [A, B, c]  # nearest A (2.2 mi), cheapest B ($99.50), best rated C
    assert referred("ok book the closest one", three) == [0]
    assert referred("tell me more about the cheapest", three) == [1]
    assert referred("how do i contact the best rated one", three) == [2]
    assert referred("which one is closest to me?", three) == []  # asks which: answered as such, for all three
    # "them" after a turn that pointed at one: that one, booked
    assert referred("ok how do I book them", three, ["which one is the cheapest", "does that one fly at night?"]) == [1]
    assert referred("ok how do I book them", three, ["thermal scan in royal oak"]) == []  # none pointed at: all
    assert pointed_top("which is cheapest?") is None and pointed_top("anything cheaper?") is None
    request = Request(Interpreted(text="thermal scan", category="thermal_imaging", place=ROYAL_OAK))
    text = asked_text(request, three, "how do i contact the best rated one")
    assert text.startswith("To book Cedar Sky by Op, open its listing on SkyMarket") and c.id in text  # how to book it
    assert A.id not in text and B.id not in text and "Ratings:" not in text
    closest = asked_text(request, three, "which one is closest to me?")
    assert closest == "Of these 3, Heron Thermal is the closest to Royal Oak, 2 miles away."


def test_distances_read_as_words() -> None:
    assert [miles(d) for d in (0.3, 1.2, 12.6)] == ["under a mile", "1 mile", "13 miles"]


def test_a_question_is_told_by_its_mark_anywhere_or_a_question_word_opening_a_clause() -> None:
    assert is_question("will somebody have to climb up there? my roof is really steep")
    assert is_question("can i sit in on the lesson or is it just the kid")
    assert not is_question("my roof is really steep")
    # the superlative pointed at is not what is asked: the weekends are
    assert pointed("the one w the best reviews, do they teach on weekends", ("top_rating", "rating")) == ()
    assert pointed("which one has the best reviews?", ("top_rating", "rating")) == ("top_rating", "rating")


def test_a_city_named_in_a_new_request_points_at_no_listing() -> None:
    """The turn that asks for listings names where the job is: "Clinton Township" there is no listing pointed
    at, even when one of those found is based there (only the customer's turns about them point)."""
    c = _listing("Cedar Sky", city="Wixom")
    request = Request(Interpreted(text="delivery", category="delivery", place=ROYAL_OAK))
    assert asked_text(request, [A, B, c], "my aunt drives over from Wixom, can a drone bring his pills?") == ""
    shown = Request(Interpreted(text="delivery", category="delivery", place=ROYAL_OAK), about_shown=True)
    assert asked_text(shown, [A, B, c], "is the Wixom one insured?").startswith("About Cedar Sky:")


def test_a_service_asked_of_the_listing_pointed_at_by_a_superlative_is_answered_for_it() -> None:
    near = _listing("Hamburg Stills", distance_miles=1.0, services=["aerial photos", "print-ready prints"])
    far = _listing("Green Oak Stills", distance_miles=9.0, services=["aerial photos"])
    request = Request(Interpreted(text="farm photos", category="aerial_photography", categories=["aerial_photography"],
                                  place=ROYAL_OAK), about_shown=True)
    text = asked_text(request, [far, near], "does the closest one do prints?")
    assert text.startswith("About Hamburg Stills: it lists print-ready prints")  # not its details, nor the other
    assert "Green Oak" not in text
