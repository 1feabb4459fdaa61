"""The dashboard's figures (the JSON of `GET /dashboard/data`), built from per-bucket aggregates.

    {"window": "7d", "unit": "day", "buckets": ["2026-11-21", ...], "empty": false,
     "threshold_usd_per_day": 100.0, "spent_today_usd": 1.23,
     "totals": {"requests": .., "cost_usd": .., "tokens": .., "error_rate": .., "fallback_rate": ..,
                "rate_limited_rate": .., "guard_block_rate": .., "cache_hit_rate": .., "p50_ms": .., "p95_ms": ..},
     "spend_by_model": {"gpt-4o-mini": [per bucket USD], ...},
     "tokens_by_route": {"chat": {"input": .., "output": ..}, ...},
     "latency": {"p50_ms": [per bucket], "p95_ms": [per bucket]},
     "rates": {"error": [...], "fallback": [...], "rate_limited": [...], "guard_block": [...], "cache_hit": [...]},
     "top_keys": [{"key": .., "cost_usd": .., "requests": ..}, ...],
     "circuits": {"gpt-4o-mini": "closed", ...}}

Rates are fractions of the bucket's requests (null for a bucket without any).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.dashboard.queries import Bucket, percentile
from gateway.ledger import NONE

__all__ = ["COST", "TOP_KEYS", "build_figures"]

TOP_KEYS = 10
# positions in Bucket.groups values
REQ, IN, CACHED, OUT, COST, ERR, FALLBACK, LIMITED, BLOCKED, HITS = range(10)


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def build_figures(window: str, unit: str, buckets: list[Bucket], *, threshold: float, spent_today: float,
                  circuits: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """The dashboard's JSON.

    Args:
        window: 1h | 24h | 7d | 30d.
        unit: the bucket unit (minute | hour | day).
        buckets: every bucket of the window, oldest first (empty ones included).
        threshold: AI_COST_ALERT_THRESHOLD, USD per UTC day.
        spent_today: USD spent since midnight UTC.
        circuits: circuit-breaker state per model.
        now: the time of the figures.
    """
    sums = [0.0] * 10
    per_bucket: list[list[float]] = []
    spend: dict[str, list[float]] = {}
    routes: dict[str, dict[str, int]] = {}
    keys: dict[str, list[float]] = {}
    hist: dict[float, int] = {}
    p50: list[float | None] = []
    p95: list[float | None] = []
    for i, bucket in enumerate(buckets):
        b = bucket.totals()
        for (dim, name), v in bucket.groups.items():
            if dim == "model":
                if v[COST] or name != NONE:
                    spend.setdefault(name, [0.0] * len(buckets))[i] += v[COST]
            elif dim == "route":
                r = routes.setdefault(name, {"input": 0, "output": 0, "requests": 0})
                r["input"] += int(v[IN])
                r["output"] += int(v[OUT])
                r["requests"] += int(v[REQ])
            elif dim == "key":
                k = keys.setdefault(name, [0.0, 0.0])
                k[0] += v[COST]
                k[1] += v[REQ]
        per_bucket.append(b)
        sums = [x + y for x, y in zip(sums, b, strict=True)]
        for edge, count in bucket.latency.items():
            hist[edge] = hist.get(edge, 0) + count
        p50.append(percentile(bucket.latency, 50))
        p95.append(percentile(bucket.latency, 95))
    n = sums[REQ]
    top = sorted(keys.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:TOP_KEYS]
    return {
        "window": window,
        "unit": unit,
        "generated_at": now.isoformat(timespec="seconds"),
        "buckets": [b.start for b in buckets],
        "empty": n == 0,
        "threshold_usd_per_day": threshold,
        "spent_today_usd": round(spent_today, 6),
        "totals": {
            "requests": int(n), "cost_usd": round(sums[COST], 6), "input_tokens": int(sums[IN]),
            "cached_tokens": int(sums[CACHED]), "output_tokens": int(sums[OUT]),
            "tokens": int(sums[IN] + sums[OUT]), "error_rate": _rate(sums[ERR], n),
            "fallback_rate": _rate(sums[FALLBACK], n), "rate_limited_rate": _rate(sums[LIMITED], n),
            "guard_block_rate": _rate(sums[BLOCKED], n), "cache_hit_rate": _rate(sums[HITS], n),
            "p50_ms": percentile(hist, 50), "p95_ms": percentile(hist, 95),
        },
        "spend_by_model": {m: [round(c, 6) for c in v] for m, v in sorted(spend.items())},
        "tokens_by_route": dict(sorted(routes.items())),
        "latency": {"p50_ms": p50, "p95_ms": p95},
        "rates": {
            name: [_rate(b[i], b[REQ]) for b in per_bucket]
            for name, i in (("error", ERR), ("fallback", FALLBACK), ("rate_limited", LIMITED),
                            ("guard_block", BLOCKED), ("cache_hit", HITS))
        },
        "top_keys": [{"key": k, "cost_usd": round(v[0], 6), "requests": int(v[1])} for k, v in top],
        "circuits": dict(sorted(circuits.items())),
    }
