"""A bench-only HTTP server: `/search` (the real chain) and `/const` (a bare LangServe route returning a constant).

    .venv/bin/python -m bench.search_server --data shipped --port 8701 [--fast-json]

Built like `server.py` mounts routes (LangServe `add_routes`), without the gateway, so the two routes differ only
in the work the chain does. After warm-up the heap is frozen (`gc.freeze()`) so the collector does not rescan
the index's objects on every cycle. `GET /stats` gives the search caches' counters to the bench.

`--fast-json` is an experiment for server.py, not what the service does today: LangServe encodes every
response with FastAPI's `jsonable_encoder`, a pure-Python walk over every value (about 2.3 ms of CPU for
one 10-result search answer here); pydantic's own JSON-mode dump gives the same dict in Rust.
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


def fast_langserve_json() -> None:
    """Makes LangServe's response encoder dump pydantic models with pydantic (same JSON, without the walk)."""
    from fastapi.encoders import jsonable_encoder
    from langserve import api_handler
    from pydantic_core import PydanticSerializationError

    def encode(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, BaseModel) and not args and not kwargs:
            try:
                return obj.model_dump(mode="json", by_alias=True)
            except PydanticSerializationError:  # something only FastAPI's encoder knows: let it do it
                pass
        return jsonable_encoder(obj, *args, **kwargs)

    api_handler.jsonable_encoder = encode  # type: ignore[attr-defined]


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


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--fast-json", action="store_true", help="see the module docstring")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.fast_json:
        fast_langserve_json()
    uvicorn.run(build_app(args.data), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
