"""The shared claim checker: a sentence is checked against the sources it names (or all of them), a claim
about several at once must hold for each, catalogue names must be the sources' own, and describe now knows
services: the Troy listing's invented roof cleaning, repairs and 24-hour service are caught."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from chains.claims import Catalog, check, context_facts, listing_facts, load_claims
from chains.claims.rules import parse_claims
from chains.describe.schema import canonical, facts_of
from errors import ConfigError
from settings import ROOT

RULES = load_claims(ROOT / "data" / "claims.yaml")


def _listing(**over: Any) -> SimpleNamespace:
    base = dict(id="lst-9001", title="Roof Checks by Drone", operator="Northwind Aerial", category="inspection",
                city="Troy", county="Oakland", services=["roof inspection", "gutter check"], features=[],
                certifications=["FAA Part 107"], insured=True, description="We inspect roofs in Troy.",
                price_from_usd=149.0, price_unit="project", rating=4.8, review_count=32, service_radius_miles=20.0)
    return SimpleNamespace(**{**base, **over})


A = _listing()
B = _listing(id="lst-9002", title="Gutter Looks", operator="Bluebird Drones", insured=False, price_from_usd=99.0,
             services=["gutter check"], rating=4.1, review_count=7)
CATALOG = Catalog.from_listings([A, B, _listing(id="lst-9003", operator="Faraway Imaging", title="Far Scans",
                                                services=["chimney inspection"])],
                                places=["Troy", "Novi", "Toledo"])
CONTEXT = context_facts(places=["Troy", "Oakland", "Detroit Metro"], names=["SkyMarket", "FAA", "Part"])


def _rules(text: str, *sources: Any) -> set[str]:
    facts = [listing_facts(s) for s in sources] + [CONTEXT]
    return {f.rule for f in check(text, facts, RULES, feature="assistant", catalog=CATALOG)}


def test_a_named_operator_is_checked_against_its_own_listing() -> None:
    assert _rules("Northwind Aerial is insured.", A, B) == set()
    assert "insurance" in _rules("Bluebird Drones is insured.", A, B)


def test_a_claim_about_them_all_must_hold_for_each() -> None:
    assert "insurance" in _rules("Both are fully insured.", A, B)
    assert _rules("Both are fully insured.", A) == set()


def test_prices_ids_and_figures_come_from_the_cited_listings() -> None:
    backed = "Northwind Aerial starts from $149 per project, rated 4.8 (32 reviews), listing lst-9001."
    assert _rules(backed, A) == set()
    assert "price" in _rules("Northwind Aerial starts from $99.", A, B)  # B's price, said of A
    assert "listing_id" in _rules("See listing lst-9003.", A, B)
    assert "figure" in _rules("They have flown 450 missions.", A)


def test_a_percentage_must_be_the_operators_own() -> None:
    """The figure rule reads no "%": a satisfaction rate or an accuracy the model made up was let through."""
    assert "percent" in _rules("Northwind Aerial has 98% satisfied customers.", A)
    assert "percent" in _rules("Northwind Aerial is accurate to 99.5 percent.", A)
    said = _listing(description="Our scans catch 95% of hail damage on the first flight.")
    assert "percent" not in _rules("Northwind Aerial says its scans catch 95% of hail damage.", said)
    assert "percent" not in _rules("Northwind Aerial offers roof inspection.", A)


def test_uncited_operators_invented_businesses_and_unsearched_places_are_caught() -> None:
    assert "operator_uncited" in _rules("Faraway Imaging is another option.", A)
    assert "operator_invented" in _rules("Try SkyHigh Drones for this.", A)
    assert "name_unknown" in _rules("You could also ask SkyCreamy.", A)
    assert "place_unsearched" in _rules("Northwind Aerial also flies in Toledo.", A)
    assert _rules("Northwind Aerial flies in Troy, in Oakland County, for SkyMarket customers.", A) == set()


def test_services_must_be_offered_by_the_source() -> None:
    assert "service_unlisted" in _rules("Northwind Aerial also does chimney inspection.", A)
    assert _rules("Northwind Aerial does roof inspection and gutter checks.", A) == set()


def test_without_sources_advice_passes_but_entities_do_not() -> None:
    assert _rules("Look for an operator with FAA Part 107 certification and insurance.") == set()
    assert "price" in _rules("A roof inspection costs about $250.")
    assert "contact" in _rules("Call 313-555-0199 to book.")


def test_describe_catches_the_invented_services_of_the_troy_listing() -> None:
    inp = canonical({"title": "Roof checks by drone", "category": "inspection", "city": "Troy",
                     "services": ["roof inspection", "gutter check"]})
    text = ("We offer roof inspection and gutter checks in Troy. We also provide roof cleaning for homes. "
            "Ours is a 24-hour service. Our crew handles roofing repairs too.")
    catalog = Catalog(services=("roof inspection", "gutter check", "chimney inspection", "roof cleaning"))
    found = check(text, facts_of(inp), RULES, feature="describe", catalog=catalog)
    assert list(dict.fromkeys(f.sentence for f in found)) == [
        "We also provide roof cleaning for homes.", "Ours is a 24-hour service.",
        "Our crew handles roofing repairs too."]
    assert {f.rule for f in found} >= {"service_physical", "feat_availability"}


def test_a_price_keeps_its_listing_unit() -> None:
    hourly = _listing(id="lst-9004", title="Hourly Roof Looks", operator="Kestrel Works", price_from_usd=125.0,
                      price_unit="hour")
    assert _rules("Kestrel Works charges from $125 per hour.", hourly) == set()
    assert _rules("Kestrel Works is $125/hr, Northwind Aerial $149 a project.", hourly, A) == set()
    assert "price_unit" in _rules("Kestrel Works charges from $125 per project.", hourly)
    assert "price_unit" in _rules("Roof checks start at $149 an hour.", A, hourly)
    # two listings at the same price with different units: the sentence may mean either
    same = _listing(id="lst-9005", operator="Osprey Air", title="Osprey Roofs", price_from_usd=125.0)
    assert "price_unit" not in _rules("From $125 per project.", hourly, same)
    # an amount that is no listing's price is the price rule's finding, not the unit rule's
    assert _rules("It is $310 per hour.", A) == {"price"}
    # the customer's own cap (context) carries no unit
    assert "price_unit" not in _rules("Everything here is under $300 per project.", A)


def test_describe_checks_the_unit_it_was_given() -> None:
    inp = canonical({"title": "Drone Roof Checks", "category": "inspection", "city": "Troy",
                     "services": ["roof inspection"], "price_from_usd": 120, "price_unit": "hour"})
    assert not check("Roof checks from $120 per hour.", facts_of(inp), RULES, feature="describe")
    found = check("Roof checks from $120 per project.", facts_of(inp), RULES, feature="describe")
    assert [f.rule for f in found] == ["price_unit"]


def test_a_comparison_must_name_the_listing_that_is_first_by_that_field() -> None:
    # A: 4.8 from 32 reviews, $149; B: 4.1 from 7 reviews, $99.
    assert "rank_rating" in _rules("Bluebird Drones has the best reviews of the two.", A, B)
    assert _rules("Northwind Aerial has the best reviews of the two.", A, B) == set()
    assert "rank_price" in _rules("Northwind Aerial is the cheapest option.", A, B)
    assert _rules("Bluebird Drones is the cheapest option.", A, B) == set()
    assert "rank_reviews" in _rules("Bluebird Drones has the most reviews.", A, B)
    # Naming nobody ranks nobody; with one listing cited, it is first of one.
    assert _rules("The highest rated one is worth a call.", A, B) == set()
    assert _rules("Bluebird Drones is the top rated choice here.", B) == set()


def test_a_listing_without_reviews_or_distance_is_never_first_by_them() -> None:
    unrated = _listing(id="lst-9004", operator="Newcomer Aerial", title="Fresh Flights", rating=5.0, review_count=0)
    assert "rank_rating" in _rules("Newcomer Aerial is the best rated of these.", A, unrated)
    far, near = (SimpleNamespace(**{**vars(x), "distance_miles": d}) for x, d in ((A, 26.4), (B, 7.1)))
    assert "rank_distance" in _rules("Northwind Aerial is the closest to you.", far, near)
    assert _rules("Bluebird Drones is the closest to you.", far, near) == set()
    assert "rank_distance" in _rules("Northwind Aerial is the closest to you.", A, B)  # no place searched


def test_ties_count_as_first() -> None:
    twin = _listing(id="lst-9005", operator="Twin Rotor Aerial", title="Twin Roof Checks", review_count=5)
    assert _rules("Twin Rotor Aerial has the highest rating.", A, twin) == set()


def test_a_rank_rule_needs_its_field() -> None:
    for body in ("kind: rank\n    match: ['x']", "kind: rank\n    by: speed\n    match: ['x']",
                 "by: rating\n    match: ['x']\n    support: ['x']\n    in: [notes]"):
        with pytest.raises(ConfigError, match="'by'"):
            parse_claims(f"rules:\n  - id: r\n    reason: r\n    {body}\n", "t.yaml")


def test_removing_a_sentence_keeps_the_lines_of_the_others() -> None:
    """A line break ends a sentence; joining the kept lines with a space would make one sentence of two, and a
    capitalised word starting a line would read as a name inside it (CI caught the local model's
    "...required for operation within\\nUS cities" returned as one flagged sentence)."""
    from chains.claims import strip, trim_words
    from chains.claims.check import Finding, split_sentences

    text = "Services: aerial photos; event photography\nInsured and rated 5.0.\nEquipment and features: fpv"
    kept = strip(text, [Finding("x", "y", "Insured and rated 5.0.")])
    assert kept == "Services: aerial photos; event photography\nEquipment and features: fpv"
    assert split_sentences(kept) == ["Services: aerial photos; event photography", "Equipment and features: fpv"]
    trimmed, cut = trim_words(text, 11)
    assert cut and trimmed == "Services: aerial photos; event photography\nInsured and rated 5.0."
    # "Equipment" starts its line: no name inside a sentence; the same words on one line are one.
    assert "name_unknown" not in {f.rule for f in check(kept, listing_facts(A), RULES)}
    assert "name_unknown" in {f.rule for f in check(kept.replace("\n", " "), listing_facts(A), RULES)}


_LINES = ["Services: aerial photos; event photography", "Insured and rated 5.0.", "Equipment and features: fpv",
          "We fly in Troy.", "Call Bluebird Drones today!", "From $149 per project.", "Prices from $999.",
          "Book on SkyMarket", "Certified by Acme Labs and fully insured."]


@hyp_settings(max_examples=200, deadline=None, derandomize=True)  # the same layouts on every run
@given(st.lists(st.tuples(st.sampled_from(_LINES), st.sampled_from([" ", "\n", "\n\n"])), min_size=1, max_size=8),
       st.integers(min_value=3, max_value=40))
def test_what_survives_stripping_and_trimming_passes_the_check(pieces: list[tuple[str, str]], words: int) -> None:
    """/describe returns strip(text) cut by trim_words and calls it grounded: neither may make a new claim of
    what is left, however the model laid its text out."""
    from chains.claims import strip, trim_words

    text = "".join(s + sep for s, sep in pieces)
    facts = listing_facts(A)
    kept = strip(text, check(text, facts, RULES))
    assert check(kept, facts, RULES) == []
    assert check(trim_words(kept, words)[0], facts, RULES) == []
