"""The search itself: parse -> filters -> BM25 + vector candidates -> reciprocal rank fusion -> geo/feature rerank.

A listing serves a place when the place lies within its `service_radius_miles` (or, for a county, when the
listing is in that county); nearer listings rank higher. Outside the service area the search says so and
returns nothing rather than pretending. The ranking itself is `retrieval.ranking`.

Explicit filters (`retrieval.filters.InputFilters`: the route's input is one) override what the parser read.
Repeated searches are answered from memory (`SEARCH_CACHE_SIZE`, `SEARCH_VECTOR_CACHE_SIZE`): whole answers by
the parsed query after explicit filters, the point and the limit; vector candidates by the searched words.
Both are keyed by the index version, so nothing from before a reload (after an ingest) is served after it.
Query embeddings asked for at the same time run as one batch in one worker (`retrieval.batching`).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.embeddings import Embeddings

from retrieval.area import ServiceArea
from retrieval.batching import Batcher
from retrieval.embeddings import embed_queries
from retrieval.filters import InputFilters
from retrieval.index import ListingIndex
from retrieval.lru import LRUCache
from retrieval.places import Gazetteer, load_gazetteer
from retrieval.query import Interpreted, QueryParser
from retrieval.ranking import Hit, Outcome, Weights, rank
from settings import Settings

__all__ = ["Hit", "Outcome", "SearchEngine", "build_search_engine"]

# (index version, parsed query after explicit filters, point, limit): everything a search's answer depends on
_Key = tuple[int, str, tuple[float, float] | None, int]


@dataclass(frozen=True)
class _Plan:
    """A search past the area checks and the answer cache: it needs its vector candidates, then ranking."""

    key: _Key
    it: Interpreted
    point: tuple[float, float] | None
    county: str | None  # the point is this county: its own listings serve it too
    limit: int

    @property
    def text_key(self) -> tuple[int, str]:
        """The vector cache's key: the index version and the text searched."""
        return (self.key[0], self.it.text)


class SearchEngine:
    """Everything a search needs, built lazily: nothing connects until the first search or `warm()`.

    Args:
        settings: the service settings (Chroma location, files, cache sizes, embedding batch).
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
        self.area = ServiceArea(self.gazetteer)
        self.parser = QueryParser(self.gazetteer, cache_size=settings.search_cache_size)
        self.weights = Weights(candidates, lexical_weight, semantic_weight)
        self.result_cache: LRUCache[_Key, Outcome] = LRUCache(settings.search_cache_size)
        self.vector_cache: LRUCache[tuple[int, str], tuple[int, ...]] = LRUCache(settings.search_vector_cache_size)
        self.batcher: Batcher[str, tuple[int, ...]] = Batcher(
            self._vector_hits, max_batch=settings.search_embed_batch, name="search-embed"
        )
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

    @property
    def loaded(self) -> bool:
        """Whether the index has been read (a search or `warm()` reads it)."""
        return self._index is not None

    def warm(self) -> None:
        """Loads the index and the embedding model now (FastAPI lifespan), not on the first request."""
        _ = self.index
        self.embeddings.embed_query("warm up")

    def reload(self) -> None:
        """Re-reads the index (after an ingest); cached answers and candidates are dropped."""
        self.index.reload()
        self.result_cache.clear()
        self.vector_cache.clear()

    def stale(self) -> str | None:
        """Why the loaded index's vectors do not match the query embeddings (another model made them), or None
        (also before the index is loaded)."""
        return self._index.stale if self._index is not None else None

    def close(self) -> None:
        """Stops the embedding batch worker (it starts again on the next search)."""
        self.batcher.close()

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        lat: float | None = None,
        lon: float | None = None,
        filters: InputFilters | None = None,
        interpreted: Interpreted | None = None,
    ) -> Outcome:
        """Runs one search. Explicit filters override what the parser read from the query.

        Args:
            query: the customer's text.
            limit: how many results at most.
            lat: latitude where the service is needed (with lon).
            lon: longitude.
            filters: explicit filters; those it sets win over the query's (`SearchFilters.override`).
            interpreted: an interpretation made earlier (e.g. the parser plus an LLM step, or several turns).
        """
        plan = self._plan(query, limit, lat, lon, filters, interpreted)
        if isinstance(plan, Outcome):
            return plan
        hits = self.vector_cache.get(plan.text_key)
        if hits is None:
            hits = self.batcher(plan.it.text)
            self.vector_cache.put(plan.text_key, hits)
        return self._finish(plan, hits)

    async def asearch(
        self,
        query: str,
        *,
        limit: int = 10,
        lat: float | None = None,
        lon: float | None = None,
        filters: InputFilters | None = None,
        interpreted: Interpreted | None = None,
    ) -> Outcome:
        """`search` for an event loop: a repeat is answered without leaving the loop, and a new query waits
        for its embedding batch without holding a thread. Same arguments as `search`."""
        if self._index is None:  # the first load reads the whole collection: never on the loop
            await asyncio.to_thread(lambda: self.index)
        plan = self._plan(query, limit, lat, lon, filters, interpreted)
        if isinstance(plan, Outcome):
            return plan
        hits = self.vector_cache.get(plan.text_key)
        if hits is None:
            hits = await asyncio.wrap_future(self.batcher.submit(plan.it.text))
            self.vector_cache.put(plan.text_key, hits)
        return self._finish(plan, hits)

    def _plan(
        self,
        query: str,
        limit: int,
        lat: float | None,
        lon: float | None,
        filters: InputFilters | None,
        interpreted: Interpreted | None,
    ) -> Outcome | _Plan:
        """The answer when it is known without ranking (outside the area, cached), else what to rank."""
        it = interpreted if interpreted is not None else self.parser.parse(query)  # a parse is a new object
        if filters is not None:  # a copy: the caller's interpretation is never changed
            it = it.override(filters)
        elif interpreted is not None:  # a copy all the same: the answer cache keeps it
            it = it.model_copy()
        point, county = None, None
        if lat is not None and lon is not None:
            point = (lat, lon)
            if not self.area.contains(lat, lon):
                return Outcome([], False, self.area.outside_notice(f"that location ({lat:.3f}, {lon:.3f})"), it)
        elif it.place is not None:
            point = (it.place.lat, it.place.lon)
            county = it.place.county if it.place.kind == "county" else None
        elif it.outside_place is not None:
            out = it.outside_place
            return Outcome([], False, self.area.outside_notice(out.name, out.lat, out.lon), it)
        key: _Key = (self.index.version, it.model_dump_json(), point, limit)
        cached = self.result_cache.get(key)
        if cached is not None:
            return replace(cached, cached=True)
        return _Plan(key, it, point, county, limit)

    def _finish(self, plan: _Plan, vector_hits: tuple[int, ...]) -> Outcome:
        out = rank(
            self.index, plan.it, vector_hits, point=plan.point, county=plan.county, limit=plan.limit,
            weights=self.weights,
        )
        self.result_cache.put(plan.key, out)
        return out

    def _vector_hits(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Vector candidates (unfiltered, nearest first) of each text: one ONNX run, one Chroma query."""
        unique = list(dict.fromkeys(texts))  # the same words may arrive twice in one batch
        found = self.index.vector_top_many(embed_queries(self.embeddings, unique), 2 * self.weights.candidates)
        by_text = {t: tuple(ids) for t, ids in zip(unique, found, strict=True)}
        return [by_text[t] for t in texts]


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
