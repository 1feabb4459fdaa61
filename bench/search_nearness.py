"""Nearness of /search on the shipped data: when a customer names a place, do the nearby operators come first?

    .venv/bin/python -m bench.search_nearness [--show]

Judgements: `bench/search_nearness.yaml` (its header defines the metric). Relevance is graded by
`bench.search_relevance.grade`; the gain then falls with the distance from the named place: nDCG@3 and @5, the
mean miles of the relevant top-3 results, the share of top-3 slots lost to a far listing while a near one is left
out, and the distance-free relevance nDCG@5 as a guard. `--show` prints each query's top 3 (grade, miles).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from bench.search_common import ROOT, indexed_engine, machine
from bench.search_relevance import grade
from retrieval.engine import SearchEngine
from retrieval.places import haversine_miles
from retrieval.schema import Listing

__all__ = ["Scored", "gain", "ndcg_at", "score_query", "tier"]

NEAR_MILES = 10.0
MID_MILES = 20.0


def tier(miles: float) -> int:
    """3 within 10 mi, 2 within 20 mi, 1 beyond."""
    return 3 if miles <= NEAR_MILES else 2 if miles <= MID_MILES else 1


def gain(relevance: int, miles: float) -> float:
    """A best listing (relevance 2) gains tier(miles), a good one (1) a third of that, an irrelevant one 0."""
    return {2: float(tier(miles)), 1: tier(miles) / 3}.get(relevance, 0.0)


def ndcg_at(gains: list[float], ideal: list[float], k: int, *, exponential: bool = False) -> float:
    """nDCG@k of `gains` against the best order of `ideal`; `exponential` uses 2**g - 1 (search_relevance's)."""

    def dcg(gs: list[float]) -> float:
        return sum(((2**g - 1) if exponential else g) / math.log2(i + 2) for i, g in enumerate(gs[:k]))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0


@dataclass
class Scored:
    """One query's figures."""

    ndcg3: float
    ndcg5: float
    rel_ndcg5: float
    top3_miles: list[float]  # of the relevant results in the top 3
    far_slots: int  # top-3 slots holding a relevant listing > 20 mi while a best one within 10 mi is left out
    top: list[tuple[Listing, int, float]]  # (listing, relevance, miles) of the top 5


def score_query(engine: SearchEngine, q: dict[str, Any], ranked: list[Listing]) -> Scored:
    """Scores one ranking of `q` against every listing of the engine's index."""
    place = engine.gazetteer.get(q["place"])
    assert place is not None, q["place"]

    def miles(x: Listing) -> float:
        return haversine_miles(place.lat, place.lon, x.lat, x.lon)

    everyone = engine.index.listings
    rel_all = [grade(engine, q, x) for x in everyone]
    ideal = [gain(r, miles(x)) for r, x in zip(rel_all, everyone, strict=True)]
    top = [(x, grade(engine, q, x), miles(x)) for x in ranked[:5]]
    gains = [gain(r, m) for _, r, m in top]
    near_best = {x.id for r, x in zip(rel_all, everyone, strict=True) if r == 2 and miles(x) <= NEAR_MILES}
    left_out = bool(near_best - {x.id for x, _, _ in top[:3]})
    far = sum(1 for _, r, m in top[:3] if r > 0 and m > MID_MILES) if left_out else 0
    return Scored(
        ndcg3=ndcg_at(gains, ideal, 3),
        ndcg5=ndcg_at(gains, ideal, 5),
        rel_ndcg5=ndcg_at([float(r) for _, r, _ in top], [float(r) for r in rel_all], 5, exponential=True),
        top3_miles=[m for _, r, m in top[:3] if r > 0],
        far_slots=far,
        top=top,
    )


def main(argv: list[str] | None = None) -> int:
    show = "--show" in (argv if argv is not None else sys.argv[1:])
    engine, _ = indexed_engine("shipped", ROOT / "data" / "listings.jsonl")
    queries = yaml.safe_load((ROOT / "bench" / "search_nearness.yaml").read_text())
    rows = []
    for q in queries:
        ranked = [h.listing for h in engine.search(q["q"], limit=5).hits]
        s = score_query(engine, q, ranked)
        rows.append(s)
        if show:
            print(f"{q['q']!r}: nDCG@3 {s.ndcg3:.2f}")
            for x, r, m in s.top[:3]:
                print(f"    {r} {m:5.1f} mi  {x.city:18s} {x.title}")
    miles3 = [m for s in rows for m in s.top3_miles]
    print(f"machine: {machine()}")
    print(f"{len(rows)} queries naming a place (bench/search_nearness.yaml):")
    print(f"  nearness nDCG@3  {np.mean([s.ndcg3 for s in rows]):.3f}  (min {min(s.ndcg3 for s in rows):.3f})")
    print(f"  nearness nDCG@5  {np.mean([s.ndcg5 for s in rows]):.3f}  (min {min(s.ndcg5 for s in rows):.3f})")
    print(f"  miles@3          {np.mean(miles3):.1f} mi  (relevant top-3 results: {len(miles3)}/{3 * len(rows)})")
    print(f"  far@3            {sum(s.far_slots for s in rows) / (3 * len(rows)):.3f}")
    print(f"  rel-nDCG@5       {np.mean([s.rel_ndcg5 for s in rows]):.3f}  (distance ignored)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
