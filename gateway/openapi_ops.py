"""The bodies of the ops routes, for /openapi.json: `/usage`, `/dashboard/data`, `/readyz`; `/metrics` is text.

The routes build plain dicts (gateway/reports.py, gateway/dashboard/figures.py, services.py); these models
only document them. tests/test_contract.py checks real responses against them (schemathesis), so a field
added to a route without its line here fails there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OPS_BODIES", "DashboardFigures", "Readiness", "UsageReport"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")  # documented as closed: a new field must be documented too


class UsageRow(_Closed):
    group: str = Field(description="the day (YYYY-MM-DD), key name, model or route")
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    tokens: int = Field(description="input + output")
    cost_usd: float
    errors: int
    error_rate: float = Field(description="errors / requests")
    fallbacks: int
    fallback_rate: float
    unpriced: int = Field(description="calls to models missing from the price table (counted as $0)")
    p50_ms: float | None
    p95_ms: float | None


class UsageReport(_Closed):
    """`GET /usage`: requests, tokens, cost, errors and latency per group."""

    by: Literal["day", "key", "model", "route"]
    since: str = Field(description="ISO date-time, UTC")
    until: str | None
    rows: list[UsageRow]


class Totals(_Closed):
    requests: int
    cost_usd: float
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    tokens: int
    error_rate: float | None = Field(description="a fraction of requests; null without any request")
    fallback_rate: float | None
    rate_limited_rate: float | None
    guard_block_rate: float | None
    cache_hit_rate: float | None
    p50_ms: float | None
    p95_ms: float | None


class RouteTokens(_Closed):
    input: int
    output: int
    requests: int


class Latency(_Closed):
    p50_ms: list[float | None] = Field(description="per bucket")
    p95_ms: list[float | None]


class Rates(_Closed):
    error: list[float | None] = Field(description="per bucket: a fraction of its requests, null when it has none")
    fallback: list[float | None]
    rate_limited: list[float | None]
    guard_block: list[float | None]
    cache_hit: list[float | None]


class TopKey(_Closed):
    key: str
    cost_usd: float
    requests: int


class DashboardFigures(_Closed):
    """`GET /dashboard/data`: one window's figures, per bucket (minute, hour or day), oldest first."""

    window: Literal["1h", "24h", "7d", "30d"]
    unit: Literal["minute", "hour", "day"]
    generated_at: str
    buckets: list[str] = Field(description="each bucket's start, ISO, UTC")
    empty: bool
    threshold_usd_per_day: float
    spent_today_usd: float
    totals: Totals
    spend_by_model: dict[str, list[float]] = Field(description="model -> USD per bucket")
    tokens_by_route: dict[str, RouteTokens]
    latency: Latency
    rates: Rates
    top_keys: list[TopKey]
    circuits: dict[str, Literal["closed", "open", "half_open"]]


class Readiness(_Closed):
    """`GET /readyz`: 200 when every part is ready, else 503 with the problems (and while shutting down)."""

    ready: bool
    parts: dict[str, bool]
    problems: dict[str, str]
    degraded: dict[str, dict[str, Any]]  # down, but answering correctly: the usage ledger, the limits' Redis
    circuits: dict[str, Literal["closed", "open", "half_open"]]
    draining: bool = False  # present (true) once SIGTERM arrived: the process takes no new traffic


# (path, method) -> (status, model) documented as the response body
OPS_BODIES: dict[tuple[str, str], list[tuple[int, type[BaseModel]]]] = {
    ("/usage", "get"): [(200, UsageReport)],
    ("/dashboard/data", "get"): [(200, DashboardFigures)],
    ("/readyz", "get"): [(200, Readiness), (503, Readiness)],
}
