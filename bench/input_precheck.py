"""What the feature routes' request check (server.input_precheck: envelope, batch items) costs per request.

In-process, one request object per call as FastAPI gives the dependency: the body parse it triggers is
Starlette's cached `request.json()` that LangServe would do anyway, so it is measured apart ("parse only").

    .venv/bin/python -m bench.input_precheck            # --n 20000

For the cost through the whole server, compare `python -m bench.gateway_server` on this commit and its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from starlette.requests import Request

from server import input_precheck
from services import build_services
from settings import Settings

BODIES = {
    "search invoke": ("/search/invoke", {"input": {"query": "roof inspection near Troy", "limit": 10}}),
    "search batch x10": ("/search/batch", {"inputs": [{"query": f"roof inspection {i}"} for i in range(10)]}),
}


def request(path: str, raw: bytes) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}, receive)


async def run(n: int) -> None:
    services = build_services(Settings(_env_file=None, local_model_enabled=False))  # type: ignore[call-arg]
    check = input_precheck(services.chains["search"])
    for name, (path, body) in BODIES.items():
        raw = json.dumps(body).encode()
        for label, fn in (("parse only", None), ("input_precheck", check)):
            t = time.perf_counter()
            for _ in range(n):
                r = request(path, raw)
                await (fn(r) if fn else r.json())
            print(f"{name:18} {label:15} {(time.perf_counter() - t) / n * 1e6:8.1f} µs/request")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20_000)
    asyncio.run(run(p.parse_args().n))


if __name__ == "__main__":
    main()
