"""Figures and tables of bench/overhead.py: phases merged per (target, mode, concurrency), targets checked.

    .venv/bin/python -m bench.overhead_report [bench/results/overhead.json]   # re-render a saved run
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["aggregate", "render"]

NAMES = {"a": "(a) ChatOpenAI direct", "b": "(b) bare LangServe", "c": "(c) our /chat", "d": "(d) LiteLLM proxy"}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]  # nearest rank


def aggregate(data: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, float]]:
    """One row per (target, mode, concurrency); latencies are ms added over the upstream's fixed latency."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for p in data["phases"]:
        groups[(p["target"], p["mode"], p["concurrency"])].append(p)
    nominal = {"invoke": data["upstream"]["total_ms"], "stream": data["upstream"]["first_token_ms"]}
    rows = {}
    for (target, mode, conc), ps in groups.items():
        key = "ttft_ms" if mode == "stream" else "lat_ms"
        values = [v - nominal[mode] for p in ps for v in p[key]]
        ok, wall = sum(p["ok"] for p in ps), sum(p["wall_s"] for p in ps)
        cpu = sum(p["server_cpu_s"] if p["server_cpu_s"] is not None else p["cpu_s"] for p in ps)
        rows[(target, mode, conc)] = {
            "n": ok, "errors": sum(p["errors"] for p in ps), "p50": _pct(values, 0.50), "p99": _pct(values, 0.99),
            "rps": ok / wall if wall else 0.0, "cpu_ms": 1000 * cpu / ok if ok else float("nan"),
            "gen_cpu_pct": 100 * sum(p["cpu_s"] for p in ps) / wall if wall else 0.0,
            "up_cpu_pct": 100 * sum(p["upstream_cpu_s"] for p in ps) / wall if wall else 0.0,
            "load": sum(p["loadavg"] for p in ps) / len(ps),
        }
    return rows


def _table(rows: dict[tuple[str, str, int], dict[str, float]], mode: str) -> list[str]:
    what = "time to first token" if mode == "stream" else "invoke latency"
    out = [f"{mode}: added ms = {what} minus the upstream's fixed {'50' if mode == 'stream' else '100'} ms", "",
           "| clients | target | n (err) | p50 added | p99 added | p50 − (a) | req/s | server CPU ms/req "
           "| loadgen CPU % | upstream CPU % | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for conc in sorted({k[2] for k in rows if k[1] == mode}):
        base = rows.get(("a", mode, conc))
        for t in "abcd":
            r = rows.get((t, mode, conc))
            if r is None:
                continue
            vs_a = f"{r['p50'] - base['p50']:+.1f}" if base and t != "a" else "–"
            cpu = f"{r['cpu_ms']:.2f}" + (" (client)" if t == "a" else "")
            out.append(f"| {conc} | {NAMES[t]} | {r['n']} ({r['errors']}) | {r['p50']:.1f} | {r['p99']:.1f} | {vs_a} "
                       f"| {r['rps']:.0f} | {cpu} | {r['gen_cpu_pct']:.0f} | {r['up_cpu_pct']:.0f} "
                       f"| {r['load']:.1f} |")
    return out


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _targets(rows: dict[tuple[str, str, int], dict[str, float]]) -> list[str]:
    out = ["Targets ((c) against (b) and (d), same run):", ""]
    for mode in ("invoke", "stream"):
        concs = sorted({k[2] for k in rows if k[1] == mode})
        for conc in concs:
            b, c, d = (rows.get((t, mode, conc)) for t in "bcd")
            if not (b and c):
                continue
            cpu, rps = c["cpu_ms"] / b["cpu_ms"], c["rps"] / b["rps"]
            line = (f"- {mode} c={conc}: CPU/req (c)/(b) = {cpu:.2f}× ({_verdict(cpu <= 1.5)} ≤1.5×); "
                    f"throughput (c)/(b) = {rps:.0%} ({_verdict(rps >= 0.75)} ≥75%)")
            if conc == 16:
                p99 = c["p99"] / b["p99"] if b["p99"] > 0 else float("inf")
                line += f"; p99 added (c)/(b) = {p99:.2f}× ({_verdict(p99 < 2)} <2×)"
            if d:
                beats = c["p99"] < d["p99"] and c["rps"] >= d["rps"]
                line += (f"; vs LiteLLM p99 {c['p99']:.1f} vs {d['p99']:.1f} ms, {c['rps']:.0f} vs {d['rps']:.0f} "
                         f"req/s ({'beats' if beats else 'does NOT beat'})")
            out.append(line)
    return out


def render(rows: dict[tuple[str, str, int], dict[str, float]], data: dict[str, Any]) -> str:
    """Markdown: one table per mode, the targets, the notes and the machine's load."""
    lines: list[str] = []
    for mode in ("invoke", "stream"):
        lines += [*_table(rows, mode), ""]
    lines += [*_targets(rows), ""]
    (l0, l5, l15), (e0, _, _) = data.get("loadavg_start_end", [(0, 0, 0), (0, 0, 0)])
    lines.append(f"Load average at start {l0:.2f} / {l5:.2f} / {l15:.2f} (1/5/15 min), at end {e0:.2f}.")
    lines += [f"Note: {n}" for n in data.get("notes", [])]
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "overhead.json")
    saved = json.loads(path.read_text())
    print(render(aggregate(saved), saved))
