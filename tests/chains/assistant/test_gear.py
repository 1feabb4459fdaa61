"""Equipment a category never has: the request moves to the category that is that equipment, only when one of
its services shares a word with what was asked and the equipment was not asked as a service too."""

from __future__ import annotations

from dataclasses import dataclass

from chains.assistant.conversation import condense
from chains.assistant.gear import elsewhere, offered_features
from retrieval.places import load_gazetteer
from retrieval.query import QueryParser
from tests.conftest import make_settings

PARSER = QueryParser(load_gazetteer(make_settings().places_file))


@dataclass
class _Listing:
    category: str
    features: list[str]


OFFERED = offered_features([_Listing("agriculture", ["spray_system", "multispectral"]),
                            _Listing("thermal_imaging", ["thermal_camera", "night_ops"]),
                            _Listing("inspection", ["thermal_camera"])])


def test_each_category_offers_what_its_listings_have() -> None:
    assert OFFERED["agriculture"] == {"spray_system", "multispectral"} and "inspection" in OFFERED


def test_a_camera_the_category_never_has_moves_the_request_to_the_camera() -> None:
    request = condense(["a few hundred sheep grazing by Dryden", "want them found with infrared at dusk"], PARSER)
    assert request.interpreted is not None and request.interpreted.category == "agriculture"
    moved = elsewhere(request, OFFERED)
    assert moved is not None and moved.interpreted is not None
    it = moved.interpreted
    assert it.category == "thermal_imaging" and it.categories == ["thermal_imaging"]
    assert it.place is not None and it.place.name == "Dryden" and "thermal_camera" in it.features
    assert "livestock and wildlife counts" in it.text and it.text.startswith(request.interpreted.text)


def test_nothing_moves_without_a_shared_service_or_when_the_category_has_it() -> None:
    spraying = condense(["spray my soybeans near Milan", "with a thermal camera"], PARSER)
    assert spraying.interpreted is not None and spraying.interpreted.category == "agriculture"
    assert elsewhere(spraying, OFFERED) is None  # no thermal imaging service sprays
    roof = condense(["roof inspection in Troy with a thermal camera"], PARSER)
    assert elsewhere(roof, OFFERED) is None  # inspectors have the camera
