"""Two serving workers against one (issue 18), in the same run: throughput and latency on /search and /chat.

    .venv/bin/python -m bench.workers [--clients 1,16,64] [--duration 8] [--rounds 3] [--routes search,chat]

Both services run as `make serve` runs them (`skymarket serve --workers 1` and `--workers 2`, real processes,
uvloop + httptools), side by side, with what several workers need and one worker gets too, so the two differ in
the worker count only: limits on a throw-away redis-server, the shipped index served by `chroma run` (a copy of
data/chroma in a temporary folder), a fake upstream with a fixed latency for the models (bench/upstream.py,
`--upstream-ms`, 10 ms per answer by default), keyless loopback access (development), limits far above the load.
Every request is new (a number in its text): /search runs with its answer and query-vector caches off by
default (`--search-cache` keeps them) and no two queries share an embedding batch slot, so each request embeds
its query, asks Chroma and ranks. /chat is one model call behind the gateway: the service's own CPU around
the upstream's wait. With 100 ms answers, 16 clients cannot keep even one worker busy (16 / 0.1 s = 160
requests/s at most, about 0.6 of a core here): the throughput would measure the upstream, not the workers;
10 ms answers leave the service the bottleneck, as the comparison needs.

Load: bench/loadgen.py in its own process (raw HTTP/1.1 keep-alive clients on uvloop), `--clients` each sending
back to back for `--duration` s. Rows alternate 1 and 2 workers per round, which one goes first alternating too,
so the shared machine's slow spells hit both alike. Reported per route and client count: requests/s of each
and their ratio (target: >= 1.7 at 16+ clients on 2 cores), p50 and p99 latency, the service's CPU ms per
request (process tree), and the cores the service used against those the bench's other processes used (load
generator, Chroma server, upstream: they run on the same two cores, so they bound what 2 workers can get).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.bare_app import BENCH_API_KEY
from bench.gateway_server import local_redis
from bench.overhead import _free_port, _tree_cpu_s, _wait_port
from tests.services import ChromaServer
from tests.serving.support import Served, clean_env, serve

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# `#N#`: each request's own number (loadgen's `unique`), so no answer, vector or embedding batch is shared
BODIES = {
    "search": ("/search/invoke", {"input": {"query": "roof inspection near Troy under $300 #N#", "limit": 10}}),
    "chat": ("/chat/invoke", {"input": {"messages": [{"role": "user", "content": "How do I list a drone? #N#"}]}}),
}


@contextmanager
def _process(cmd: list[str], log: Path, **kw: Any) -> Iterator[subprocess.Popen[Any]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=out, **kw)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


class Loadgen:
    """The load generator process; `helpers` are the bench's other processes (Chroma, the upstream, Redis),
    whose CPU during each phase is counted too: they share the two cores with the service."""

    def __init__(self, proc: subprocess.Popen[Any], helpers: list[int]) -> None:
        self.proc, self.helpers = proc, helpers
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # {"ready": true}

    def phase(self, served: Served, route: str, clients: int, duration: float) -> dict[str, Any]:
        path, body = BODIES[route]
        cmd = {"port": served.port, "path": path, "body": body, "headers": {}, "stream": False, "unique": True,
               "concurrency": clients, "duration": duration, "max_requests": 10**9}
        cpu0, helpers0 = _tree_cpu_s(served.proc.pid), sum(map(_tree_cpu_s, self.helpers))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        out: dict[str, Any] = json.loads(self.proc.stdout.readline())
        out["server_cpu_s"] = _tree_cpu_s(served.proc.pid) - cpu0
        out["helpers_cpu_s"] = sum(map(_tree_cpu_s, self.helpers)) - helpers0
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="skymarket-workers-bench-"))
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        redis_url = stack.enter_context(local_redis())
        if redis_url is None:
            raise SystemExit("needs redis-server (apt-get install redis-server)")
        shutil.copytree(ROOT / "data" / "chroma", tmp / "chroma" / "db")
        chroma = ChromaServer(tmp / "chroma").start()
        stack.callback(chroma.stop)
        up_port = _free_port()
        upstream = stack.enter_context(_process(
            [PY, "-m", "bench.upstream", "--port", str(up_port), "--scale", str(args.upstream_ms / 100)],
            tmp / "upstream.log", stdout=subprocess.DEVNULL))
        if not _wait_port(up_port, upstream, 30):
            raise SystemExit(f"the upstream did not start: {tmp / 'upstream.log'}")
        services: dict[int, Served] = {}
        for workers in (1, 2):
            caches = {} if args.search_cache else {"search_cache_size": 0, "search_vector_cache_size": 0}
            files = tmp / f"{workers}-worker"
            env = clean_env(openai_api_key=BENCH_API_KEY, openai_base_url=f"http://127.0.0.1:{up_port}/v1",
                            local_model_enabled="false", ai_max_retries=0, redis_url=redis_url,
                            chroma_host=chroma.host, chroma_port=chroma.port, usage_db_file=files / "usage.db",
                            audit_file=files / "audit" / "audit.jsonl", gateway_keys_file=files / "keys.db",
                            ai_rate_limit_rpm=10**7, ai_rate_limit_tpm=10**10, gateway_global_rpm=10**7,
                            gateway_search_global_rpm=10**7, gateway_guard_global_rpm=10**7,
                            gateway_global_tpm=10**10, describe_cache_enabled="false", **caches)
            services[workers] = stack.enter_context(serve(env, workers=workers, log=tmp / f"serve-{workers}.log"))
        helpers = [p.pid for p in (chroma.proc, upstream) if p is not None]
        gen = Loadgen(stack.enter_context(_process([PY, "-m", "bench.loadgen"], tmp / "loadgen.log",
                                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                                   bufsize=1)), helpers)
        for route in args.routes:  # warm-up: first requests, caches of the tokenizer and the index
            for workers in (1, 2):
                gen.phase(services[workers], route, 8, args.warmup)
        for route in args.routes:
            for clients in args.clients:
                for r in range(args.rounds):
                    for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                        out = gen.phase(services[workers], route, clients, args.duration)
                        rows.append({"route": route, "clients": clients, "round": r, "workers": workers, **out,
                                     "loadavg": os.getloadavg()[0]})
                        print(f"{route:6} c={clients:<3} r={r} w={workers} ok={out['ok']:<5} err={out['errors']} "
                              f"{out['ok'] / out['wall_s']:7.1f} req/s load={os.getloadavg()[0]:.1f}",
                              file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows}


def summarize(rows: list[dict[str, Any]]) -> list[dict[Any, Any]]:
    out = []
    keys = sorted({(r["route"], r["clients"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for route, clients in keys:
        line: dict[Any, Any] = {"route": route, "clients": clients}
        for w in (1, 2):
            mine = [r for r in rows if (r["route"], r["clients"], r["workers"]) == (route, clients, w)]
            lat = [x for r in mine for x in r["lat_ms"]]
            ok = sum(r["ok"] for r in mine)
            line[w] = {"rps": statistics.median(r["ok"] / r["wall_s"] for r in mine), "p50": _pct(lat, 50),
                       "p99": _pct(lat, 99), "errors": sum(r["errors"] for r in mine),
                       "cpu_ms": 1000 * sum(r["server_cpu_s"] for r in mine) / max(ok, 1),
                       "cores": sum(r["server_cpu_s"] for r in mine) / sum(r["wall_s"] for r in mine),
                       "rest": sum(r["cpu_s"] + r["helpers_cpu_s"] for r in mine) / sum(r["wall_s"] for r in mine)}
        line["ratio"] = line[2]["rps"] / line[1]["rps"] if line[1]["rps"] else float("nan")
        out.append(line)
    return out


def render(summary: list[dict[Any, Any]]) -> str:
    lines = ["| route | clients | 1 worker req/s | 2 workers req/s | ratio | p50 ms 1w / 2w | p99 ms 1w / 2w "
             "| CPU ms/req 1w / 2w | cores used by the service 1w / 2w | by the bench's other processes 1w / 2w "
             "| errors | met (>= 1.7x at 16+) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in summary:
        one, two = s[1], s[2]
        met = ("yes" if s["ratio"] >= 1.7 else "no") if s["clients"] >= 16 else "-"
        lines.append(f"| {s['route']} | {s['clients']} | {one['rps']:.1f} | {two['rps']:.1f} | {s['ratio']:.2f} "
                     f"| {one['p50']:.1f} / {two['p50']:.1f} | {one['p99']:.1f} / {two['p99']:.1f} "
                     f"| {one['cpu_ms']:.2f} / {two['cpu_ms']:.2f} | {one['cores']:.2f} / {two['cores']:.2f} "
                     f"| {one['rest']:.2f} / {two['rest']:.2f} | {one['errors']} / {two['errors']} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16, 64])
    parser.add_argument("--routes", type=lambda v: v.split(","), default=["search", "chat"])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--search-cache", action="store_true", help="keep the search caches on")
    parser.add_argument("--upstream-ms", type=float, default=10.0,
                        help="the fake model's answer time (10: 16 clients keep one worker busy; 100 does not)")
    parser.add_argument("--json", type=Path, help="also write every phase's figures here")
    args = parser.parse_args()
    if not set(args.routes) <= set(BODIES):
        parser.error(f"--routes: from {', '.join(BODIES)}")
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result))
    print(f"machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}")
    print(render(summarize(result["rows"])))


if __name__ == "__main__":
    main()
