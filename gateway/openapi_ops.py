"""The bodies of the ops routes, for /openapi.json: `/usage`, `/dashboard/data`, `/readyz`, `/admin/config`;
`/metrics` is text.

The routes build plain dicts (gateway/reports.py, gateway/dashboard/figures.py, services.py); these models
only document them. tests/test_contract.py checks real responses against them (schemathesis), so a field
added to a route without its line here fails there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OPS_BODIES", "DashboardFigures", "EffectiveConfig", "Readiness", "UsageReport"]


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
    # down, but answering correctly: the usage ledger, the limits' Redis; `config`: files whose last edit was
    # refused (their previous version serves)
    degraded: dict[str, dict[str, Any]]
    circuits: dict[str, Literal["closed", "open", "half_open"]]
    draining: bool = False  # present (true) once SIGTERM arrived: the process takes no new traffic


class SettingValue(_Closed):
    value: Any = Field(description="the value in force; secrets are `********` (null when unset)")
    source: Literal["default", "environment", ".env", "argument"]
    env: str = Field(description="the environment variable that sets it")


class ResolvedModel(_Closed):
    name: str
    temperature: float
    max_tokens: int
    local: bool = Field(description="the embedded local model")


class FeaturePreset(_Closed):
    preset: str = Field(description="the key in data/presets.yaml")
    routes: list[str]
    values: dict[str, Any] = Field(description="the preset as in force (null fields take the global setting)")
    models: list[ResolvedModel] = Field(description="the models tried in order, with the parameters they get")


class Version(_Closed):
    sha256: str = Field(description="the first 12 hex digits of the file's SHA-256")
    mtime: str = Field(description="modification time, ISO, UTC")


class RejectedEdit(_Closed):
    sha256: str | None = None
    mtime: str | None = None
    error: str = Field(description="why the edit was refused; the previous version stays in force")


class FileState(_Closed):
    path: str
    sha256: str | None = Field(description="the version in force (null: not loaded by this process)")
    mtime: str | None
    on_disk: Version | None = Field(description="the file now (null: missing)")
    rejected: RejectedEdit | None = None


class EffectiveConfig(_Closed):
    """`GET /admin/config`: what this server runs with, secrets masked."""

    environment: Literal["development", "production"]
    settings: dict[str, SettingValue]
    presets: dict[str, FeaturePreset] = Field(description="per feature: assistant, describe, search")
    prompts: dict[str, FileState]
    data_files: dict[str, FileState] = Field(description="re-read after an edit: presets, claims, moderation, "
                                                         "pricing, guard_patterns, guard_confusables, guard_learned")


# (path, method) -> (status, model) documented as the response body
OPS_BODIES: dict[tuple[str, str], list[tuple[int, type[BaseModel]]]] = {
    ("/usage", "get"): [(200, UsageReport)],
    ("/dashboard/data", "get"): [(200, DashboardFigures)],
    ("/readyz", "get"): [(200, Readiness), (503, Readiness)],
    ("/admin/config", "get"): [(200, EffectiveConfig)],
}
