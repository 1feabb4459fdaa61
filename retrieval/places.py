"""The service area's places (`data/places.json`): municipalities, counties and well-known outside cities."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Gazetteer", "OutsidePlace", "Place", "haversine_miles", "load_gazetteer"]

_EARTH_RADIUS_MILES = 3958.8


@dataclass(frozen=True)
class Place:
    """A municipality or a county inside the service area."""

    name: str
    kind: str  # city | township | village | community | county
    county: str
    lat: float
    lon: float
    population: int | None = None
    aliases: tuple[str, ...] = ()

    @property
    def is_county(self) -> bool:
        return self.kind == "county"


@dataclass(frozen=True)
class OutsidePlace:
    """A well-known place outside the service area, recognised so we can say so honestly."""

    name: str
    region: str
    lat: float
    lon: float
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gazetteer:
    """Every place the query parser knows, loaded once from `places.json`."""

    service_area: tuple[str, ...]
    places: tuple[Place, ...]
    outside: tuple[OutsidePlace, ...] = ()
    by_name: dict[str, Place] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name.lower(): p for p in self.places})

    def get(self, name: str) -> Place | None:
        return self.by_name.get(name.lower())

    def county(self, county: str) -> Place | None:
        return next((p for p in self.places if p.is_county and p.county == county), None)

    def municipalities(self, county: str | None = None) -> list[Place]:
        return [p for p in self.places if not p.is_county and (county is None or p.county == county)]


def load_gazetteer(path: Path) -> Gazetteer:
    """Reads `places.json`.

    Args:
        path: the file, normally `settings.places_file`.
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    places = tuple(
        Place(
            name=p["name"],
            kind=p["kind"],
            county=p["county"],
            lat=float(p["lat"]),
            lon=float(p["lon"]),
            population=p.get("population"),
            aliases=tuple(p.get("aliases", ())),
        )
        for p in raw["places"]
    )
    outside = tuple(
        OutsidePlace(
            name=o["name"],
            region=o["region"],
            lat=float(o["lat"]),
            lon=float(o["lon"]),
            aliases=tuple(o.get("aliases", ())),
        )
        for o in raw.get("outside", [])
    )
    return Gazetteer(service_area=tuple(raw["service_area"]), places=places, outside=outside)


def haversine_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))
