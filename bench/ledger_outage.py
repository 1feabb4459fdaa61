"""Usage rows across PostgreSQL outages under load (issue 21): 0 rows lost, none twice, recovery without a restart.

    .venv/bin/python -m bench.ledger_outage                      # outages 1,5,15,30,60 s at 50 req/s, ~4 min
    .venv/bin/python -m bench.ledger_outage --outages 1,3 --rate 20 --mode immediate    # a quick check

Starts its own throw-away PostgreSQL (tests/services.py), the fixed-latency upstream (bench/upstream.py) and
the service (`uvicorn --factory server:create_app`, one worker, DATABASE_URL on that PostgreSQL). For each
outage length: an open-loop load of `--rate` /chat/invoke requests per second (each with its own
X-Request-ID), PostgreSQL stopped (`--mode fast`: sessions cut; `immediate`: a crash) `--before` seconds in,
started again after the outage, the load kept `--after` seconds more; then it waits until /readyz no longer
shows the ledger degraded (polled every 0.1 s throughout) and compares the ledger with the answers:

    missing     requests answered (any status) without their row      target 0
    duplicates  rows stored more than once                             target 0
    rollup      usage_hourly's request count minus the rows            target 0
    dropped     skymarket_usage_rows_dropped_total                      target 0
    recovered   seconds from PostgreSQL back to an empty backlog (no restart)

Traffic stays on 127.0.0.1. JSON results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from chains.local_llm import free_port
from gateway.ledger import hourly_table, usage_table

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
ASK = {"input": {"messages": [{"role": "user", "content": "Which drone services can I book in Troy?"}]}}


def _wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class Run:
    """One outage: the load, the readiness poller, and PostgreSQL stopped and started on schedule."""

    def __init__(self, url: str, pg: Any, tag: str, args: argparse.Namespace, outage_s: float) -> None:
        self.url, self.pg, self.tag, self.args, self.outage_s = url, pg, tag, args, outage_s
        self.answers: dict[str, int] = {}
        self.max_backlog = self.max_spooled = 0
        self.degraded_seen = False
        self.back_at = 0.0

    async def request(self, client: httpx.AsyncClient, i: int) -> None:
        rid = f"{self.tag}-{i:06d}"
        try:
            r = await client.post(self.url + "/chat/invoke", json=ASK, headers={"X-Request-ID": rid}, timeout=60)
            self.answers[rid] = r.status_code
        except httpx.HTTPError:
            self.answers[rid] = 0  # no answer: nothing the service owes a row for

    async def poll(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ledger = (await client.get(self.url + "/readyz", timeout=5)).json()["degraded"].get("usage_ledger")
            except (httpx.HTTPError, ValueError):
                ledger = None
            if ledger:
                self.degraded_seen = True
                self.max_backlog = max(self.max_backlog, ledger["backlog_rows"])
                self.max_spooled = max(self.max_spooled, ledger["spooled_rows"])
            await asyncio.sleep(0.1)

    async def outage(self) -> None:
        await asyncio.sleep(self.args.before)
        await asyncio.to_thread(self.pg.halt, mode=self.args.mode)
        await asyncio.sleep(self.outage_s)
        await asyncio.to_thread(self.pg.resume)
        self.back_at = time.monotonic()

    async def run(self) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=self.args.max_inflight, max_keepalive_connections=self.args.max_inflight)
        async with httpx.AsyncClient(limits=limits) as client, httpx.AsyncClient() as poller:
            stop = asyncio.Event()
            polling = asyncio.create_task(self.poll(poller, stop))
            outage = asyncio.create_task(self.outage())
            total_s = self.args.before + self.outage_s + self.args.after
            n, t0, tasks = int(total_s * self.args.rate), time.monotonic(), []
            for i in range(n):  # open loop: request i leaves at i / rate whatever the answers do
                await asyncio.sleep(max(0.0, t0 + i / self.args.rate - time.monotonic()))
                tasks.append(asyncio.create_task(self.request(client, i)))
            await asyncio.gather(*tasks, outage)
            recovered = None
            deadline = time.monotonic() + self.args.recovery_timeout
            while time.monotonic() < deadline:
                if not (await poller.get(self.url + "/readyz", timeout=10)).json()["degraded"]:
                    recovered = time.monotonic() - self.back_at
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await polling
            metrics = (await poller.get(self.url + "/metrics", timeout=10)).text
        return self.compare(n, recovered, metrics)

    def compare(self, sent: int, recovered: float | None, metrics: str) -> dict[str, Any]:
        engine = create_engine(self.pg.url)
        with engine.connect() as conn:
            stored = [r for (r,) in conn.execute(select(usage_table.c.request_id)
                                                 .where(usage_table.c.request_id.like(self.tag + "-%")))]
            rows_all = conn.execute(select(func.count()).select_from(usage_table)).scalar() or 0
            rolled = conn.execute(select(func.sum(hourly_table.c.requests))).scalar() or 0
        engine.dispose()
        answered = {rid for rid, status in self.answers.items() if status}
        dropped = next((float(line.split()[-1]) for line in metrics.splitlines()
                        if line.startswith("skymarket_usage_rows_dropped_total")), None)
        return {
            "outage_s": self.outage_s, "mode": self.args.mode, "rate": self.args.rate, "sent": sent,
            "ok_200": sum(1 for s in self.answers.values() if s == 200),
            "other": sorted({s for s in self.answers.values() if s != 200}),
            "rows": len(stored), "missing": len(answered - set(stored)), "duplicates": len(stored) - len(set(stored)),
            "rollup_minus_rows": int(rolled) - int(rows_all), "degraded_seen": self.degraded_seen,
            "max_backlog": self.max_backlog, "max_spooled": self.max_spooled,
            "recovered_s": None if recovered is None else round(recovered, 2), "dropped": dropped,
        }


def _env(pg_url: str, upstream: str, tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "AI_", "SKYMARKET_", "REDIS", "DATABASE", "USAGE_", "GATEWAY_"))}
    high = str(10**9)
    env.update(
        SKYMARKET_ENV="development", DATABASE_URL=pg_url, OPENAI_API_KEY="sk-bench-" + "0" * 24,
        OPENAI_BASE_URL=upstream, AI_MAX_RETRIES="0", LOCAL_MODEL_ENABLED="false", AI_RATE_LIMIT_RPM=high,
        AI_RATE_LIMIT_TPM=high, GATEWAY_GLOBAL_RPM=high, GATEWAY_GLOBAL_TPM=high,
        USAGE_SPOOL_DIR=str(tmp / "spool"), USAGE_RETRY_S=str(args.retry_s), AUDIT_FILE=str(tmp / "audit.jsonl"),
        DESCRIBE_CACHE_PATH=str(tmp / "describe.db"), NO_PROXY="127.0.0.1,localhost",
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", default="1,5,15,30,60", help="outage lengths in seconds, comma-separated")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second offered")
    parser.add_argument("--mode", choices=("fast", "immediate"), default="fast", help="how PostgreSQL stops")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before each outage")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after each outage")
    parser.add_argument("--retry-s", type=float, default=1.0, help="USAGE_RETRY_S of the service")
    parser.add_argument("--max-inflight", type=int, default=64, help="connections the load may open")
    parser.add_argument("--recovery-timeout", type=float, default=300.0)
    args = parser.parse_args()

    from tests.services import PostgresServer  # the tests' throw-away cluster: initdb in a temp folder

    tmp = Path(tempfile.mkdtemp(prefix="ledger-outage-"))
    procs: list[subprocess.Popen[Any]] = []
    pg = PostgresServer().start()
    results = []
    try:
        up_port, app_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", str(up_port)], cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        log = (tmp / "server.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "server:create_app", "--host", "127.0.0.1", "--port",
             str(app_port), "--log-level", "warning"],
            cwd=ROOT, env=_env(pg.url, f"http://127.0.0.1:{up_port}/v1", tmp, args), stdout=log,
            stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{app_port}"
        _wait_http(f"http://127.0.0.1:{up_port}/stats", procs[0])
        _wait_http(url + "/healthz", procs[1])
        for k, outage_s in enumerate(float(x) for x in args.outages.split(",")):
            result = asyncio.run(Run(url, pg, f"ob{k}-{int(time.time())}", args, outage_s).run())
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        pg.stop()
    print(f"\nserver log: {tmp / 'server.log'}\n")
    print("| outage s | mode | req/s | sent | 200 | rows | missing | duplicates | rollup - rows | max backlog "
          "| max spooled | recovered s | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['outage_s']:g} | {r['mode']} | {r['rate']:g} | {r['sent']} | {r['ok_200']} | {r['rows']} "
              f"| {r['missing']} | {r['duplicates']} | {r['rollup_minus_rows']} | {r['max_backlog']} "
              f"| {r['max_spooled']} | {r['recovered_s']} | {r['dropped']} |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ledger_outage-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nresults: {path}")
    failed = [r for r in results if r["missing"] or r["duplicates"] or r["rollup_minus_rows"] or r["dropped"]
              or r["recovered_s"] is None]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
