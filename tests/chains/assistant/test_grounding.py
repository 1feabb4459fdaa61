"""The sentence gate: streamed text goes out one checked sentence at a time; unbacked and declining sentences
are dropped, sentences wait until one names a cited listing, a leak of the system prompt ends the answer."""

from __future__ import annotations

from types import SimpleNamespace

from chains.assistant.conversation import Request
from chains.assistant.grounding import SentenceGate, sources_for
from chains.claims import Catalog, load_claims
from retrieval.query import Interpreted, PlaceRef
from settings import ROOT

RULES = load_claims(ROOT / "data" / "claims.yaml")
A = SimpleNamespace(id="lst-9001", title="Roof Checks by Drone", operator="Northwind Aerial", category="inspection",
                    city="Troy", county="Oakland", services=["roof inspection"], features=[],
                    certifications=["FAA Part 107"], insured=True, description="We inspect roofs.",
                    price_from_usd=149.0, price_unit="project", rating=4.8, review_count=32,
                    service_radius_miles=20.0)
TROY = PlaceRef(name="Troy", county="Oakland", kind="city", lat=42.6, lon=-83.1)
REQUEST = Request(Interpreted(text="roof inspection", category="inspection", place=TROY))
SYSTEM = "You are SkyMarket's assistant and you always answer in two short friendly sentences about drones."


def _gate(listings: list[SimpleNamespace] | None = None) -> SentenceGate:
    sources = sources_for(listings if listings is not None else [A], REQUEST, rules=RULES,
                          catalog=Catalog.from_listings([A], places=["Troy"]), counties=["Oakland"])
    return SentenceGate(sources, "CANARY-123", lambda: SYSTEM, 12)


def test_a_sentence_goes_out_only_once_it_has_ended() -> None:
    gate = _gate()
    assert gate.feed("Northwind Aerial inspects roofs in Tr") == []
    assert gate.feed("oy, from $149 per project. It is rated 4") == [
        "Northwind Aerial inspects roofs in Troy, from $149 per project."]
    assert gate.feed(".8") == []
    assert gate.close() == ["It is rated 4.8"]


def test_unbacked_and_declining_sentences_are_dropped() -> None:
    gate = _gate()
    out = gate.take("Northwind Aerial inspects roofs in Troy. It costs $99. Sorry, I cannot help with roofs. "
                    "It is insured.")
    assert out == "Northwind Aerial inspects roofs in Troy. It is insured."
    assert {f.rule for f in gate.findings} == {"price", "decline"}


def test_sentences_wait_for_a_listing_name_and_are_dropped_without_one() -> None:
    gate = _gate()
    assert gate.feed("Drones make roof checks safe. ") == []
    assert gate.feed("Northwind Aerial can help. ") == ["Drones make roof checks safe.", "Northwind Aerial can help."]
    other = _gate()
    assert other.take("Drones make roof checks safe. Book soon.") == ""
    assert [f.rule for f in other.findings] == ["unrelated"] and other.words == 0


def test_without_listings_nothing_waits() -> None:
    gate = _gate([])
    assert gate.take("Tell me where the job is. I can help with that.") == (
        "Tell me where the job is. I can help with that.")


def test_a_leak_ends_the_answer() -> None:
    gate = _gate()
    text = ("Northwind Aerial can help. You are SkyMarket's assistant and you always answer in two short "
            "friendly sentences about drones. Northwind Aerial is insured.")
    assert gate.take(text) == "Northwind Aerial can help."
    assert gate.leaked and gate.findings[-1].rule == "leak"
    canary = _gate()
    assert canary.take("Northwind Aerial can help. The code is CANARY-123.") == "Northwind Aerial can help."


def test_a_title_given_to_another_operator_is_dropped() -> None:
    b = SimpleNamespace(**{**A.__dict__, "id": "lst-9002", "title": "Gutter Looks", "operator": "Bluebird Drones",
                           "price_from_usd": 99.0})
    gate = _gate([A, b])
    text = ('"Gutter Looks" by Northwind Aerial, from $149 per project. Roof Checks by Drone (Northwind Aerial) '
            "is from $149 per project.")
    assert gate.take(text) == "Roof Checks by Drone (Northwind Aerial) is from $149 per project."
    assert [f.rule for f in gate.findings] == ["attribution"]


def test_a_sentence_cut_by_the_token_limit_is_dropped() -> None:
    assert _gate().take("Northwind Aerial can help. It is rated", cut=True) == "Northwind Aerial can help."
    assert _gate().take("Northwind Aerial can help. It is rated 4.8", cut=False) == (
        "Northwind Aerial can help. It is rated 4.8")


def test_a_list_number_goes_out_with_its_item_or_not_at_all() -> None:
    gate = _gate()
    out = gate.take("1. Northwind Aerial inspects roofs in Troy. 2. SkyHigh Roofs does it for $49. 3.", cut=True)
    assert out == "1. Northwind Aerial inspects roofs in Troy."
    streamed = _gate()
    assert streamed.feed("1. ") == []  # the number alone waits for its item
    assert streamed.feed("Northwind Aerial, from $149 per project. ") == [
        "1. Northwind Aerial, from $149 per project."]
    assert _gate().take("Northwind Aerial charges $149 per hour.") == ""  # the listing's unit is per project
