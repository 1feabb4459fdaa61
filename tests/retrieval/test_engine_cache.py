"""The search caches (answers, vector candidates, parses): on by default, a repeat is answered from memory,
anything that changes the answer changes the key, a reload after an ingest is never answered from before it,
size 0 turns them off; batched query embeddings rank like single ones; the async path ranks like the sync one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from retrieval.engine import SearchEngine, build_search_engine
from retrieval.filters import InputFilters
from retrieval.ingest import ingest
from retrieval.store import build_vectorstore
from settings import Settings
from tests.conftest import make_settings
from tests.retrieval.conftest import CachedEmbeddings, write_jsonl

embedded_only = pytest.mark.parametrize("backend", ["embedded"])  # the caches do not depend on the backend


def ids(out: Any) -> list[str]:
    return [h.listing.id for h in out.hits]


def twin(engine: SearchEngine, **overrides: Any) -> SearchEngine:
    """Another engine over the same collection, with its own settings and caches."""
    settings = make_settings(chroma_path=engine.settings.chroma_path, **overrides)
    return build_search_engine(settings=settings, embeddings=engine.embeddings, store=engine.index.store)


def test_on_by_default() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.search_cache_size > 0 and defaults.search_vector_cache_size > 0
    assert defaults.search_embed_batch > 1


@embedded_only
def test_a_repeat_is_answered_from_memory(backend: str, engine: SearchEngine) -> None:
    first = engine.search("thermal roof survey near Novi", limit=5)
    again = engine.search("thermal roof survey near Novi", limit=5)
    assert not first.cached and again.cached
    assert ids(again) == ids(first) and again.interpreted == first.interpreted
    # anything that changes the answer changes the key
    assert not engine.search("thermal roof survey near Novi", limit=4).cached
    assert not engine.search("thermal roof survey near Novi", limit=5, filters=InputFilters(max_price=300)).cached
    troy = engine.gazetteer.get("Troy")
    assert troy is not None
    assert not engine.search("thermal roof survey near Novi", limit=5, lat=troy.lat, lon=troy.lon).cached


@embedded_only
def test_parses_are_copies(backend: str, engine: SearchEngine) -> None:
    first = engine.parser.parse("night thermal inspection in Warren")
    first.features.append("lidar")
    assert "lidar" not in engine.parser.parse("night thermal inspection in Warren").features


@embedded_only
def test_size_zero_turns_the_caches_off(backend: str, engine: SearchEngine) -> None:
    off = twin(engine, search_cache_size=0, search_vector_cache_size=0)
    a, b = off.search("roof inspection near Troy"), off.search("roof inspection near Troy")
    assert not a.cached and not b.cached and ids(a) == ids(b)
    assert len(off.result_cache) == len(off.vector_cache) == 0
    assert off.batcher.items == 2  # embedded twice
    off.close()


@embedded_only
def test_async_path_ranks_like_the_sync_one(backend: str, engine: SearchEngine) -> None:
    sync, lazy = twin(engine, search_cache_size=0), twin(engine, search_cache_size=0)
    queries = ["wedding video Ann Arbor under $500", "crop spraying in Lapeer County", "drone delivery in Chicago"]

    async def run() -> list[list[str]]:
        outs = await asyncio.gather(*(lazy.asearch(q) for q in queries))  # the index loads on a thread first
        return [ids(o) for o in outs]

    assert asyncio.run(run()) == [ids(sync.search(q)) for q in queries]
    sync.close()
    lazy.close()


@embedded_only
def test_batched_embeddings_rank_like_single_ones(backend: str, engine: SearchEngine) -> None:
    texts = ["roof inspection", "crop spraying orchard", "roof inspection", "real estate listing photos"]
    together = engine.batcher.fn(texts)
    alone = [engine.batcher.fn([t])[0] for t in texts]
    assert together[0] == together[2]
    for a, b in zip(together, alone, strict=True):
        assert a[:10] == b[:10]


@embedded_only
def test_reload_after_ingest_is_never_answered_from_before(
    backend: str, fresh_settings: Settings, subset_rows: list[dict[str, Any]], embeddings: CachedEmbeddings,
    tmp_path: Path,
) -> None:  # fmt: skip
    rows = [dict(r) for r in subset_rows[:12]]
    store = build_vectorstore(settings=fresh_settings, embeddings=embeddings)
    ingest(store=store, path=write_jsonl(tmp_path / "a.jsonl", rows), progress=False)
    engine = build_search_engine(settings=fresh_settings, embeddings=embeddings, store=store)
    query = rows[0]["title"]
    before = engine.search(query, limit=12)
    price = {h.listing.id: h.listing.price_from_usd for h in before.hits}[rows[0]["id"]]
    rows[0]["price_from_usd"] = price + 7
    ingest(store=store, path=write_jsonl(tmp_path / "b.jsonl", rows), progress=False)
    assert engine.search(query, limit=12).cached  # the index in memory is still the one loaded: so is the answer
    version = engine.index.version
    engine.reload()
    after = engine.search(query, limit=12)
    assert engine.index.version == version + 1 and not after.cached
    assert {h.listing.id: h.listing.price_from_usd for h in after.hits}[rows[0]["id"]] == price + 7
    engine.close()
