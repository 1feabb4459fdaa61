"""Latency and throughput of /search/invoke over HTTP, beside a bare LangServe route and the raw in-process
cost of one query embedding + one Chroma query, all in the same run (the machine is shared: compare ratios).

    .venv/bin/python -m bench.search_latency --data shipped   # or 10k / 100k (index built by ingest first)

The server (bench/search_server.py) runs in its own process; the load comes from this process with asyncio
+ httpx, C concurrent clients each sending its next request when the previous one returns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--requests", type=int, default=300, help="per measurement")
    parser.add_argument("--clients", default="1,16", help="c=1 is always measured (interleaved with raw)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds for the c=1 rows")
    args = parser.parse_args()
    qs = queries()
    port = free_port()
    env = dict(os.environ)
    server = subprocess.Popen([sys.executable, "-m", "bench.search_server", "--data", args.data, "--port", str(port)],
                              env=env, cwd=ROOT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.post(f"{url}/const/invoke", json={"input": {"query": "x"}}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench server did not start")
            time.sleep(0.5)
        # warm both routes over HTTP
        asyncio.run(load(url, "/search/invoke", 2, 40, qs))
        asyncio.run(load(url, "/const/invoke", 2, 40, qs))
        rows: dict[str, Any] = {}
        # c=1: interleaved rounds (bare, search, raw), so the three see the same background load
        raw = Raw(args.data, qs)
        c1: dict[str, list[float]] = {"bare route c=1": [], "/search c=1": [], "raw embed+chroma (in-process)": []}
        chunk = max(10, args.requests // args.rounds)
        for _ in range(args.rounds):
            c1["bare route c=1"] += asyncio.run(load(url, "/const/invoke", 1, chunk, qs))[0]
            c1["/search c=1"] += asyncio.run(load(url, "/search/invoke", 1, chunk, qs))[0]
            c1["raw embed+chroma (in-process)"] += raw.run(chunk)
        for name, lat in c1.items():
            rows[name] = (pct(lat, 50), pct(lat, 99), 1 / statistics.mean(lat))
        for c in [int(x) for x in args.clients.split(",") if int(x) > 1]:
            for name, path in [("bare route", "/const/invoke"), ("/search", "/search/invoke")]:
                lat, rps = asyncio.run(load(url, path, c, args.requests, qs))
                rows[f"{name} c={c}"] = (pct(lat, 50), pct(lat, 99), rps)
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"machine: {machine()}; data: {args.data}; {args.requests} requests per row; load average {_load()}")
    print(f"{'':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s}")
    for name, (p50, p99, rps) in rows.items():
        print(f"{name:34s} {p50:8.1f} {p99:8.1f} {rps:8.1f}")
    base = rows["raw embed+chroma (in-process)"][0] + rows["bare route c=1"][0]
    print(f"ratio /search p50 c=1 / (raw p50 + bare route p50 c=1) = {rows['/search c=1'][0] / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
