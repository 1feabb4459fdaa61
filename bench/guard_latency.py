"""Times `screen()` per chat turn and per listing, with the learned layer, on this machine.

Rows (ms per call; wall and thread-CPU p50/p99; gc on):
- chat turn, rules only (`learned=False`);
- chat turn, rules + learned layer with the turn's embedding passed in (what a caller that embeds the turn for
  search pays: the embedding is shared, the guard adds a dot product);
- chat turn, rules + learned layer embedding the turn itself (each text new: the cache never helps);
- the MiniLM query embedding alone, for scale;
- 4 listings through `screen_many(source="listing")`, new each time / seen before (probabilities cached).

Chat turns are our marketplace requests and 1,000-character mixes of them (texts only: no attack corpus is
needed); listings are `data/listings.jsonl`.

    .venv/bin/python bench/guard_latency.py [--n 2000] [--gc-freeze]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chains.guard import GuardConfig, screen, screen_many  # noqa: E402
from chains.guard.learned import embedding_text  # noqa: E402
from retrieval.embeddings import MiniLMEmbeddings  # noqa: E402

__all__ = ["main"]

CORPORA = ROOT / "bench" / "corpora"


def _turns(rng: random.Random) -> list[str]:
    lines: list[str] = []
    for name in ("benign_marketplace.txt", "benign_marketplace_holdout.txt", "benign_marketplace_hard.txt"):
        text = (CORPORA / name).read_text(encoding="utf-8")
        lines += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    longs = ["  ".join(rng.sample(lines, 30))[:1000] for _ in range(40)]
    out = lines + longs
    rng.shuffle(out)  # short requests and 1,000-character turns interleaved
    return out


def _time(fn: Callable[[int], object], n: int) -> tuple[float, float, float, float]:
    wall, cpu = [], []
    for i in range(n):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn(i)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - w0) / 1e6)
    wall.sort()
    cpu.sort()
    k = max(int(0.99 * n) - 1, 0)
    return statistics.median(wall), wall[k], statistics.median(cpu), cpu[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="timed calls per row")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up (gc stays on)")
    args = ap.parse_args()
    rng = random.Random(3)
    turns = _turns(rng)
    rows = [json.loads(ln) for ln in (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines()]
    listings = [f"{r['title']}\n{r['description']}" for r in rows]
    embedder = MiniLMEmbeddings(threads=1)
    vectors = embedder.embed_queries([embedding_text(t) for t in turns])
    rules_only, full = GuardConfig(learned=False), GuardConfig()
    for t, v in zip(turns, vectors, strict=True):  # warm-up: rules, tables, model, ONNX session
        screen(t, config=full, embedding=v)
    screen_many(listings[:32], config=full)  # the "seen before" row cycles through these
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    n, m = args.n, len(turns)
    fresh = iter(range(10**9))
    load0 = os.getloadavg()[0]
    results = {
        "chat turn, rules only": _time(lambda i: screen(turns[i % m], config=rules_only), n),
        "chat turn, rules + learned, embedding passed in": _time(
            lambda i: screen(turns[i % m], config=full, embedding=vectors[i % m]), n
        ),
        # a unique suffix per call: the probability cache never hits, the text is embedded every time
        "chat turn, rules + learned, embedded by the guard": _time(
            lambda i: screen(f"{turns[i % m]} #{next(fresh)}", config=full), min(n, 500)
        ),
        "MiniLM query embedding alone (for scale)": _time(
            lambda i: embedder.embed_queries([f"{turns[i % m]} #{next(fresh)}"]), min(n, 500)
        ),
        "4 listings, screen_many, never seen": _time(
            lambda i: screen_many([f"{t} #{next(fresh)}" for t in rng.sample(listings, 4)], config=full), min(n, 200)
        ),
        "4 listings, screen_many, seen before (cached)": _time(
            lambda i: screen_many(listings[(4 * i) % 32 : (4 * i) % 32 + 4], config=full), n
        ),
    }
    print("| screen() | calls | wall p50 | wall p99 | CPU p50 | CPU p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, vals in results.items():
        calls = n if "never" not in name and "by the guard" not in name and "alone" not in name else "fewer"
        print(f"| {name} | {calls} | " + " | ".join(f"{v:.3f} ms" for v in vals) + " |")
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(f"\nload average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1-minute); "
          f"gc {'frozen after warm-up' if args.gc_freeze else 'on'}")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}; Python {platform.python_version()}")


if __name__ == "__main__":
    main()
