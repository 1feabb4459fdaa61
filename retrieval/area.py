"""The service area: whether a point lies in it, and what to say when a search falls outside it."""

from __future__ import annotations

from retrieval.places import Gazetteer, haversine_miles

__all__ = ["ServiceArea"]

_SLACK_MILES = 15.0  # a point this close to one of our places counts as inside the area


class ServiceArea:
    """The municipalities of one gazetteer, as an area.

    Args:
        gazetteer: the places served.
    """

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer

    def contains(self, lat: float, lon: float) -> bool:
        """Whether (lat, lon) lies within a few miles of one of the places served."""
        return any(haversine_miles(lat, lon, p.lat, p.lon) <= _SLACK_MILES for p in self.gazetteer.municipalities())

    def outside_notice(self, where: str) -> str:
        """The polite answer to a search for `where`, outside the area."""
        area = self.gazetteer.service_area
        counties = ", ".join(area[:-1]) + " and " + area[-1]
        return (
            f"Sorry, SkyMarket serves the Detroit Metro area only ({counties} counties), so we have no drone "
            f"operators in {where} yet. Try a city in the area, for example Detroit, Troy or Ann Arbor."
        )
