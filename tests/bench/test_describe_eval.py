"""bench/describe_eval.py: the metric functions (coverage, form, nonsense, score) and the category split."""

from __future__ import annotations

from typing import Any

from bench.describe_eval import DEV, HELD_OUT, coverage, form, inputs, nonsense, score

INP: dict[str, Any] = {"title": "Roof Checks", "category": "inspection", "city": "Troy",
                       "services": ["roof inspection", "gutter check", "chimney inspection"], "certifications": [],
                       "features": ["thermal_camera"], "insured": True, "price_from_usd": 149.0,
                       "price_unit": "project"}
GOOD = ("Need a roof inspection in Troy? We check gutters and roofs from the air with a thermal camera. "
        "The operator carries insurance. Prices start at $149 per project. Request a quote on SkyMarket.")


def test_coverage_counts_city_two_services_price_with_unit_and_insurance() -> None:
    assert coverage(GOOD, INP) == {"city": True, "services": True, "price": True, "insured": True}
    partial = coverage("Roof inspections in Detroit from $149.", INP)
    assert partial == {"city": False, "services": False, "price": False, "insured": False}
    assert "price" not in coverage(GOOD, {**INP, "price_from_usd": None})  # only what the input gives


def test_form_flags_labels_echo_repeats_length_and_a_missing_call_to_action() -> None:
    assert all(form(GOOD, INP).values())
    assert form("Services: roof inspection. Book on SkyMarket.", INP)["no_labels"] is False
    assert form("Reply with the description only. Book now.", INP)["no_echo"] is False
    assert form("We fly. We fly. Book now.", INP)["no_repeat"] is False
    assert form("word " * 121 + "Book now.", INP)["length"] is False
    assert form("We inspect roofs in Troy.", INP)["call_to_action"] is False


def test_nonsense_is_the_share_of_words_from_neither_the_input_nor_the_trade() -> None:
    assert nonsense(GOOD, INP) == 1 / 19  # "carries": neither the input's nor the trade's word
    assert nonsense("", INP) == 0.0
    # "reputable", "companies", "glory" are in neither; "roof" is the input's, "drone" the trade's
    assert nonsense("Reputable companies roof drone glory.", INP) == 3 / 5


def test_score_grounded_needs_text_and_no_findings() -> None:
    assert score(GOOD, INP, findings=0)["grounded"] is True
    assert score(GOOD, INP, findings=1)["grounded"] is False
    assert score("", INP, findings=0) | {"nonsense": None} == {
        "grounded": False, "coverage": False, "coverage_parts": coverage("", INP), "form": False,
        "form_parts": form("", INP), "nonsense": None}


def test_the_split_is_by_category_and_disjoint() -> None:
    assert not set(DEV) & set(HELD_OUT) and len(DEV) + len(HELD_OUT) == 11
    held = inputs(HELD_OUT, 2)
    assert len(held) == 2 * len(HELD_OUT) and {i["category"] for _, i in held} == set(HELD_OUT)
    assert all(set(i) >= {"title", "city", "services"} for _, i in held)
