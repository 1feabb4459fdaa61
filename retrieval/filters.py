"""The search filters: one typed model from the route's input through the chain, the engine and the index.

    InputFilters    the filters a caller may set on /search (`chains.search.SearchInput` is one, plus the
                    query, the limit and the point)
    SearchFilters   those plus the ones only a query's words set; `retrieval.query.Interpreted` is one, plus
                    the rest of what the parser read (text, place, features)

A filter is one field whose annotation carries its predicate:

    max_price: Annotated[float | None, AtMost("price_from_usd")] = Field(default=None, gt=0)

When the index loads, each predicate turns the listings into a numpy column (`columns`); a search keeps
the listings that pass every filter that is set (`mask`), one vector comparison each. A filter that is None
or an empty list is not set. `Hint(text)` lets the optional LLM step fill it too (retrieval.llm_hints). The
words that set a filter from a query are in the vocabulary (retrieval/vocab/phrases.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Self

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from retrieval.schema import Listing
from retrieval.vocab import Category

__all__ = [
    "AtMost",
    "Hint",
    "InputFilters",
    "OneOf",
    "Predicate",
    "Required",
    "SearchFilters",
    "Within",
    "accepts",
    "columns",
    "hints",
    "mask",
]


class Predicate:
    """How one filter selects listings: a column built once per index load, a comparison per search."""

    def column(self, listings: Sequence[Listing]) -> Any:
        """What the filter compares, for every listing (in index order); None when it needs no column."""
        return None

    def keep(self, column: Any, value: Any, dist: np.ndarray | None) -> np.ndarray | None:
        """Which listings pass for this value (None: all of them). `dist`: miles to the point, if any."""
        raise NotImplementedError


@dataclass(frozen=True)
class AtMost(Predicate):
    """The listing's `attr` is at most the value; a listing without one (None) does not pass."""

    attr: str

    def column(self, listings: Sequence[Listing]) -> np.ndarray:
        values = (getattr(x, self.attr) for x in listings)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def keep(self, column: np.ndarray, value: float, dist: np.ndarray | None) -> np.ndarray:
        return column <= value


@dataclass(frozen=True)
class Required(Predicate):
    """A yes/no attribute the customer requires when the value is True (False asks nothing)."""

    attr: str

    def column(self, listings: Sequence[Listing]) -> np.ndarray:
        return np.array([bool(getattr(x, self.attr)) for x in listings], dtype=bool)

    def keep(self, column: np.ndarray, value: bool, dist: np.ndarray | None) -> np.ndarray | None:
        return column if value else None


@dataclass(frozen=True)
class OneOf(Predicate):
    """The listing's `attr` is one of the values (codes compared: np.isin took milliseconds at 100k)."""

    attr: str

    def column(self, listings: Sequence[Listing]) -> tuple[np.ndarray, dict[Any, int]]:
        values = [getattr(x, self.attr) for x in listings]
        codes = {v: i for i, v in enumerate(sorted(set(values)))}
        return np.array([codes[v] for v in values], dtype=np.int32), codes

    def keep(self, column: tuple[np.ndarray, dict[Any, int]], value: list[Any], dist: np.ndarray | None) -> np.ndarray:
        col, codes = column
        known = [codes[v] for v in value if v in codes]
        if not known:
            return np.zeros(len(col), dtype=bool)
        return np.logical_or.reduce([col == c for c in known])


@dataclass(frozen=True)
class Within(Predicate):
    """The customer's own limit on the operator's distance from the point; nothing without a point."""

    def keep(self, column: None, value: float, dist: np.ndarray | None) -> np.ndarray | None:
        return None if dist is None else dist <= value


@dataclass(frozen=True)
class Hint:
    """The optional LLM step may set this filter too; `text` tells the model what goes there."""

    text: str


class InputFilters(BaseModel):
    """The filters a caller may set; each one left out (or null) is not applied, and overrides the query's."""

    radius_miles: Annotated[float | None, Within()] = Field(
        default=None, gt=0, le=200, description="farthest operator distance"
    )
    category: Category | None = None  # applied through `categories` (SearchFilters)
    max_price: Annotated[
        float | None,
        AtMost("price_from_usd"),
        Hint("the highest price in US dollars the customer accepts, as a number, or null"),
    ] = Field(default=None, gt=0, description="highest 'price from', US dollars")

    def given(self) -> dict[str, Any]:
        """The filters set here (not None, not an empty list), by name; lists are copies."""
        fields = type(self).model_fields
        out: dict[str, Any] = {}
        for name in _NAMES:
            if name in fields:
                value = getattr(self, name)
                if value is not None and value != []:
                    out[name] = list(value) if isinstance(value, list) else value
        return out


class SearchFilters(InputFilters):
    """Every filter of a search: the caller's, plus those only a query's words set."""

    categories: Annotated[list[Category], OneOf("category")] = Field(
        default_factory=list, description="every category the query points to"
    )
    insured: Annotated[bool | None, Required("insured")] = None

    def override(self, other: InputFilters) -> Self:
        """A copy where every filter `other` sets replaces this one's (explicit filters over the query's).

        An explicit `category` replaces the query's `categories` too. To merge the readings of two turns of
        a conversation, `earlier.override(later)` keeps what the later one did not say.

        Args:
            other: the filters that win.
        """
        update = other.given()
        if "category" in update and "categories" not in update:
            update["categories"] = [update["category"]]
        for name, value in self.__dict__.items():  # lists too are the copy's own (a shallow copy shares them)
            if isinstance(value, list) and name not in update:
                update[name] = list(value)
        return self.model_copy(update=update)


_NAMES: tuple[str, ...] = tuple(SearchFilters.model_fields)
_PREDICATES: dict[str, Predicate] = {
    name: p for name, info in SearchFilters.model_fields.items() for p in info.metadata if isinstance(p, Predicate)
}


def columns(listings: Sequence[Listing]) -> dict[str, Any]:
    """Every filter's column over the listings (in index order): built once per index load.

    Args:
        listings: the indexed listings.
    """
    return {name: p.column(listings) for name, p in _PREDICATES.items()}


def mask(filters: SearchFilters, cols: dict[str, Any], size: int, dist: np.ndarray | None) -> np.ndarray:
    """Which listings pass every filter that is set.

    Args:
        filters: the search's filters.
        cols: `columns(listings)` of the index.
        size: how many listings.
        dist: miles from the point to every listing, or None without a point.
    """
    ok = np.ones(size, dtype=bool)
    for name, p in _PREDICATES.items():
        value = getattr(filters, name)
        if value is None or value == []:
            continue
        keep = p.keep(cols[name], value, dist)
        if keep is not None:
            ok &= keep
    return ok


def accepts(name: str, value: Any) -> bool:
    """Whether filter `name` takes this value (its type and bounds): a parsed phrase must fit the model.

    Args:
        name: a SearchFilters field.
        value: the value read from a query.
    """
    try:
        SearchFilters.model_validate({name: value})
    except ValidationError:
        return False
    return True


def hints() -> dict[str, str]:
    """The filters the LLM step may set, with what the model is told about each."""
    return {
        name: h.text for name, info in SearchFilters.model_fields.items() for h in info.metadata if isinstance(h, Hint)
    }
