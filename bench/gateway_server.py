"""Added latency of the whole gateway, measured as a client sees it: a real server, clients in another process.

The app under test is served by uvicorn (uvloop and httptools, as `make serve` runs it) in its own process:
the same trivial POST route with and without `route_dependencies("chat")` (auth + scope + body/token
estimate + budget + limits + the settlement after the response), with limits in memory or on a local Redis
(redis-server started here on a free port). The load comes from this process through `bench.loadgen`'s
raw HTTP/1.1 keep-alive clients on uvloop (about 0.1 ms of CPU per request, so the load generator is not
what queues), one keep-alive connection per client, opened in the warm-up and kept for every round:

    1 client      back to back;
    64 clients    back to back: the server is saturated, so latency = 64 x its time per request (Little's
                  law), a measure of queueing, not of the gateway;
    64 paced      each client pauses between requests (exponential) so that together they offer
                  `--paced-rate` requests/s: 64 requests can be in flight at once, the server is not
                  saturated, and the added latency is the gateway's own plus the queueing its CPU causes.

Routes alternate in short rounds (`--rounds`, 10 per row: plain, gated, plain, ...) so the shared machine's
slow spells (its speed varies by a third from minute to minute) hit both alike.
`server CPU us/req` is the server process's CPU time (all threads, from /proc) per request.
`bench.gateway_overhead` measures the same app in one process through httpx's ASGI transport.

    .venv/bin/python -m bench.gateway_server [--n 3000] [--paced-rate 250] [--rounds 10] [--rows 1,64,paced]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI, Request
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.loadgen import run_phase
from chains.local_llm import free_port
from gateway import tokens
from gateway.context import ModelCall, RequestContext
from gateway.deps import RateLimitHeaders, route_dependencies
from gateway.gate import build_gateway
from gateway.keys import build_key_store
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ASK = {"input": {"messages": [{"role": "user", "content": "Which drone services can I book in Troy this week?"}]}}


class ZeroLedger:
    def spend_since(self, since: Any, *, key_name: str | None = None) -> float:
        return 0.0


class FakeRecorder:
    """What `gateway.recording.RecordingMiddleware` does for the gateway: a request context on the state,
    its status set when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = RequestContext(request_id="bench", route="chat")
        scope.setdefault("state", {})["ctx"] = ctx

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
            await send(message)

        await self.app(scope, receive, record)


def _used(request: Request) -> None:
    """The model call a chat request would have made: what the settlement replaces the reservation with."""
    ctx = request.state.ctx
    ctx.add_call(ModelCall(model="gpt-4o-mini", ok=True, input_tokens=20, output_tokens=10, cost_usd=1e-5))


def add_bench_routes(app: FastAPI) -> None:
    """`/plain` and `/gated` (the same route behind the gateway), under the recorder and the headers
    middleware (outside the recorder, as in server.py)."""

    @app.post("/plain")
    async def plain(request: Request) -> dict[str, int]:
        _used(request)
        return {"ok": 1}

    @app.post("/gated", dependencies=route_dependencies("chat"))
    async def gated(request: Request) -> dict[str, int]:
        _used(request)
        return {"ok": 1}

    app.add_middleware(FakeRecorder)
    app.add_middleware(RateLimitHeaders)


def bench_settings(keys_file: Path, redis_url: str | None = None) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, skymarket_env="production", openai_api_key=SecretStr("sk-bench-" + "0" * 24),
        gateway_keys_file=keys_file, local_model_enabled=False, gateway_global_rpm=50_000,
        gateway_global_tpm=10**12, redis_url=redis_url,
    )


def bench_key(settings: Settings) -> str:
    store = build_key_store(settings=settings)
    store.create_table()
    return store.create(name=f"bench-{time.time_ns()}", scopes=["chat"], rpm=50_000, tpm=10**12,
                        daily_budget_usd=1e9)


def create_app() -> FastAPI:
    """The served app (`uvicorn --factory bench.gateway_server:create_app`), configured by BENCH_GW_KEYS_FILE
    and BENCH_GW_REDIS_URL (unset: limits in memory). The heap is frozen after start-up, as `make serve` does."""
    settings = bench_settings(Path(os.environ["BENCH_GW_KEYS_FILE"]), os.environ.get("BENCH_GW_REDIS_URL"))
    gateway = build_gateway(settings=settings, ledger=ZeroLedger())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        tokens.warm_up((settings.ai_model_primary,))
        gc.collect()
        gc.freeze()
        yield
        await gateway.aclose()
        gateway.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.services = SimpleNamespace(gateway=gateway, settings=settings)
    add_bench_routes(app)
    return app


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1]


