"""The `/assistant` answer: the text, the listings it cites (as /search returns them), and the search it ran."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chains.search import SearchResult
from retrieval.query import Interpreted

__all__ = ["AssistantOutput"]


class AssistantOutput(BaseModel):
    """One answer of the assistant.

    Every price, operator, title and id a customer reads is in `listings`, copied from the data; `text` makes
    no claim those listings (or the request itself) do not back.
    """

    text: str = Field(description="the answer; its claims are checked against the cited listings")
    listings: list[SearchResult] = Field(
        default_factory=list, description="the cited listings, best first, with every field /search returns"
    )
    in_service_area: bool | None = Field(
        default=None, description="whether the place asked about is served; null when no place is involved"
    )
    notice: str | None = Field(default=None, description="the search's notice (out of the area, nothing found)")
    interpreted: Interpreted | None = Field(
        default=None, description="the search the conversation asked for; null when nothing was searched"
    )
    flags: list[str] = Field(default_factory=list, description="what the checks changed, and why")
