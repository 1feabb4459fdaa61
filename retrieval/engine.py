"""The search itself: parse -> filters -> BM25 + vector candidates -> reciprocal rank fusion -> geo/feature rerank.

A listing serves a place when the place lies within its `service_radius_miles` (or, for a county, when the
listing is in that county); nearer listings rank higher. Outside the service area the search says so and
returns nothing rather than pretending.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from retrieval.index import Filters, ListingIndex
from retrieval.places import Gazetteer, haversine_miles, load_gazetteer
from retrieval.query import Interpreted, QueryParser
from retrieval.schema import Listing
from settings import Settings

__all__ = ["Hit", "Outcome", "SearchEngine", "build_search_engine"]

_RRF_K = 60
_AREA_SLACK_MILES = 15.0  # a point this close to one of our places counts as inside the area
# Weights of the final score: text relevance (fused ranks), requested features, nearness, reputation, and
# being in the query's main category when it points to several. With the fusion weights (BM25 1.0, vector 0.5)
# they were chosen on bench/search_queries.yaml (see BENCHMARKS.md); there is no held-out set yet.
_W_TEXT, _W_FEAT, _W_GEO, _W_QUALITY, _W_CAT = 0.55, 0.2, 0.1, 0.03, 0.05


@dataclass(frozen=True)
class Hit:
    listing: Listing
    score: float
    distance_miles: float | None


@dataclass
class Outcome:
    hits: list[Hit]
    in_service_area: bool
    notice: str | None
    interpreted: Interpreted
    timings: dict[str, float] = field(default_factory=dict)


class SearchEngine:
    """Everything a search needs, built lazily: nothing connects until the first search or `warm()`.

    Args:
        settings: the service settings (Chroma location, files).
        embeddings: query embeddings (must be those the index was built with).
        gazetteer: places; read from `settings.places_file` when None.
        store: a ready vector store (tests); built from settings when None.
        candidates: how many candidates each retriever contributes before fusion (the vector side asks
            Chroma for twice as many, unfiltered, and keeps those that pass the filters).
        lexical_weight: weight of the BM25 ranking in the fusion.
        semantic_weight: weight of the vector ranking in the fusion.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        embeddings: Embeddings,
        gazetteer: Gazetteer | None = None,
        store: Any = None,
        candidates: int = 50,
        lexical_weight: float = 1.0,
        semantic_weight: float = 0.5,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.gazetteer = gazetteer or load_gazetteer(settings.places_file)
        self.parser = QueryParser(self.gazetteer)
        self.candidates = candidates
        self.lexical_weight = lexical_weight
        self.semantic_weight = semantic_weight
        self._store = store
        self._index: ListingIndex | None = None
        self._lock = threading.Lock()

    @property
    def index(self) -> ListingIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    from retrieval.store import build_vectorstore

                    store = self._store or build_vectorstore(settings=self.settings, embeddings=self.embeddings)
                    index = ListingIndex(store=store)
                    index.reload()
                    self._index = index
        return self._index

    def warm(self) -> None:
        """Loads the index and the embedding model now (FastAPI lifespan), not on the first request."""
        _ = self.index
        self.embeddings.embed_query("warm up")

    def _in_area(self, lat: float, lon: float) -> bool:
        return any(
            haversine_miles(lat, lon, p.lat, p.lon) <= _AREA_SLACK_MILES for p in self.gazetteer.municipalities()
        )

    def _outside_notice(self, where: str) -> str:
        counties = ", ".join(self.gazetteer.service_area[:-1]) + " and " + self.gazetteer.service_area[-1]
        return (
            f"Sorry, SkyMarket serves the Detroit Metro area only ({counties} counties), so we have no drone "
            f"operators in {where} yet. Try a city in the area, for example Detroit, Troy or Ann Arbor."
        )

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        lat: float | None = None,
        lon: float | None = None,
        radius_miles: float | None = None,
        category: str | None = None,
        max_price: float | None = None,
        interpreted: Interpreted | None = None,
    ) -> Outcome:
        """Runs one search. Explicit arguments override what the parser read from the query.

        Args:
            query: the customer's text.
            limit: how many results at most.
            lat: latitude where the service is needed (with lon).
            lon: longitude.
            radius_miles: the farthest an operator may be from the point.
            category: only this category.
            max_price: only listings priced from at most this.
            interpreted: an interpretation made earlier (e.g. the parser plus an LLM step).
        """
        it = interpreted or self.parser.parse(query)
        it = it.model_copy(deep=True)
        if category is not None:
            it.category, it.categories = category, [category]
        if max_price is not None:
            it.max_price = max_price
        if radius_miles is not None:
            it.radius_miles = radius_miles
        point, county = None, None
        if lat is not None and lon is not None:
            point = (lat, lon)
            if not self._in_area(lat, lon):
                return Outcome([], False, self._outside_notice(f"that location ({lat:.3f}, {lon:.3f})"), it)
        elif it.place is not None:
            point = (it.place.lat, it.place.lon)
            county = it.place.county if it.place.kind == "county" else None
        elif it.outside_place is not None:
            return Outcome([], False, self._outside_notice(it.outside_place.name), it)
        index = self.index
        flt = Filters(tuple(it.categories), it.max_price, point, county, it.radius_miles, it.insured)
        ok, dist = index.mask(flt)
        notice = f"Showing results for {it.place.name}." if it.fuzzy_place and it.place else None
        if not ok.any():
            return Outcome([], True, "No listing matches all of that; try a wider area or a higher price.", it)
        lexical = index.bm25_top(it.text, ok, self.candidates)
        vector = self.embeddings.embed_query(it.text)
        semantic = [i for i in index.vector_top(vector, 2 * self.candidates) if ok[i]][: self.candidates]
        fused: dict[int, float] = {}
        for ranked, weight in ((lexical, self.lexical_weight), (semantic, self.semantic_weight)):
            for r, i in enumerate(ranked):
                fused[i] = fused.get(i, 0.0) + weight / (_RRF_K + r + 1)
        if len(fused) < limit:  # few text matches: fill with the nearest (or best rated) listings that qualify
            order = np.argsort(dist) if dist is not None else np.argsort(-index.quality)
            for i in order[ok[order]][: limit * 2]:
                fused.setdefault(int(i), 0.0)
        hits = [self._hit(index, i, rrf, it, dist) for i, rrf in fused.items()]
        hits.sort(key=lambda h: (-h.score, h.distance_miles or 0.0, h.listing.id))
        return Outcome(hits[:limit], True, notice, it)

    def _hit(self, index: ListingIndex, i: int, rrf: float, it: Interpreted, dist: np.ndarray | None) -> Hit:
        listing = index.listings[i]
        best = (self.lexical_weight + self.semantic_weight) / (_RRF_K + 1)
        score = _W_TEXT * rrf / best + _W_QUALITY * float(index.quality[i])
        if it.features:
            score += _W_FEAT * len(set(it.features) & set(listing.features)) / len(it.features)
        if len(it.categories) > 1 and listing.category == it.category:
            score += _W_CAT
        miles = None
        if dist is not None:
            miles = float(dist[i])
            near = max(0.0, 1.0 - miles / max(float(index.radius[i]), 1.0))
            score += _W_GEO * (
                1.0
                if it.place is not None and it.place.county == listing.county and it.place.kind == "county"
                else near
            )
        return Hit(listing, round(score, 4), None if miles is None else round(miles, 1))


def build_search_engine(*, settings: Settings, embeddings: Embeddings | None = None, store: Any = None) -> SearchEngine:
    """The search engine for the service; lazy (call `warm()` in the lifespan).

    Args:
        settings: the service settings.
        embeddings: the embeddings; `build_embeddings(settings=...)` when None.
        store: an existing vector store (tests); built from settings on first use when None.
    """
    if embeddings is None:
        from retrieval.embeddings import build_embeddings

        embeddings = build_embeddings(settings=settings)
    return SearchEngine(settings=settings, embeddings=embeddings, store=store)
