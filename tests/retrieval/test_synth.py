"""The listings generator (`python -m retrieval.synth`), a tool that can regenerate data/listings.jsonl: what it
writes keeps the rules of a listings file, covers the area as people live in it, varies its text, is the same
for the same seed, and it refuses fragments that name a service or feature the vocabulary does not know."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrieval.places import Gazetteer, load_gazetteer
from retrieval.synth import generate_listings
from retrieval.synth.generate import FRAGMENTS
from tests.conftest import ROOT
from tests.retrieval.listing_rules import listing_problems, report


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer(ROOT / "data" / "places.json")


@pytest.fixture(scope="module")
def rows(gaz: Gazetteer) -> list[dict[str, Any]]:
    return generate_listings(gazetteer=gaz, count=640, seed=11)


def test_what_it_writes_keeps_the_rules(rows: list[dict[str, Any]], gaz: Gazetteer) -> None:
    problems = listing_problems(rows, gaz)
    assert not problems, report(problems)


def test_listings_follow_population_and_text_varies(rows: list[dict[str, Any]]) -> None:
    per_county = Counter(r["county"] for r in rows)
    assert per_county["Wayne"] > per_county["Oakland"] > per_county["Washtenaw"] > per_county["Lapeer"]
    assert len({r["description"] for r in rows}) == len(rows)
    openings = Counter(" ".join(r["description"].split()[:6]) for r in rows)
    assert openings.most_common(1)[0][1] < len(rows) * 0.05  # no single stock opening


def test_the_same_seed_gives_the_same_listings(gaz: Gazetteer, rows: list[dict[str, Any]]) -> None:
    assert generate_listings(gazetteer=gaz, count=640, seed=11) == rows
    assert generate_listings(gazetteer=gaz, count=640, seed=12) != rows


def test_fragments_out_of_step_with_the_vocabulary_are_refused(gaz: Gazetteer, tmp_path: Path) -> None:
    f = yaml.safe_load(FRAGMENTS.read_text(encoding="utf-8"))
    f["categories"]["delivery"]["services"]["drone light shows"] = ["We light up the sky."]
    f["categories"]["training"]["features"].append("jetpack")
    path = tmp_path / "fragments.yaml"
    path.write_text(yaml.safe_dump(f), encoding="utf-8")
    with pytest.raises(ValueError, match=r"delivery: services differ: \['drone light shows'\].*training: unknown"):
        generate_listings(gazetteer=gaz, count=100, seed=1, fragments=path)


def test_an_operator_never_repeats_its_suffix(rows: list[dict[str, Any]]) -> None:
    assert not [r["operator"] for r in rows if r["operator"].endswith("Co. Co.")]
