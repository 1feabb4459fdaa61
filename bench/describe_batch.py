"""How long `/describe/batch` takes for N shipped listings, over HTTP, cold and then from the cache.

    .venv/bin/python -m bench.describe_batch --backend fake --delay 0.5      # OpenAI-style latency
    .venv/bin/python -m bench.describe_batch --backend local                 # the embedded SmolLM2-135M

`fake`: tests/fake_openai.py answers every chat completion after `--delay` seconds (moderation answers at
once); `local`: the llama.cpp server that `make serve` starts (LOCAL_MODEL_THREADS / LOCAL_MODEL_PARALLEL from
the environment or the flags). Items are the first N listings of data/listings.jsonl (all distinct), sent
as one `POST /describe/batch`; the cache lives in a temporary file, so the first run is cold and the second
is all hits. Prints one result line per run (markdown, ready for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from chains.local_llm import free_port
from server import create_app
from settings import ROOT, load_settings

__all__ = ["main"]

FIELDS = ("title", "category", "city", "services", "certifications", "insured", "features", "price_from_usd",
          "price_unit")
FAKE_KEY = "sk-bench-" + "0" * 24


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} CPUs (nproc), {model}, Python {platform.python_version()}"


def listings(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (ROOT / "data" / "listings.jsonl").read_text().splitlines()[:n]]
    return [{k: r[k] for k in FIELDS} for r in rows]


def serve(app: Any) -> tuple[str, uvicorn.Server]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def run(url: str, items: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    r = httpx.post(f"{url}/describe/batch", json={"inputs": items}, timeout=7200)
    r.raise_for_status()
    return time.perf_counter() - started, r.json()["output"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["fake", "local"], default="fake")
    p.add_argument("-n", type=int, default=100)
    p.add_argument("--delay", type=float, default=0.5, help="fake: seconds per chat completion")
    p.add_argument("--concurrency", type=int, default=None, help="DESCRIBE_CONCURRENCY (default: the setting)")
    p.add_argument("--threads", type=int, default=None, help="local: LOCAL_MODEL_THREADS")
    p.add_argument("--parallel", type=int, default=None, help="local: LOCAL_MODEL_PARALLEL")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="describe-bench-"))
    overrides: dict[str, Any] = {
        "describe_cache_path": tmp / "cache.db", "usage_db_file": tmp / "usage.db",
        "usage_spool_dir": tmp / "usage_spool",
        "audit_file": tmp / "audit.jsonl", "gateway_keys_file": tmp / "keys.db",
        "ai_rate_limit_tpm": 10_000_000, "ai_rate_limit_rpm": 10_000,  # measure describe, not the gateway
    }
    if args.concurrency:
        overrides["describe_concurrency"] = args.concurrency
    fake = None
    if args.backend == "fake":
        from tests.fake_openai import FakeOpenAI, Reply

        fake = FakeOpenAI(default=Reply(
            "Aerial photos and video for homes, events and businesses, delivered ready to share. "
            "Tell us the address and the shots you need, and request a quote on SkyMarket.",
            first_token_delay=args.delay)).start()
        overrides.update(openai_api_key=FAKE_KEY, openai_base_url=fake.url, local_model_enabled=False,
                         ai_max_retries=0)
    else:
        overrides.update(openai_api_key=None)
        if args.threads:
            overrides["local_model_threads"] = args.threads
        if args.parallel:
            overrides["local_model_parallel"] = args.parallel
    settings = load_settings(**overrides)
    items = listings(args.n)
    url, server = serve(create_app(settings))
    try:
        label = (f"fake OpenAI, {args.delay * 1000:.0f} ms/call" if fake else
                 f"local {settings.local_model_name}, {settings.local_model_threads} thread(s), "
                 f"{settings.local_model_parallel} slot(s)")
        slots = settings.describe_concurrency if fake else min(settings.describe_concurrency,
                                                                settings.local_model_parallel)
        print(f"# {machine()}\n# backend: {label}; concurrency {slots}; n={len(items)}")
        for run_name in ("cold", "cached"):
            seconds, out = run(url, items)
            words = [len(o["description"].split()) for o in out if o["description"]]
            summary = (f"errors {sum(1 for o in out if o['error'])}, grounded {sum(o['grounded'] for o in out)}, "
                       f"cached {sum(o['cached'] for o in out)}, "
                       f"median words {statistics.median(words) if words else 0:.0f}")
            if fake is not None:
                summary += f", upstream calls so far {fake.count()}"
            print(f"| {label} | {run_name} | {len(items)} | {seconds:.1f} s | "
                  f"{seconds / len(items) * 1000:.0f} ms | {summary} |")
    finally:
        server.should_exit = True
        if fake is not None:
            fake.stop()


if __name__ == "__main__":
    main()
