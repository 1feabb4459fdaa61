"""A bench-only HTTP server: `/search` (the real chain) and `/const` (a bare LangServe route returning a constant).

    .venv/bin/python -m bench.search_server --data shipped --port 8701 [--langserve-json]

Built like `server.py` mounts routes (LangServe `add_routes`), without the gateway, so the two routes differ only
in the work the chain does. After warm-up the heap is frozen (`gc.freeze()`) so the collector does not rescan
the index's objects on every cycle. `GET /stats` gives the search caches' counters to the bench.

Responses are encoded as the service encodes them (`server.use_fast_response_json()`: pydantic's JSON-mode
dump instead of LangServe's `jsonable_encoder`, a pure-Python walk over every value that cost about 2.3 ms of
CPU for one 10-result search answer here). `--langserve-json` keeps LangServe's own encoder, for comparison.
"""

from __future__ import annotations

import argparse
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from langchain_core.runnables import RunnableLambda
from langserve import add_routes
from pydantic import BaseModel

from bench.search_common import bench_settings
from chains.search import SearchInput, build_search_chain
from retrieval.engine import build_search_engine


class ConstOutput(BaseModel):
    ok: bool


def build_app(data: str) -> FastAPI:
    settings = bench_settings(data)
    engine = build_search_engine(settings=settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.warm()
        for q in ["roof inspection near Troy", "wedding video Ann Arbor under $500", "crop spraying"]:
            engine.search(q)
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(lifespan=lifespan)
    add_routes(app, build_search_chain(settings=settings, index=engine), path="/search", enabled_endpoints=["invoke"])

    def const(_: Any) -> ConstOutput:
        return ConstOutput(ok=True)

    @app.get("/stats")
    def stats() -> dict[str, int]:
        """The caches' and the embedding batcher's counters, read by the bench between rows."""
        answers, batcher = engine.result_cache, engine.batcher
        return {"hits": answers.hits, "misses": answers.misses, "batches": batcher.batches, "items": batcher.items}

    bare = RunnableLambda(const).with_types(input_type=SearchInput, output_type=ConstOutput)
    add_routes(app, bare, path="/const", enabled_endpoints=["invoke"])
    return app


def build_service_app(data: str) -> FastAPI:
    """The real service (`server.create_app`: gateway, recording, guard, the lot) over the bench index, in
    development mode so loopback requests need no key, limits raised far above the bench's rate; plus the
    same `/const` route and `/stats`."""
    import tempfile
    from pathlib import Path

    from pydantic import SecretStr

    from server import create_app

    tmp, high = Path(tempfile.mkdtemp(prefix="search-bench-")), 10**9
    settings = bench_settings(
        data, skymarket_env="development", local_model_enabled=False, search_llm_parser=False,
        openai_api_key=SecretStr("sk-bench-" + "0" * 24), openai_base_url="http://127.0.0.1:9/v1",  # never called
        ai_rate_limit_rpm=high, ai_rate_limit_tpm=high, gateway_global_rpm=high, gateway_global_tpm=high,
        gateway_search_global_rpm=high, gateway_guard_global_rpm=high,
        gateway_keys_file=tmp / "keys.db", usage_db_file=tmp / "usage.db",
        usage_spool_dir=tmp / "usage_spool", audit_file=tmp / "audit" / "a.jsonl",
        describe_cache_path=tmp / "describe.db",
    )
    app = create_app(settings, freeze_gc=True)
    engine = app.state.services.search

    @app.get("/stats")
    def stats() -> dict[str, int]:
        answers, batcher = engine.result_cache, engine.batcher
        return {"hits": answers.hits, "misses": answers.misses, "batches": batcher.batches, "items": batcher.items}

    def const(_: Any) -> ConstOutput:
        return ConstOutput(ok=True)

    bare = RunnableLambda(const).with_types(input_type=SearchInput, output_type=ConstOutput)
    add_routes(app, bare, path="/const", enabled_endpoints=["invoke"])
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--langserve-json", action="store_true", help="LangServe's own encoder (see the docstring)")
    parser.add_argument("--service", action="store_true", help="/search of the real app (gateway, recording...)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.langserve_json:
        from server import use_fast_response_json

        use_fast_response_json()
    app = build_service_app(args.data) if args.service else build_app(args.data)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
