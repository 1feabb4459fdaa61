"""Ranking one search: filters -> BM25 + vector candidates -> reciprocal rank fusion -> geo/feature rerank.

Pure CPU over the in-memory index; the vector candidates come in from the caller (embedded and queried in a
batch by the engine), so nothing here waits on the model or on Chroma.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.index import ListingIndex
from retrieval.query import Interpreted
from retrieval.schema import CATEGORIES, Listing
from retrieval.vocab import named_services

__all__ = ["NO_MATCH", "Hit", "Outcome", "Weights", "rank"]

_RRF_K = 60
NO_MATCH = "No listing matches all of that; try a wider area or a higher price."
# Weights of the final score: text relevance (fused ranks), requested features, nearness, reputation, and
# being in the query's main category when it points to several. With the fusion weights (BM25 1.0, vector 0.5)
# they were chosen on bench/search_queries.yaml (see BENCHMARKS.md); there is no held-out set yet.
_W_TEXT, _W_FEAT, _W_GEO, _W_QUALITY, _W_CAT = 0.55, 0.2, 0.1, 0.03, 0.05
# A listing offering a service the query names ("a roof inspection", "the dog ran off": search for missing
# pets) over one that only shares words or a feature with it
_W_SERVICE = 0.1
# Nearness in miles among the listings that offer what was clearly asked: a customer in Troy expects the roof
# inspector 7 mi away before the one 26 mi away, and `_W_GEO`'s nearness, relative to each listing's radius,
# counts a wide-radius listing 26 mi away as near. Clearly asked: the query points to a category (to several,
# only with a named service; then the main one), and the listing offers every named service and every requested
# feature, so a nearer listing that offers less never overtakes. Chosen on bench/search_nearness.yaml.
_W_NEAR, _NEAR_MILES = 0.15, 25.0


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
    cached: bool = False  # answered from the result cache


@dataclass(frozen=True)
class Weights:
    """How many candidates each retriever brings, and the weight of each ranking in the fusion."""

    candidates: int = 50
    lexical: float = 1.0
    semantic: float = 0.5


def rank(
    index: ListingIndex,
    it: Interpreted,
    vector_hits: Sequence[int],
    *,
    point: tuple[float, float] | None,
    county: str | None,
    limit: int,
    weights: Weights,
) -> Outcome:
    """Ranks the listings that pass the filters of the parsed query `it` and serve the point.

    Args:
        index: the in-memory index.
        it: the parsed query, explicit filters already applied (its filters are the hard constraints).
        vector_hits: the query's nearest listings (positions, unfiltered, nearest first).
        point: where the service is needed, or None.
        county: the point is this county (its listings serve it too), or None.
        limit: how many results at most.
        weights: candidates and fusion weights.
    """
    ok, dist = index.mask(it, point, county)
    notice = f"Showing results for {it.place.name}." if it.fuzzy_place and it.place else None
    if not ok.any():
        return Outcome([], True, NO_MATCH, it)
    lexical = index.bm25_top(it.text, ok, weights.candidates)
    semantic = [i for i in vector_hits if ok[i]][: weights.candidates]
    fused: dict[int, float] = {}
    for ranked, weight in ((lexical, weights.lexical), (semantic, weights.semantic)):
        for r, i in enumerate(ranked):
            fused[i] = fused.get(i, 0.0) + weight / (_RRF_K + r + 1)
    if len(fused) < limit:  # few text matches: fill with the nearest (or best rated) listings that qualify
        order = np.argsort(dist) if dist is not None else np.argsort(-index.quality)
        for i in order[ok[order]][: limit * 2]:
            fused.setdefault(int(i), 0.0)
    cand = np.fromiter(fused, dtype=np.int64, count=len(fused))
    rrf = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
    score, miles = _scores(index, cand, rrf, (weights.lexical + weights.semantic) / (_RRF_K + 1), it, dist)
    # Rounded, then ordered by score, nearness and id: a stable order for equal scores.
    rounded = [round(s, 4) for s in score.tolist()]
    near = [round(m, 1) for m in miles.tolist()] if miles is not None else [None] * len(rounded)
    ids = [index.listings[i].id for i in cand.tolist()]
    top = sorted(range(len(rounded)), key=lambda j: (-rounded[j], near[j] or 0.0, ids[j]))[:limit]
    hits = [Hit(index.listings[int(cand[j])], rounded[j], near[j]) for j in top]
    return Outcome(hits, True, notice, it)


def _scores(
    index: ListingIndex, cand: np.ndarray, rrf: np.ndarray, best: float, it: Interpreted, dist: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Final scores of the candidates (and their distances), over arrays: the same float64 operations, in the
    same order, as scoring them one by one, so the same numbers."""
    score = _W_TEXT * rrf / best + _W_QUALITY * index.quality[cand]
    asked = np.full(len(cand), bool(it.categories))  # offers what was clearly asked (see _W_NEAR)
    if it.features:
        cols = np.array([index.feature_column[f] for f in set(it.features) if f in index.feature_column], dtype=int)
        shared = index.features[np.ix_(cand, cols)].sum(axis=1)
        score += _W_FEAT * shared / len(it.features)
        asked &= shared == len(cols)
    named = [index.service_column[s] for s in named_services(it.text, it.categories) if s in index.service_column]
    if named:
        offers = index.services[np.ix_(cand, np.array(named, dtype=int))]
        score += _W_SERVICE * offers.any(axis=1)
        asked &= offers.all(axis=1)
    if len(it.categories) > 1 and it.category is not None:
        main = index.category[cand] == CATEGORIES.index(it.category)
        score += np.where(main, _W_CAT, 0.0)
        asked &= main & bool(named)  # several categories and no service named: not clear enough
    if dist is None:
        return score, None
    miles = dist[cand].astype(np.float64)
    near = np.maximum(0.0, 1.0 - miles / np.maximum(index.radius[cand], 1.0))
    closer = np.maximum(0.0, 1.0 - miles / _NEAR_MILES)
    if it.place is not None and it.place.kind == "county":  # a county has no centre a customer is at
        near = np.where(index.county[cand] == it.place.county, 1.0, near)
        closer = np.where(index.county[cand] == it.place.county, 1.0, closer)
    score += _W_GEO * near + _W_NEAR * np.where(asked, closer, 0.0)
    return score, miles
