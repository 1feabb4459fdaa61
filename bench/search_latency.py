"""Latency and throughput of /search/invoke over HTTP, beside a bare LangServe route and the raw in-process
cost of one query embedding + one Chroma query, all in the same run (the machine is shared: compare ratios).

    .venv/bin/python -m bench.search_latency --data shipped   # or 10k / 100k (index built by ingest first)

The server (bench/search_server.py) runs in its own process; the load comes from this process with asyncio
+ httpx, C concurrent clients each sending its next request when the previous one returns.

Every /search row is measured twice, because the service caches answers (SEARCH_CACHE_SIZE):
  repeated  the 82 texts of bench/search_queries.yaml (+ " insured"), cycled: after the first pass every
            request is a cache hit (the server's hit counts are printed per row);
  unique    the same texts with a request number appended ("roof inspection near Troy 1234"), never sent
            twice in a run: every request misses every cache (parse, vector candidates, answer) and pays for
            the whole search, embedding and Chroma query included.
The ratio is printed for both; the unique one is what the service costs for a query it has not seen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from bench.search_common import ROOT, bench_settings, machine
from chains.local_llm import free_port
from retrieval.embeddings import build_embeddings
from retrieval.store import build_vectorstore


def queries() -> list[str]:
    qs = [q["q"] for q in yaml.safe_load((ROOT / "bench" / "search_queries.yaml").read_text())]
    return qs + [f"{q} insured" for q in qs]  # 82 distinct texts, cycled


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p)) * 1000


class Unique:
    """Query texts never sent before in this run: a bench query plus a running number."""

    def __init__(self, qs: list[str]) -> None:
        self.qs = qs
        self.n = 0

    def take(self, count: int) -> list[str]:
        out = [f"{self.qs[(self.n + i) % len(self.qs)]} {self.n + i}" for i in range(count)]
        self.n += count
        return out


async def load(url: str, path: str, clients: int, total: int, qs: list[str]) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client: httpx.AsyncClient) -> None:
        for n in counter:
            body = {"input": {"query": qs[n % len(qs)], "limit": 10}}
            started = time.perf_counter()
            r = await client.post(f"{url}{path}", json=body)
            latencies.append(time.perf_counter() - started)
            r.raise_for_status()

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - started
    return latencies, total / wall


class Raw:
    """One query embedding + one Chroma top-10 query, in process (what any vector search must at least do)."""

    def __init__(self, data: str, qs: list[str]) -> None:
        settings = bench_settings(data)
        self.emb = build_embeddings(settings=settings)
        self.store = build_vectorstore(settings=settings, embeddings=self.emb)
        self.qs = qs
        self.n = 0
        self.run(5)

    def run(self, count: int) -> list[float]:
        out = []
        for _ in range(count):
            started = time.perf_counter()
            self.store.similarity_search_by_vector(self.emb.embed_query(self.qs[self.n % len(self.qs)]), k=10)
            out.append(time.perf_counter() - started)
            self.n += 1
        return out


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _stats(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/stats", timeout=10).json())


def _server_cpu(pid: int) -> float:
    """CPU seconds the server process has used so far (all threads, user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Row:
    """One line of the table: latencies, throughput, CPU per request on both sides, cache counters."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.wall = self.server_cpu = self.client_cpu = 0.0
        self.counts: dict[str, int] = {}

    def line(self, name: str) -> str:
        n = len(self.lat)
        p50, p99, rps = pct(self.lat, 50), pct(self.lat, 99), n / self.wall
        cpu = f"{1000 * self.server_cpu / n:7.1f} {1000 * self.client_cpu / n:7.1f}" if self.server_cpu else " " * 15
        return f"{name:30s} {p50:7.1f} {p99:7.1f} {rps:7.1f} {cpu}  {self._cache()}"

    def _cache(self) -> str:
        c = self.counts
        if not c or c["hits"] + c["misses"] == 0:
            return ""
        note = f"{100 * c['hits'] / (c['hits'] + c['misses']):.0f}% hits"
        return note + (f", {c['items'] / c['batches']:.1f} embeddings/batch" if c["batches"] else "")


def measure(row: Row, url: str, pid: int, path: str, clients: int, texts: list[str], total: int) -> None:
    """Adds `total` requests at `clients` concurrency to `row`."""
    before, cpu, own = _stats(url), _server_cpu(pid), time.process_time()
    lat, rps = asyncio.run(load(url, path, clients, total, texts))
    row.server_cpu += _server_cpu(pid) - cpu
    row.client_cpu += time.process_time() - own
    after = _stats(url)
    row.counts = {k: row.counts.get(k, 0) + after[k] - before[k] for k in after}
    row.lat += lat
    row.wall += total / rps


def _start(data: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bench.search_server", "--data", data, "--port", str(port), *extra]
    server = subprocess.Popen(cmd, env=dict(os.environ), cwd=ROOT)
    deadline = time.monotonic() + 600
    while True:
        try:
            probe = httpx.post(f"http://127.0.0.1:{port}/const/invoke", json={"input": {"query": "x"}}, timeout=2)
            # the real app loads the index after start-up: wait until /readyz says it is in
            ready = "--service" not in extra or httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).is_success
            if probe.is_success and ready:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit("bench server did not start")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--requests", type=int, default=300, help="per measurement")
    parser.add_argument("--clients", default="1,16", help="c=1 is always measured (interleaved with raw)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds for the c=1 rows")
    parser.add_argument("--service", action="store_true",
                        help="server: the real app (server.create_app: gateway, recording middleware, guard)")
    parser.add_argument("--langserve-json", action="store_true",
                        help="server: LangServe's own response encoder (the service uses pydantic's dump)")
    args = parser.parse_args()
    qs, unique = queries(), Unique(queries())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = _load()
    server = _start(args.data, port, (["--langserve-json"] if args.langserve_json else [])
                    + (["--service"] if args.service else []))
    rows: dict[str, Row] = {}
    try:
        # warm both routes over HTTP, and the cache with every repeated text
        asyncio.run(load(url, "/search/invoke", 2, len(qs), qs))
        asyncio.run(load(url, "/search/invoke", 2, 40, unique.take(40)))
        asyncio.run(load(url, "/const/invoke", 2, 40, qs))
        # c=1: interleaved rounds (bare, search repeated, search unique, raw): they see the same background load
        raw = Raw(args.data, qs)
        names = ["bare route c=1", "/search repeated c=1", "/search unique c=1", "raw embed+chroma (in-process)"]
        rows.update((name, Row()) for name in names)
        chunk = max(10, args.requests // args.rounds)
        for _ in range(args.rounds):
            measure(rows[names[0]], url, server.pid, "/const/invoke", 1, qs, chunk)
            measure(rows[names[1]], url, server.pid, "/search/invoke", 1, qs, chunk)
            measure(rows[names[2]], url, server.pid, "/search/invoke", 1, unique.take(chunk), chunk)
            rows[names[3]].lat += (took := raw.run(chunk))
            rows[names[3]].wall += sum(took)
        for c in [int(x) for x in args.clients.split(",") if int(x) > 1]:
            for name, path, texts in [
                (f"bare route c={c}", "/const/invoke", qs),
                (f"/search repeated c={c}", "/search/invoke", qs),
                (f"/search unique c={c}", "/search/invoke", unique.take(args.requests)),
            ]:
                measure(rows.setdefault(name, Row()), url, server.pid, path, c, texts, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=20)
    flags = ("; server with --langserve-json" if args.langserve_json else "") + (
        "; the real app (--service)" if args.service else "")
    print(f"machine: {machine()}; data: {args.data}; {args.requests} requests per row; "
          f"load average {load_before} before, {_load()} after{flags}")  # fmt: skip
    print(f"{'':30s} {'p50 ms':>7s} {'p99 ms':>7s} {'req/s':>7s} {'CPU ms/request':>15s}")
    print(f"{'':30s} {'':7s} {'':7s} {'':7s} {'server':>7s} {'client':>7s}")
    for name, row in rows.items():
        print(row.line(name))
    base = pct(rows["raw embed+chroma (in-process)"].lat, 50) + pct(rows["bare route c=1"].lat, 50)
    for kind in ("unique", "repeated"):
        ratio = pct(rows[f"/search {kind} c=1"].lat, 50) / base
        print(f"ratio /search {kind} p50 c=1 / (raw p50 + bare route p50 c=1) = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
