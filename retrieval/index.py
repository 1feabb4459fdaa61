"""The searchable index: the Chroma collection plus, in memory, BM25 and numpy columns for filters and geo.

`ListingIndex.reload()` reads every listing back from Chroma's metadata (page by page), so the in-memory
side always mirrors the collection that was ingested; call it again after an ingest to pick up changes.
Filters are numpy comparisons over columns built here (retrieval.filters), never Chroma metadata filters.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from errors import NotReady
from retrieval import filters
from retrieval.embeddings import embedding_id
from retrieval.filters import SearchFilters
from retrieval.schema import CATEGORIES, Listing
from retrieval.store import ListingsStore, query_ids_many
from retrieval.text import tokenize

log = logging.getLogger("skymarket.search")

__all__ = ["ListingIndex"]

_PAGE = 5000


def _membership(tags: list[list[str]]) -> tuple[dict[str, int], np.ndarray]:
    """Each tag's column, and a (listings x tags) bool matrix: which listing has which tag."""
    names = sorted({t for own in tags for t in own})
    column = {t: j for j, t in enumerate(names)}
    matrix = np.zeros((len(tags), len(names)), dtype=bool)
    for i, own in enumerate(tags):
        matrix[i, [column[t] for t in own]] = True
    return column, matrix


class ListingIndex:
    """Hybrid index over the listings collection.

    Args:
        store: the listings vector store (its embeddings embed queries).
    """

    def __init__(self, *, store: ListingsStore) -> None:
        self.store = store
        self.stale: str | None = None  # set when the vectors were made by another model than the queries'
        self.listings: list[Listing] = []
        self._lock = threading.Lock()
        self._loaded = False
        self._bm25: Any = None
        self.version = 0  # +1 on every reload: what the search caches are keyed by

    @property
    def size(self) -> int:
        return len(self.listings)

    def _check_models(self, models: set[str]) -> None:
        """Vectors from another model than the one embedding the queries match nothing they should (BM25 and the
        filters still do): said in the log and in /readyz's `degraded`, until an ingest embeds them again."""
        queries = embedding_id(self.store.embeddings) if self.store.embeddings is not None else "unknown"
        stale = sorted(models - {queries})
        self.stale = (f"the index holds vectors made by {', '.join(stale)}; queries are embedded by {queries}: "
                      "run `make index` (python -m retrieval.ingest) to embed the listings again") if stale else None
        if self.stale:
            log.warning("search: %s", self.stale)

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.reload()

    def reload(self) -> None:
        """(Re)reads the collection and rebuilds BM25 and the filter columns."""
        import bm25s

        with self._lock:
            listings: list[Listing] = []
            offset = 0
            models: set[str] = set()  # the embedding models the vectors were made with
            while True:
                page = self.store.get(include=["metadatas"], limit=_PAGE, offset=offset)
                listings += [Listing.model_validate_json(m["listing"]) for m in page["metadatas"] if m]
                models.update(str(m.get("embedding") or "an older model") for m in page["metadatas"] if m)
                if len(page["ids"]) < _PAGE:
                    break
                offset += _PAGE
            if not listings:
                raise NotReady("the search index is empty: run `python -m retrieval.ingest`")
            self._check_models(models)
            listings.sort(key=lambda x: x.id)
            bm25 = bm25s.BM25()
            bm25.index([tokenize(x.search_text()) or ["_"] for x in listings], show_progress=False)
            self._bm25 = bm25
            self.pos = {x.id: i for i, x in enumerate(listings)}
            self.lat = np.array([x.lat for x in listings])
            self.lon = np.array([x.lon for x in listings])
            self._lat_r = np.radians(self.lat).astype(np.float32)
            self._lon_r = np.radians(self.lon).astype(np.float32)
            self.radius = np.array([x.service_radius_miles for x in listings])
            self.category = np.array([CATEGORIES.index(x.category) for x in listings], dtype=np.int8)
            self.county = np.array([x.county for x in listings])
            self.columns = filters.columns(listings)
            self.feature_column, self.features = _membership([x.features for x in listings])  # listing x feature
            self.service_column, self.services = _membership([x.services for x in listings])  # listing x service
            self.quality = np.array(
                [(x.rating - 1) / 4 * min(1.0, np.log1p(x.review_count) / np.log(100)) for x in listings]
            )
            self.listings = listings
            self._loaded = True
            self.version += 1

    def distances(self, lat: float, lon: float) -> np.ndarray:
        """Miles from (lat, lon) to every listing.

        Equirectangular with the mean latitude, in float32: within 0.01 mile of haversine at the distances a
        service radius spans (tens of miles), and about 10x cheaper at 100k listings.
        """
        plat, plon = np.float32(np.radians(lat)), np.float32(np.radians(lon))
        x = (self._lon_r - plon) * np.cos((self._lat_r + plat) * np.float32(0.5))
        y = self._lat_r - plat
        return np.float32(3958.8) * np.sqrt(x * x + y * y)

    def mask(
        self, f: SearchFilters, point: tuple[float, float] | None = None, county: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Which listings pass the filters and serve the point, and their distance to it (None without one).

        Args:
            f: the search's filters (an `Interpreted` is one).
            point: where the service is needed (lat, lon): a listing serves it within its service radius.
            county: the point is this county: the county's own listings serve it too.
        """
        if point is None:
            return filters.mask(f, self.columns, self.size, None), None
        dist = self.distances(*point)
        serves = dist <= self.radius
        if county is not None:
            serves |= self.county == county
        return filters.mask(f, self.columns, self.size, dist) & serves, dist

    def bm25_top(self, text: str, ok: np.ndarray, k: int) -> list[int]:
        """Positions of the k best BM25 matches among the allowed listings (score > 0 only)."""
        tokens = [t for t in tokenize(text) if t in self._bm25.vocab_dict]
        if not tokens:
            return []
        scores = np.where(ok, self._bm25.get_scores(tokens), 0.0)
        k = min(k, int((scores > 0).sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        return [int(i) for i in top[np.argsort(-scores[top])]]

    def vector_top(self, vector: list[float], k: int) -> list[int]:
        """Positions of the k nearest listings in Chroma, nearest first, unfiltered.

        Filters are applied after, with the mask: a metadata filter inside Chroma made the query about 15x
        slower at 10k listings (48 ms against 3 ms for k=100 here), and BM25 is exact over the mask anyway.
        """
        return self.vector_top_many([vector], k)[0]

    def vector_top_many(self, vectors: list[list[float]] | np.ndarray, k: int) -> list[list[int]]:
        """`vector_top` for several query vectors in one Chroma query."""
        return [[self.pos[i] for i in ids if i in self.pos] for ids in query_ids_many(self.store, vectors, k=k)]
