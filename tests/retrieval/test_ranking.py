"""The ranking's reading of which services a query names (its words, or the service names the parser added
for a situation said): most of a service's distinctive words, within the categories the query points to."""

from __future__ import annotations

import pytest

from retrieval.vocab import named_services


@pytest.mark.parametrize(
    ("text", "categories", "named"),
    [
        ("roof inspection", ["inspection"], ["roof inspection"]),
        ("gutter check please", ["inspection"], ["gutter check"]),
        ("crop spraying soybeans", ["agriculture"], ["crop spraying"]),
        ("heat camera on the house", ["thermal_imaging"], []),  # "heat" alone: no building heat loss
        ("progress photos of our job site", ["construction"], []),  # "site" alone: no site planning
        ("attic heat loss", ["thermal_imaging"], ["building heat loss"]),
        ("roof inspection", ["thermal_imaging"], []),  # only the categories asked
    ],
)
def test_named_services(text: str, categories: list[str], named: list[str]) -> None:
    assert named_services(text, categories) == named
