"""CPU per embedding: the package's MiniLM as onnxruntime loads it (fp32 weights) against the int8 build the
service runs (retrieval/onnx_model.py), in the same run, alternating, one intra-op thread each.

    .venv/bin/python -m bench.embed_cost [--rounds 5] [--n 200]

Rows: a three-token query, a 14-token one, eight 14-token queries in one call (the package model in one padded
run, as it batched; the int8 model one run per text, as it runs), and a listing cut at 64 tokens. Also the
cosine of each query's two vectors. CPU is this process's (time.process_time), medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from retrieval.embeddings import MiniLMEmbeddings
from retrieval.onnx_model import package_model
from retrieval.schema import Listing
from settings import ROOT

__all__ = ["main"]

SHORT, MEDIUM = "hi there", "How do I list a drone for sale on this site?"


def _cpu_ms(fn: Callable[[], Any], n: int, items: int) -> float:
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / (n * items) * 1e3


def _bound(fn: Callable[[MiniLMEmbeddings], Any], m: MiniLMEmbeddings) -> Callable[[], Any]:
    return lambda: fn(m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200, help="calls per row and round")
    args = parser.parse_args()
    lines = (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines()
    listing = Listing.model_validate_json(lines[0]).embed_text()
    models = {"package (fp32 at load)": MiniLMEmbeddings(model_path=package_model(), doc_max_tokens=64),
              "int8 (service)": MiniLMEmbeddings(doc_max_tokens=64)}
    rows: dict[str, tuple[Callable[[MiniLMEmbeddings], Any], int]] = {
        "query, 3 tokens": (lambda m: m.embed_queries([SHORT]), 1),
        "query, 14 tokens": (lambda m: m.embed_queries([MEDIUM]), 1),
        "8 queries of 14 tokens, one call (per query)": (lambda m: m.embed_queries([MEDIUM] * 8), 8),
        "listing, 64 tokens": (lambda m: m.embed_documents([listing]), 1),
    }
    for m in models.values():  # load and warm both before timing
        for fn, _ in rows.values():
            fn(m)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for row, (fn, items) in rows.items():
            for name, m in models.items():
                results.setdefault((row, name), []).append(_cpu_ms(_bound(fn, m), args.n // items, items))
    names = list(models)
    print(f"| input | {' | '.join(names)} | ratio |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in rows:
        a, b = (statistics.median(results[(row, n)]) for n in names)
        print(f"| {row} | {a:.2f} ms | {b:.2f} ms | {a / b:.2f}x |")
    pa, pb = (m.embed_queries([SHORT, MEDIUM, listing]) for m in models.values())
    print("cosine package vs int8:", np.round((pa * pb).sum(axis=1), 4).tolist())


if __name__ == "__main__":
    main()