class Server:
    """uvicorn serving `create_app` in its own process."""

    def __init__(self, keys_file: Path, redis_url: str | None) -> None:
        self.port = free_port()
        self.connections: list[Any] = []  # the load generator's keep-alive connections, reused across phases
        env = {**os.environ, "BENCH_GW_KEYS_FILE": str(keys_file)}
        if redis_url:
            env["BENCH_GW_REDIS_URL"] = redis_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "bench.gateway_server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.post(f"http://127.0.0.1:{self.port}/plain", json=ASK, timeout=2).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("bench server did not start")

    def stop(self) -> None:
        for connection in self.connections:
            connection.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _phase(server: Server, key: str, path: str, n: int, conc: int,
                 rate: float | None) -> tuple[list[float], float, float]:
    """Latencies (ms) of n requests, the server's CPU seconds and the load generator's over them."""
    cmd = {"port": server.port, "path": path, "body": ASK, "headers": {"authorization": f"Bearer {key}"},
           "stream": False, "concurrency": conc, "duration": 1e9, "max_requests": n, "rate": rate}
    cpu = _server_cpu(server.proc.pid)
    out = await run_phase(cmd, connections=server.connections)
    if out["errors"]:
        raise SystemExit(f"{path}: {out['errors']} errors, e.g. {out['error_sample']}")
    return out["lat_ms"], _server_cpu(server.proc.pid) - cpu, out["cpu_s"]


async def rows(backend: str, server: Server, key: str, n: int, paced_rate: float, which: list[str],
               rounds: int) -> None:
    wanted = {"1": (1, None), "64": (64, None), "paced": (64, paced_rate)}
    for conc, rate in (wanted[w] for w in which):
        for path in ("/plain", "/gated"):  # warm-up at full concurrency: connections (and Redis's) open here
            await _phase(server, key, path, 512, conc, None)
        lat: dict[str, list[float]] = {"/plain": [], "/gated": []}
        cpu = {"/plain": 0.0, "/gated": 0.0}
        client_cpu = 0.0
        for _ in range(rounds):  # short alternating rounds: the shared machine's slow spells hit both routes
            for path in ("/plain", "/gated"):
                xs, used, own = await _phase(server, key, path, n // rounds, conc, rate)
                lat[path] += xs
                cpu[path] += used
                client_cpu += own
        p, g = lat["/plain"], lat["/gated"]
        cp, cg = cpu["/plain"] / len(p) * 1e6, cpu["/gated"] / len(g) * 1e6
        clients = f"{conc} at {rate:.0f} req/s" if rate else f"{conc}"
        print(f"| {backend} | {clients} | {pct(p, 50):.2f} | {pct(p, 99):.2f} | {pct(g, 50):.2f} | {pct(g, 99):.2f} | "
              f"**{pct(g, 50) - pct(p, 50):.2f}** | **{pct(g, 99) - pct(p, 99):.2f}** | {cp:.0f} | {cg:.0f} | "
              f"**{cg - cp:.0f}** | {client_cpu / (len(p) + len(g)) * 1e6:.0f} |", flush=True)


@contextmanager
def local_redis() -> Iterator[str | None]:
    """A throw-away redis-server on a free loopback port (no persistence): its URL, None if not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _redis_time(url: str) -> None:
    """Redis's own time per script call (INFO commandstats), to tell it from the client's."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    for name, figures in sorted(stats.items()):
        if name in ("cmdstat_evalsha", "cmdstat_eval"):
            print(f"redis-server {name[8:]}: {figures['calls']} calls, {figures['usec_per_call']:.1f} us per call")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="requests per route per row")
    parser.add_argument("--paced-rate", type=float, default=250.0, help="the 64 paced clients' rate in all (req/s)")
    parser.add_argument("--rows", default="1,64,paced", help="which rows: 1, 64, paced (comma-separated)")
    parser.add_argument("--backends", default="memory,redis")
    parser.add_argument("--rounds", type=int, default=10, help="alternating plain/gated rounds per row")
    args = parser.parse_args()
    import uvloop

    tmp = Path(tempfile.mkdtemp(prefix="gw-server-bench-"))
    keys_file = tmp / "keys.db"
    key = bench_key(bench_settings(keys_file))
    print(f"nproc {os.cpu_count()}, load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| limits | clients | plain p50 ms | plain p99 ms | gateway p50 ms | gateway p99 ms | added p50 | added p99 "
          "| plain server CPU us/req | gateway server CPU us/req | added CPU us/req | load generator CPU us/req |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for backend in args.backends.split(","):
            with local_redis() if backend == "redis" else nullcontext(None) as url:
                if backend == "redis" and url is None:
                    print("redis-server not installed: Redis rows skipped")
                    break
                server = Server(keys_file, url)
                try:
                    uvloop.run(rows(backend, server, key, args.n, args.paced_rate, args.rows.split(","),
                                    args.rounds))
                finally:
                    server.stop()
                if url:
                    _redis_time(url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
