"""The shipped data as data: places.json covers the service area; listings.jsonl (the source of truth, edited
by hand or regenerated with `python -m retrieval.synth`) keeps its schema and invariants, every category in
every county, distinct descriptions; a broken rule is reported by line, listing id and field."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from retrieval.places import Gazetteer, haversine_miles, load_gazetteer
from retrieval.schema import CATEGORIES
from tests.conftest import ROOT
from tests.retrieval.listing_rules import listing_problems, report

COUNTIES = {"Wayne", "Oakland", "Macomb", "Washtenaw", "Livingston", "Monroe", "St. Clair", "Lapeer"}


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer(ROOT / "data" / "places.json")


def test_places_cover_the_eight_counties(gaz: Gazetteer) -> None:
    assert set(gaz.service_area) == COUNTIES
    assert {p.county for p in gaz.places if p.is_county} == COUNTIES
    assert len(gaz.municipalities()) >= 60
    for name in ["Detroit", "Dearborn", "Livonia", "Troy", "Southfield", "Novi", "Farmington Hills", "Warren",
                 "Sterling Heights", "Ann Arbor", "Ypsilanti", "Canton", "Brighton", "Howell", "Monroe", "Port Huron",
                 "Lapeer", "Pontiac", "Royal Oak", "Rochester Hills"]:  # fmt: skip
        assert gaz.get(name) is not None, name
    for p in gaz.places:  # south-east Michigan
        assert 41.7 < p.lat < 43.3 and -84.2 < p.lon < -82.3, p.name
    detroit, ann_arbor = gaz.get("Detroit"), gaz.get("Ann Arbor")
    assert detroit and ann_arbor
    assert 34 < haversine_miles(detroit.lat, detroit.lon, ann_arbor.lat, ann_arbor.lon) < 40
    assert {"Chicago", "Toledo", "Grand Rapids", "Lansing", "Flint"} <= {o.name for o in gaz.outside}


def test_every_listing_keeps_the_rules(all_rows: list[dict[str, Any]], gaz: Gazetteer) -> None:
    problems = listing_problems(all_rows, gaz)
    assert not problems, report(problems)


def test_the_file_covers_every_category_in_every_county(all_rows: list[dict[str, Any]]) -> None:
    assert len(all_rows) >= 600
    missing = sorted({(c, k) for c in COUNTIES for k in CATEGORIES} - {(r["county"], r["category"]) for r in all_rows})
    assert not missing, f"no listing for (county, category): {missing}"


def test_descriptions_are_distinct(all_rows: list[dict[str, Any]]) -> None:
    ids: dict[str, list[str]] = defaultdict(list)
    for r in all_rows:
        ids[r["description"]].append(r["id"])
    assert not [v for v in ids.values() if len(v) > 1], [v for v in ids.values() if len(v) > 1]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"price_from_usd": "cheap"}, ["line 2 (lst-0002)", "price_from_usd", "valid number"]),
        ({"features": ["night_ops", "jetpack"]}, ["line 2 (lst-0002)", "features", "jetpack", "vocabulary"]),
        ({"lat": 44.9}, ["line 2 (lst-0002)", "lat/lon", "miles from"]),
        ({"city": "Chicago"}, ["line 2 (lst-0002)", "city", "Chicago"]),
        ({"description": "Too short."}, ["line 2 (lst-0002)", "description", "2 words"]),
        ({"id": "lst-0001"}, ["line 2 (lst-0001)", "id", "already on line 1"]),
        ({"colour": "red"}, ["line 2 (lst-0002)", "colour", "Extra inputs"]),
    ],
)
def test_a_broken_rule_names_the_line_the_listing_and_the_field(
    all_rows: list[dict[str, Any]], gaz: Gazetteer, change: dict[str, Any], words: list[str]
) -> None:
    rows = [json.loads(json.dumps(r)) for r in all_rows[:3]]
    rows[1].update(change)
    problems = listing_problems(rows, gaz)
    assert len(problems) == 1, problems
    for w in words:
        assert w in problems[0], problems[0]


def test_implied_features_are_required(all_rows: list[dict[str, Any]], gaz: Gazetteer) -> None:
    row = next(r for r in all_rows if "crop spraying" in r["services"])
    broken = dict(row, features=[f for f in row["features"] if f != "spray_system"])
    assert listing_problems([broken], gaz) == [f"line 1 ({row['id']}): features: lacks ['spray_system'], implied by "
                                               "its category or services"]  # fmt: skip


def test_no_operator_repeats_its_company_suffix(all_rows: list[dict[str, Any]]) -> None:
    """Customers read every operator in the answers' cards: "Red Barn Drone Co. Co." was in seven of them."""
    for suffix in ("Co.", "Inc.", "LLC", "Group"):
        assert not [r["id"] for r in all_rows if r["operator"].endswith(f"{suffix} {suffix}")], suffix
