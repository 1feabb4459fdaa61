"""The description built from the input (chains/describe/fallback.py) reads as prose, not as a form: fixed
sentences around the operator's own values, the notes, a call to action; `backed` drops a refused option alone."""

from __future__ import annotations

import re

from chains.claims import check, load_claims
from chains.describe import area_places
from chains.describe.fallback import from_input
from chains.describe.schema import canonical, sources_of
from settings import ROOT

RULES = load_claims(ROOT / "data" / "claims.yaml")
PLACES = area_places(ROOT / "data" / "places.json")
FULL = {"title": "Thermal Roof Scans", "category": "mapping_surveying", "city": "Novi",
        "services": ["roof inspection", "site survey", "orthomosaic maps"], "features": ["thermal_camera", "rtk_gps"],
        "certifications": ["FAA Part 107"], "insured": True, "price_from_usd": 250, "price_unit": "project",
        "notes": "Reports within two days"}


def test_every_fact_in_prose_without_field_labels() -> None:
    text = from_input(canonical(FULL))
    assert text == (
        "Based in Novi, this drone mapping and surveying service offers orthomosaic maps, roof inspection and site "
        "survey. Options include rtk gps positioning and a thermal camera. Credentials include FAA Part 107. The "
        "operator carries liability insurance. Prices start at $250 per project. Reports within two days. Request "
        "a quote on SkyMarket.")
    assert re.search(r"\b(Services|Equipment|Certifications|Insured)\s*:", text) is None


def test_only_what_the_input_has() -> None:
    text = from_input(canonical({"title": "Roofs", "category": "inspection", "city": "Troy",
                                 "services": ["roof inspection"]}))
    assert text == "Based in Troy, this drone inspection service offers roof inspection. Request a quote on SkyMarket."
    assert "insurance" not in text and "$" not in text


def test_backed_drops_a_refused_option_and_keeps_the_others() -> None:
    inp = canonical({**FULL, "features": ["night_ops", "thermal_camera"], "certifications": []})
    sources = sources_of(inp, PLACES)
    text = from_input(inp, backed=lambda s: not check(s, sources, RULES))
    assert "Options include a thermal camera." in text and "night" not in text  # night ops needs a night waiver
    assert check(text, sources, RULES) == []
    assert "night operations" in from_input(inp)  # without `backed`, the caller's check removes the sentence
