"""Shared by the search benchmarks: an index of a listings file in its own Chroma folder under bench/results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from retrieval.embeddings import build_embeddings, embedding_id
from retrieval.engine import SearchEngine, build_search_engine
from retrieval.ingest import ingest
from retrieval.ingest.core import embedded_by
from retrieval.store import build_vectorstore
from settings import ROOT, Settings, load_settings

RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    """`nproc` and the CPU model, for the record."""
    import os

    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPUs (nproc), {model}"


def bench_settings(name: str, **overrides: Any) -> Settings:
    return load_settings(chroma_path=RESULTS / f"chroma-{name}", chroma_collection="listings", **overrides)


def indexed_engine(name: str, listings: Path, *, ingest_if_needed: bool = True) -> tuple[SearchEngine, float | None]:
    """An engine over `listings`, ingesting first when the bench index is empty. Returns (engine, ingest seconds)."""
    settings = bench_settings(name)
    embeddings = build_embeddings(settings=settings)
    store = build_vectorstore(settings=settings, embeddings=embeddings)
    took = None
    if ingest_if_needed and embedded_by(store) != embedding_id(embeddings):  # empty, or another model's vectors
        started = time.perf_counter()
        report = ingest(store=store, path=listings, batch_size=settings.embeddings_batch_size)
        took = time.perf_counter() - started
        print(f"ingested {listings.name}: {report.summary()} in {took:.1f}s ({report.total / took:.1f}/s)")
    return build_search_engine(settings=settings, embeddings=embeddings, store=store), took
