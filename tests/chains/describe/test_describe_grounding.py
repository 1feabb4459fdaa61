"""Grounded claims: invented certifications, insurance, equipment, prices and FAA-restricted operations never
reach the output (removed or regenerated) and `flags` say why; backed claims stay; the rules file is data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import Runnable

from chains.claims import check, load_claims, split_sentences, strip, trim_words
from chains.describe import area_places
from chains.describe.fallback import from_input
from chains.describe.schema import about, canonical, sources_of
from settings import ROOT, Settings
from tests.fake_openai import FakeOpenAI, Reply

PRIMARY = "gpt-4o-mini"
RULES = load_claims(ROOT / "data" / "claims.yaml")
PLACES = area_places(ROOT / "data" / "places.json")

INVENTED = (
    "Looking for a roof inspection in Troy? Our FAA Part 107 certified, night-certified pilots are fully insured "
    "and licensed. We use thermal cameras and LiDAR to find heat loss. We fly at night, over crowds and near DTW, "
    "even beyond visual line of sight. Prices start at $99 per roof, and your first inspection is free. "
    "With 15 years of experience we are the best drone company in Michigan. "
    "We inspect roofs and gutters across Oakland County and send clear photos your roofer can use. "
    "Request a quote on SkyMarket today."
)
BANNED = ["107", "certified", "licensed", "insured", "thermal", "lidar", "night", "crowd", "dtw", "line of sight",
          "$99", "free", "15 years", "best"]


def _check(text: str, **facts: Any) -> set[str]:
    base = {"title": "Aerial work", "category": "aerial_photography", "city": "Novi", "services": ["photos"]}
    return {f.rule for f in check(text, sources_of(canonical({**base, **facts}), PLACES), RULES)}


def test_invented_claims_never_reach_the_output(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(INVENTED))
    out = build_describe(describe_settings).invoke(listing)
    text = out.description.lower()
    assert not [w for w in BANNED if w in text], out.description
    assert "troy" in text and "skymarket" in text  # the backed sentences stay
    flagged = {f.split(":")[0].removeprefix("removed ") for f in out.flags}
    assert {"cert_part107", "cert_generic", "cert_night", "insurance", "feat_thermal", "feat_lidar", "ops_night",
            "ops_over_people", "ops_airspace", "ops_bvlos", "price", "offer", "experience", "superlative"} <= flagged
    assert any("insured is false" in f for f in out.flags)
    assert out.grounded is True and out.cached is False and out.model == PRIMARY
    assert fake_openai.count(PRIMARY) == 1  # enough was left: no second call


def test_too_little_left_regenerates_with_the_problems(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    clean = ("Need your roof and gutters checked in Troy? We fly over your home and send clear photos the next "
             "business day, so you know what to fix. Request a quote on SkyMarket.")
    invented = Reply("We are FAA Part 107 certified and fully insured. We fly at night.")
    fake_openai.script(PRIMARY, invented, Reply(clean))
    out = build_describe(describe_settings).invoke(listing)
    assert out.description == clean and out.grounded is True
    assert any(f.startswith("regenerated: draft 1") for f in out.flags)
    retry = [c for c in fake_openai.calls if c.model == PRIMARY][-1].body["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert "Part 107" in retry[2]["content"] and "not listed" in retry[3]["content"]


def test_still_ungrounded_after_the_last_attempt_the_input_is_the_description(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply("We are FAA Part 107 certified and fully insured. We fly at night."))
    out = build_describe(describe_settings).invoke(listing)
    assert fake_openai.count(PRIMARY) == describe_settings.describe_max_attempts
    assert any(f.startswith("removed insurance") for f in out.flags)  # reported, not hidden
    assert any(f.startswith("replaced:") for f in out.flags)
    assert out.description == strip(from_input(canonical(listing)), [])  # the operator's facts, as prose
    assert out.description.startswith(f"Based in {listing['city']}, this drone inspection service offers")
    assert "Services:" not in out.description and out.description.endswith("Request a quote on SkyMarket.")
    assert check(out.description, sources_of(canonical(listing), PLACES), RULES) == [] and out.grounded is True


def test_the_input_built_description_drops_a_note_the_rules_reject() -> None:
    inp = canonical({"title": "Night Roof Scans", "category": "inspection", "city": "Novi",
                     "services": ["roof inspection"], "insured": True, "price_from_usd": 99.5, "price_unit": "hour",
                     "notes": "We fly at night over crowds. Reports in two days."})
    built = from_input(inp)
    assert "carries liability insurance." in built and "Prices start at $99.50 per hour." in built
    kept = strip(built, check(built, sources_of(inp, PLACES), RULES))
    assert "crowds" not in kept and "Reports in two days." in kept


def test_backed_claims_are_kept(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    text = ("Our FAA Part 107 certified pilots are fully insured and fly at night when your roof needs it. "
            "Thermal imaging finds heat loss. Inspections start at $149 per project. Book through SkyMarket.")
    fake_openai.always(PRIMARY, Reply(text))
    facts = {**listing, "certifications": ["FAA Part 107", "Night operations (Part 107 night training)"],
             "insured": True, "features": ["thermal_camera"], "price_from_usd": 149, "price_unit": "project"}
    out = build_describe(describe_settings).invoke(facts)
    assert out.description == text and out.flags == [] and out.grounded is True


@pytest.mark.parametrize(
    ("sentence", "rule", "backing"),
    [
        ("We film your wedding at night.", "ops_night", ["Night operations (Part 107 night training)"]),
        ("Shots above the crowd at the Art Fair.", "ops_over_people", ["Operations over people (Category 2)"]),
        ("Deliveries beyond visual line of sight.", "ops_bvlos", ["Beyond visual line of sight (BVLOS) waiver"]),
        ("We fly near Detroit Metro Airport.", "ops_airspace", ["LAANC airspace authorization"]),
        ("We fly in controlled airspace around DTW.", "ops_airspace", ["Airspace authorization for DTW Class B"]),
        ("Crop spraying for corn and soybeans.", "ops_spraying", ["FAA Part 137 agricultural aircraft operator"]),
        ("A Level II thermographer reads every scan.", "cert_thermography", ["Level II Thermographer"]),
    ],
)
def test_restricted_operations_need_the_matching_authorisation(sentence: str, rule: str, backing: list[str]) -> None:
    assert rule in _check(sentence, certifications=["FAA Part 107"])
    assert rule not in _check(sentence, certifications=["FAA Part 107", *backing])


def test_detroit_metro_the_region_is_not_the_airport() -> None:
    assert _check("Serving all of Detroit Metro from Novi. Golden-hour shots at sunset.") == set()


def test_prices_must_be_the_given_price() -> None:
    assert _check("From $250 per hour.", price_from_usd=250, price_unit="hour") == set()
    assert _check("From $200 per hour.", price_from_usd=250, price_unit="hour") == {"price"}
    assert _check("From 250 dollars.") == {"price"}
    assert _check("A $40 travel fee applies past 20 miles.", notes="$40 travel fee past 20 miles") == set()


def test_common_phrases_are_not_claims() -> None:
    text = "Feel free to ask questions. We make booking hassle-free and shoot in 4 seasons. Call us today."
    assert _check(text) == set()


def test_sentences_split_without_breaking_abbreviations() -> None:
    text = "We serve St. Clair Shores and Mt. Clemens. Fully insured! Call now?\nBook on SkyMarket"
    assert split_sentences(text) == ["We serve St. Clair Shores and Mt. Clemens.", "Fully insured!", "Call now?",
                                     "Book on SkyMarket"]
    findings = check(text, sources_of(canonical({"title": "t", "category": "delivery", "city": "Warren",
                                                "services": ["x"]}), PLACES), RULES)
    assert strip(text, findings) == "We serve St. Clair Shores and Mt. Clemens. Call now?\nBook on SkyMarket"


def test_trim_keeps_whole_sentences() -> None:
    text = "One two three four. Five six seven eight. Nine ten."
    assert trim_words(text, 8) == ("One two three four. Five six seven eight.", True)
    assert trim_words(text, 100) == (text, False)
    assert trim_words("one two three four five", 3) == ("one two three…", True)


def test_the_rules_file_is_validated(tmp_path: Path) -> None:
    from errors import ConfigError

    bad = tmp_path / "claims.yaml"
    bad.write_text("rules:\n  - id: x\n    reason: y\n    match: ['(']\n    when: insured\n")
    with pytest.raises(ConfigError, match=r"rule 'x'.*bad regex"):
        load_claims(bad)


def test_a_proper_name_must_come_from_the_input_or_the_area() -> None:
    # The local model once wrote "The SkyMarket Truck is a premier drone service": an invented business.
    assert "name_unknown" in _check("Book The SkyMarket Truck for your next inspection.")
    assert "operator_invented" in _check("Ask for Blue Heron Aerials when you call.")
    assert "name_unknown" in _check("Our lead pilot, Marcus, trained in Ohio.")
    assert _check("Serving Royal Oak, Oakland County and the rest of Detroit Metro from Novi.") == set()
    assert _check("We fly the Mavic 3T on Saturday mornings.", notes="We fly a DJI Mavic 3T.") == set()


def test_a_text_about_something_else_is_no_description(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    # Both were written by the embedded model for a Troy roof listing: no false claim, and no description.
    for reply in ("Please note that we can't find the image for this product in our database, as it is a product "
                  "of an organization not licensed to sell the device.", "Reply with the description only."):
        assert not about(reply, canonical(listing))
    assert about("Your roof, inspected from the air.", canonical(listing))  # "inspected" is the service's word
    fake_openai.always(PRIMARY, Reply("Reply with the description only. Nothing else matters here, friend."))
    out = build_describe(describe_settings).invoke(listing)
    assert any(f.startswith("removed unrelated") for f in out.flags)
    assert out.description.startswith("Based in Troy") and "Reply with" not in out.description
