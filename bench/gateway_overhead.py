"""Added latency of the whole gateway (auth + scope + body/token estimate + budget + limits + settle) per request.

The same trivial POST route with and without `route_dependencies("chat")`, in one process, through
httpx's ASGI transport (no sockets: what is measured is the gateway, not the network), at 1 and 64
concurrent clients, with limits in memory and on a local Redis (redis-server started here on a free port).

    .venv/bin/python -m bench.gateway_overhead [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI

from chains.local_llm import free_port
from gateway import tokens
from gateway.deps import RateLimitHeaders, route_dependencies
from gateway.gate import build_gateway
from gateway.keys import build_key_store
from settings import Settings

ASK = {"input": {"messages": [{"role": "user", "content": "Which drone services can I book in Troy this week?"}]}}


class ZeroLedger:
    def spend_since(self, since: Any, *, key_name: str | None = None) -> float:
        return 0.0


def build(settings: Settings) -> tuple[FastAPI, str]:
    store = build_key_store(settings=settings)
    store.create_table()
    key = store.create(name=f"bench-{time.time_ns()}", scopes=["chat"], rpm=50_000, tpm=10**12,
                       daily_budget_usd=1e9)
    gateway = build_gateway(settings=settings, ledger=ZeroLedger())
    app = FastAPI()
    app.state.services = SimpleNamespace(gateway=gateway, settings=settings)

    @app.post("/plain")
    async def plain() -> dict[str, int]:
        return {"ok": 1}

    @app.post("/gated", dependencies=route_dependencies("chat"))
    async def gated() -> dict[str, int]:
        return {"ok": 1}

    app.add_middleware(RateLimitHeaders)
    gateway.start()
    return app, key


async def measure(app: FastAPI, key: str, path: str, n: int, concurrency: int) -> list[float]:
    transport = httpx.ASGITransport(app=app)
    out: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        headers = {"Authorization": f"Bearer {key}"}

        async def worker(count: int) -> None:
            for _ in range(count):
                t0 = time.perf_counter()
                r = await client.post(path, json=ASK, headers=headers)
                out.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return out


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1]


async def run(backend: str, settings: Settings, n: int) -> list[str]:
    app, key = build(settings)
    rows = []
    for conc in (1, 64):
        for path in ("/plain", "/gated"):  # warm-up
            await measure(app, key, path, 200, min(conc, 8))
        gc.collect()
        gc.freeze()
        plain, gated = [], []
        for _ in range(3):  # interleaved rounds: the noisy box drifts the same way for both
            plain += await measure(app, key, "/plain", n // 3, conc)
            gated += await measure(app, key, "/gated", n // 3, conc)
        gc.unfreeze()
        rows.append(
            f"| {backend} | {conc} | {pct(plain, 50):.2f} | {pct(plain, 99):.2f} | {pct(gated, 50):.2f} | "
            f"{pct(gated, 99):.2f} | **{pct(gated, 50) - pct(plain, 50):.2f}** | "
            f"**{pct(gated, 99) - pct(plain, 99):.2f}** |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="requests per route per concurrency level")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    base: dict[str, Any] = {"skymarket_env": "production", "openai_api_key": "sk-bench-" + "0" * 24,
                            "gateway_keys_file": tmp / "keys.db", "local_model_enabled": False,
                            "gateway_global_rpm": 50_000, "gateway_global_tpm": 10**12}
    tokens.warm_up(("gpt-4o-mini",))
    print("| limits | clients | plain p50 ms | plain p99 ms | gateway p50 ms | gateway p99 ms | added p50 "
          "| added p99 |")
    print("|---|---|---|---|---|---|---|---|")
    asyncio.run(run("memory", Settings(_env_file=None, **base), args.n))  # type: ignore[call-arg]
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server not installed: Redis rows skipped")
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        s = Settings(_env_file=None, redis_url=f"redis://127.0.0.1:{port}/0", **base)  # type: ignore[call-arg]
        asyncio.run(run("redis", s, args.n))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
