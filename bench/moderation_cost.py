"""CPU per moderation call from the event loop: the OpenAI SDK's async client (how chains.moderation called
the endpoint until 2026-12-07) against the moderator's own aiohttp POST (how it calls it now), in the same run,
alternating, against the bench upstream (bench/upstream.py) on 127.0.0.1.

    .venv/bin/python -m bench.moderation_cost [--rounds 5] [--n 300]

One new one-sentence text per call (nothing served from the memo). CPU is this process's
(time.process_time), per call, medians over rounds; the upstream runs in its own process and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from chains.moderation import LocalModerator, OpenAIModerator
from settings import ROOT

__all__ = ["main"]

MODEL, KEY = "omni-moderation-latest", "sk-bench-moderation"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cpu_ms(call: Callable[[str], Awaitable[Any]], n: int, numbers: itertools.count[int]) -> float:
    started = time.process_time()
    for _ in range(n):
        await call(f"Who can inspect my roof in Troy? (ref {next(numbers)})")
    return (time.process_time() - started) / n * 1e3


async def _run(url: str, rounds: int, n: int) -> dict[str, list[float]]:
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=2, timeout=30.0)
    ours = OpenAIModerator(api_key=KEY, base_url=url, model=MODEL, timeout_s=30.0, max_retries=2,
                           fallback=LocalModerator(ROOT / "data" / "moderation.yaml"))

    async def by_sdk(text: str) -> Any:
        raw = await sdk.moderations.with_raw_response.create(model=MODEL, input=[text])
        return raw.http_response.json()

    async def by_moderator(text: str) -> Any:
        verdicts = await ours.acheck_each([text])
        assert verdicts[0].source == "openai", verdicts
        return verdicts

    calls = {"OpenAI SDK (AsyncOpenAI)": by_sdk, "chains.moderation (aiohttp)": by_moderator}
    numbers = itertools.count()
    for call in calls.values():  # warm-up: connection pools, imports
        await _cpu_ms(call, 30, numbers)
    out: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            out[name].append(await _cpu_ms(call, n, numbers))
    await ours.aclose()
    await sdk.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU per moderation call: OpenAI SDK vs the moderator's POST")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=300, help="calls per round and way")
    args = parser.parse_args()
    port = _free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", str(port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        results = asyncio.run(_run(f"http://127.0.0.1:{port}/v1", args.rounds, args.n))
    finally:
        upstream.kill()
    print(f"CPU ms per call, median of {args.rounds} rounds of {args.n} (this process only)")
    base = statistics.median(next(iter(results.values())))
    for k, (name, values) in enumerate(results.items()):
        med = statistics.median(values)
        print(f"  {name:32s} {med:6.3f} ms" + (f"   ({base / med:.2f}x less than the SDK)" if k else ""))


if __name__ == "__main__":
    main()
