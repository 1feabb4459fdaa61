"""The service area: whether a point lies in it, and what to say when a search falls outside it."""

from __future__ import annotations

from retrieval.places import Gazetteer, haversine_miles

__all__ = ["ServiceArea"]

_SLACK_MILES = 15.0  # a point this close to one of our places counts as inside the area
_NEAR_MILES = 60.0  # an outside place this close to the area is told its nearest towns (Lansing, Toledo, Flint)
_ABROAD = (", Ontario", ", Canada")  # Windsor and Sarnia are close, but a US operator does not fly there


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

    def outside_notice(self, where: str, lat: float | None = None, lon: float | None = None) -> str:
        """The polite answer to a search for `where`, outside the area; with its coordinates, and when the area is
        within a drive (`_NEAR_MILES`), the towns of the area nearest to it ("the closest part of the area to
        Lansing is around Fowlerville and Howell, about 30 miles away"), else a few well-known ones."""
        area = self.gazetteer.service_area
        counties = ", ".join(area[:-1]) + " and " + area[-1]
        said = (f"Sorry, SkyMarket serves the Detroit Metro area only ({counties} counties), so we have no drone "
                f"operators in {where} yet.")
        if lat is not None and lon is not None and not where.endswith(_ABROAD):  # across the border: no drive
            near = sorted((haversine_miles(lat, lon, p.lat, p.lon), p.name) for p in self.gazetteer.municipalities())
            if near and near[0][0] <= _NEAR_MILES:
                towns = " and ".join(name for _, name in near[:2])
                return (f"{said} The closest part of the area to {where} is around {towns}, about "
                        f"{max(1, round(near[0][0]))} miles away; search there if that works for you.")
        return f"{said} Try a city in the area, for example Detroit, Troy or Ann Arbor."
