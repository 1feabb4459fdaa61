"""Relevance of /search on the shipped data: nDCG@10 of the hybrid search against baselines.

    .venv/bin/python -m bench.search_relevance

Judgements: `bench/search_queries.yaml` (graded 0/1/2 by per-query rules over listing attributes). Baselines:
BM25-only and vector-only on the raw query (no parser), and the same two with the parser's filters and geo, so
the fusion's own contribution shows too.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import yaml

from bench.search_common import ROOT, indexed_engine, machine
from retrieval.engine import SearchEngine
from retrieval.places import haversine_miles
from retrieval.schema import Listing

K = 10


def _matches(x: Listing, spec: dict[str, Any]) -> bool:
    if x.category not in spec["category"]:
        return False
    if spec.get("services") and not set(spec["services"]) & set(x.services):
        return False
    return set(spec.get("features", [])) <= set(x.features)


def grade(engine: SearchEngine, q: dict[str, Any], x: Listing) -> int:
    place = engine.gazetteer.get(q["place"])
    assert place is not None, q["place"]
    serves = haversine_miles(place.lat, place.lon, x.lat, x.lon) <= x.service_radius_miles
    if place.is_county:
        serves = serves or x.county == place.county
    if not serves or x.price_from_usd > q.get("max_price", math.inf) or (q.get("insured") and not x.insured):
        return 0
    if any(_matches(x, s) for s in q["best"]):
        return 2
    return 1 if any(_matches(x, s) for s in q["good"]) else 0


def ndcg(grades: list[int], ideal: list[int]) -> float:
    def dcg(gs: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs[:K]))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(grades) / best if best > 0 else 0.0


def rankings(engine: SearchEngine, query: str) -> dict[str, list[Listing]]:
    idx = engine.index
    it = engine.parser.parse(query)
    out = {"hybrid": [h.listing for h in engine.search(query, limit=K).hits]}
    everything = np.ones(idx.size, dtype=bool)
    vec = engine.embeddings.embed_query(query)
    out["bm25"] = [idx.listings[i] for i in idx.bm25_top(query, everything, K)]
    out["vector"] = [idx.listings[i] for i in idx.vector_top(vec, K)]
    point = (it.place.lat, it.place.lon) if it.place else None
    county = it.place.county if it.place and it.place.kind == "county" else None
    ok, _ = idx.mask(it, point, county)  # the parsed query is its own filters
    out["bm25+filters"] = [idx.listings[i] for i in idx.bm25_top(it.text, ok, K)]
    vec_it = engine.embeddings.embed_query(it.text)
    many = idx.vector_top(vec_it, 200)
    out["vector+filters"] = [idx.listings[i] for i in many if ok[i]][:K]
    return out


def main() -> int:
    engine, _ = indexed_engine("shipped", ROOT / "data" / "listings.jsonl")
    queries = yaml.safe_load((ROOT / "bench" / "search_queries.yaml").read_text())
    scores: dict[str, list[float]] = {}
    out_ok = 0
    out_total = 0
    for q in queries:
        if q.get("out_of_area"):
            out_total += 1
            res = engine.search(q["q"])
            out_ok += int(not res.in_service_area and not res.hits and bool(res.notice))
            continue
        ideal = [grade(engine, q, x) for x in engine.index.listings]
        per = {}
        for name, ranked in rankings(engine, q["q"]).items():
            per[name] = ndcg([grade(engine, q, x) for x in ranked], ideal)
            scores.setdefault(name, []).append(per[name])
        if per["hybrid"] < 0.8:
            print(f"  low: {q['q']!r} hybrid={per['hybrid']:.3f}", file=sys.stderr)
    print(f"machine: {machine()}")
    print(f"{len(queries) - out_total} in-area queries, nDCG@{K} (mean):")
    for name, vals in scores.items():
        print(f"  {name:15s} {np.mean(vals):.3f}  (min {np.min(vals):.3f})")
    print(f"out-of-area queries answered honestly (no results, in_service_area false, a notice): {out_ok}/{out_total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
