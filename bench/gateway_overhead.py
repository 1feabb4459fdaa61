"""Added latency of the whole gateway (auth + scope + body/token estimate + budget + limits + settle) per request,
in one process: the app of `bench.gateway_server` (the same trivial POST route with and without
`route_dependencies("chat")`), driven through httpx's ASGI transport (no sockets), at 1 and 64 concurrent
clients, with limits in memory and on a local Redis (redis-server started here on a free port). Both routes
run under a stand-in for the usage recorder (a request context whose model call used 30 tokens), so the
reservation is settled after each response as in the service. Latency is measured until the response's last
byte leaves the app (the outermost middleware).

The clients (httpx, ~0.8 ms of CPU per request here) share the app's event loop, so at 64 clients the loop
is busier than a server's would be and every extra CPU microsecond queues more: `bench.gateway_server`
measures the same app served by uvicorn with the clients in another process, as a client sees it.

Each request yields to the event loop once before it is handled, as a server reading a socket does; without
that, a route that never awaits runs its 64 "concurrent" clients one after another and measures no
queueing while the gated route (which awaits Redis) measures all of it. With it, 64 closed-loop clients on
one event loop see latency = 64 x the time one request takes (Little's law): the 64-client rows measure
queueing, and `added CPU us/req` (process CPU time per request, gated minus plain, all threads) is the
gateway's own cost per request, the figure that decides throughput, and the one least moved by other
processes on a shared machine (wall-clock percentiles are not: report the load average with them). At 1
client the thread CPU time of each request (client and app, settlement included; time the process was
descheduled excluded) gives a p50/p99 that a busy machine moves much less than the wall clock.

A third row per backend has the 64 clients pause between requests so that together they offer
`--paced-rate` requests/s (250 by default): 64 requests can be in flight at once, but the app is not
saturated, so the added latency is the gateway's own plus the extra queueing its CPU causes at that load.

    .venv/bin/python -m bench.gateway_overhead [--n 3000] [--paced-rate 250]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.gateway_server import ASK, ZeroLedger, add_bench_routes, bench_key, bench_settings, local_redis
from gateway import tokens
from gateway.gate import build_gateway
from settings import Settings

SENT: dict[str, float] = {}  # bench request id -> perf_counter when its response was out


class ResponseClock:
    """Outermost middleware: notes when the last body message of a response is handed to the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = dict(scope["headers"]).get(b"x-bench-id", b"").decode()

        async def clock(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                SENT[rid] = time.perf_counter()

        await self.app(scope, receive, clock)


class YieldingTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # a server reads the request from a socket: one trip through the event loop
        return await super().handle_async_request(request)


def build(settings: Settings) -> tuple[FastAPI, str]:
    key = bench_key(settings)
    gateway = build_gateway(settings=settings, ledger=ZeroLedger())
    app = FastAPI()
    app.state.services = SimpleNamespace(gateway=gateway, settings=settings)
    add_bench_routes(app)
    app.add_middleware(ResponseClock)
    gateway.start()
    return app, key


CPU_MS: list[float] = []  # thread CPU time per request (ms), 1 client only


async def measure(app: FastAPI, key: str, path: str, n: int, concurrency: int,
                  rate: float | None = None) -> tuple[list[float], float]:
    """Latencies (ms) of n requests from `concurrency` clients, and the process CPU time of the run (s).

    `rate` (requests/s in all): each client pauses between its requests (exponential, mean concurrency/rate),
    so the clients together offer that rate instead of saturating the app (closed loop, no pause)."""
    rng = random.Random(7)
    transport = YieldingTransport(app=app)
    out: list[float] = []
    CPU_MS.clear()
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        headers = {"Authorization": f"Bearer {key}"}

        async def worker(w: int, count: int) -> None:
            for i in range(count):
                if rate:
                    await asyncio.sleep(rng.expovariate(rate / concurrency))
                rid = f"{w}-{i}"
                c0, t0 = time.thread_time(), time.perf_counter()
                r = await client.post(path, json=ASK, headers={**headers, "X-Bench-Id": rid})
                out.append((SENT.pop(rid) - t0) * 1000)
                CPU_MS.append((time.thread_time() - c0) * 1000)
                assert r.status_code == 200, r.text

        t0 = time.process_time()
        await asyncio.gather(*(worker(w, n // concurrency) for w in range(concurrency)))
        cpu = time.process_time() - t0
    return out, cpu


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1]


async def run(backend: str, settings: Settings, n: int, paced_rate: float) -> list[str]:
    app, key = build(settings)
    rows = []
    for conc, rate in ((1, None), (64, None), (64, paced_rate)):
        for path in ("/plain", "/gated"):  # warm-up, at full concurrency: Redis connections are opened here
            await measure(app, key, path, 256, conc)
        gc.collect()
        gc.freeze()
        plain: list[float] = []
        gated: list[float] = []
        cpu = {"/plain": 0.0, "/gated": 0.0}
        cpu_ms: dict[str, list[float]] = {"/plain": [], "/gated": []}
        for _ in range(3):  # interleaved rounds: the noisy box drifts the same way for both
            for path, xs in (("/plain", plain), ("/gated", gated)):
                lat, used = await measure(app, key, path, n // 3, conc, rate)
                xs += lat
                cpu[path] += used
                cpu_ms[path] += CPU_MS
        gc.unfreeze()
        cpu_plain, cpu_gated = cpu["/plain"] / len(plain) * 1e6, cpu["/gated"] / len(gated) * 1e6
        clients = f"{conc} at {rate:.0f} req/s" if rate else f"{conc}"
        rows.append(
            f"| {backend} | {clients} | {pct(plain, 50):.2f} | {pct(plain, 99):.2f} | {pct(gated, 50):.2f} | "
            f"{pct(gated, 99):.2f} | **{pct(gated, 50) - pct(plain, 50):.2f}** | "
            f"**{pct(gated, 99) - pct(plain, 99):.2f}** | {cpu_plain:.0f} | {cpu_gated:.0f} | "
            f"**{cpu_gated - cpu_plain:.0f}** |"
        )
        print(rows[-1], flush=True)
        if conc == 1:
            p, g = cpu_ms["/plain"], cpu_ms["/gated"]
            print(f"|   | 1 client, thread CPU per request: plain p50/p99 {pct(p, 50):.2f}/{pct(p, 99):.2f} ms, "
                  f"gateway {pct(g, 50):.2f}/{pct(g, 99):.2f} ms, added **{pct(g, 50) - pct(p, 50):.2f}/"
                  f"{pct(g, 99) - pct(p, 99):.2f}** ms |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="requests per route per concurrency level")
    parser.add_argument("--paced-rate", type=float, default=250.0,
                        help="the 64 paced clients' rate in all (req/s): a load the app carries, not a saturating one")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    tokens.warm_up(("gpt-4o-mini",))
    print(f"nproc {os.cpu_count()}, load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| limits | clients | plain p50 ms | plain p99 ms | gateway p50 ms | gateway p99 ms | added p50 "
          "| added p99 | plain CPU us/req | gateway CPU us/req | added CPU us/req |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    asyncio.run(run("memory", bench_settings(tmp / "keys.db"), args.n, args.paced_rate))
    try:
        with local_redis() as url:
            if url is None:
                print("redis-server not installed: Redis rows skipped")
                return
            asyncio.run(run("redis", bench_settings(tmp / "keys.db", url), args.n, args.paced_rate))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
