"""Prometheus metrics: one registry per app (tests build several apps), served at `GET /metrics`.

The recording middleware feeds request-level figures (`observe`); other modules report events through the
module functions, which find the current app's metrics through a ContextVar set per request (or the most
recently started app's, outside a request), and also note the event on the request's context:

    from gateway import metrics
    metrics.rate_limited("key_rpm")      # a refusal by the gateway (= setting ctx.refusal; counted at the end)
    metrics.guard_action("block")        # the sanitizer's decision (also ctx.guard_action)
    metrics.cache(hit=True)              # a cache lookup (also ctx.cache_hit)
    metrics.circuit("gpt-4o-mini", "open")   # closed | half_open | open

Several serving processes (`skymarket serve --workers N`) use prometheus_client's multiprocess mode: the
parent sets PROMETHEUS_MULTIPROC_DIR for every worker, each writes its values to files there (as it counts,
so nothing waits to be flushed), and `/metrics`, whichever worker answers, adds up every process's files:
counters and histograms summed over all workers, past ones included; a circuit's state is the worst among the
workers alive (each has its own breakers). Figures read from one process's state at the scrape (the usage
backlog, Redis settlements waiting) are the answering worker's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway import context
from gateway.context import RequestContext

__all__ = ["CIRCUIT_STATES", "Metrics", "activate", "cache", "circuit", "current", "guard_action", "rate_limited"]

CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class Metrics:
    """The service's metrics in their own registry.

    Args:
        multiprocess_dir: PROMETHEUS_MULTIPROC_DIR when several processes serve (the values then live in files
            there, and `render` adds up every process's); None for one process.
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "skymarket_"
        self.requests = Counter(p + "requests", "Requests by route, endpoint and HTTP status",
                                ["route", "endpoint", "status"], registry=r)
        self.latency = Histogram(p + "request_latency_seconds", "Request latency by route", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram(p + "time_to_first_token_seconds", "Streams: time to the first token", ["route"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter(p + "tokens", "Tokens by model and kind (input includes cached)",
                              ["model", "kind"], registry=r)
        self.cost = Counter(p + "cost_usd", "Spend in USD by model (priced calls)", ["model"], registry=r)
        self.model_calls = Counter(p + "model_calls", "Model calls by model and outcome", ["model", "outcome"],
                                   registry=r)
        self.unpriced = Counter(p + "unpriced_calls", "Calls to models missing from the price table", ["model"],
                                registry=r)
        self.fallbacks = Counter(p + "fallbacks", "Requests answered by a fallback model", ["route"], registry=r)
        self.rate_limits = Counter(p + "rate_limited", "Requests refused by a gateway limit", ["kind"], registry=r)
        self.guard = Counter(p + "guard_actions", "Sanitizer decisions", ["action"], registry=r)
        self.cache = Counter(p + "cache_lookups", "Cache lookups by result", ["result"], registry=r)
        self.circuit = Gauge(p + "circuit_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)",
                             ["model"], registry=r, multiprocess_mode="livemax")
        self.alerts = Counter(p + "alerts", "Alerts raised by kind", ["kind"], registry=r)
        # Figures read from this process's state at each scrape (the usage backlog, Redis settlements): kept
        # apart, so that with several workers they show the answering worker's, beside everyone's counts.
        self._local: list[Collector] = []
        self.usage_counts = {
            "dropped": Counter(p + "usage_rows_dropped", "Usage rows lost: neither the ledger nor the spool could "
                               "keep them (must stay 0)", registry=r),
            "rejected": Counter(p + "usage_rows_rejected", "Usage rows the database refused as invalid, kept in "
                                "the spool's rejected/ folder", registry=r),
            "failures": Counter(p + "usage_write_failures", "Ledger writes that failed (their rows were kept)",
                                registry=r),
        }

    def observe(self, ctx: RequestContext) -> None:
        """Counts one finished request from its context."""
        self.requests.labels(ctx.route, ctx.endpoint, str(ctx.status)).inc()
        self.latency.labels(ctx.route).observe(ctx.latency_ms / 1000.0)
        if ctx.ttft_ms is not None:
            self.ttft.labels(ctx.route).observe(ctx.ttft_ms / 1000.0)
        if ctx.fallback:
            self.fallbacks.labels(ctx.route).inc()
        if ctx.refusal:
            self.rate_limits.labels(ctx.refusal).inc()
        for c in list(ctx.calls):
            self.model_calls.labels(c.model, "ok" if c.ok else "error").inc()
            if not c.ok:
                continue
            self.tokens.labels(c.model, "input").inc(c.input_tokens)
            self.tokens.labels(c.model, "cached").inc(c.cached_tokens)
            self.tokens.labels(c.model, "output").inc(c.output_tokens)
            if c.priced:
                self.cost.labels(c.model).inc(c.cost_usd)
            else:
                self.unpriced.labels(c.model).inc()

    def count_usage(self, what: str, n: int) -> None:
        """Counts usage rows `dropped` or `rejected`, or ledger write `failures` (gateway/durable.py)."""
        self.usage_counts[what].inc(n)

    def watch_backlog(self, pending: Callable[[], int], spooled: Callable[[], int]) -> None:
        """The usage ledger's backlog while the database is down (gateway/durable.py): rows waiting in memory
        and spool, and in spool files on disk, read at each scrape."""
        self._watch(_Backlog(pending, spooled))

    def watch_settlements(self, read: Callable[[], tuple[int, int]]) -> None:
        """Redis token settlements waiting in this process and those given up (older than their window):
        `read` returns (waiting, expired) at each scrape (gateway/limits_redis.py)."""
        self._watch(_Settlements(read))

    def _watch(self, collector: Collector) -> None:
        self._local.append(collector)
        self.registry.register(collector)

    def set_circuit(self, model: str, state: str) -> None:
        """A breaker's state (a `BreakerRegistry` listener)."""
        self.circuit.labels(model).set(CIRCUIT_STATES.get(state.replace("-", "_"), -1))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type (every worker's figures, added up)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        for collector in self._local:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """At shutdown: this process's live gauges (circuit states) leave the sum; its counters stay in it."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiprocess_dir))


class _Backlog(Collector):
    def __init__(self, pending: Callable[[], int], spooled: Callable[[], int]) -> None:
        self.pending, self.spooled = pending, spooled

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("skymarket_usage_backlog_rows", "Usage rows waiting for the ledger (memory and spool)",
                                value=self.pending())
        yield GaugeMetricFamily("skymarket_usage_spooled_rows", "Usage rows waiting in spool files on disk",
                                value=self.spooled())


class _Settlements(Collector):
    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        waiting, expired = self.read()
        yield GaugeMetricFamily("skymarket_limit_settlements_waiting",
                                "Token settlements waiting in this process for Redis", value=waiting)
        yield CounterMetricFamily("skymarket_limit_settlements_expired",
                                  "Token settlements given up: Redis was down past their window", value=expired)


_active: ContextVar[Metrics | None] = ContextVar("skymarket_metrics", default=None)
_last: list[Metrics] = []  # the most recently activated app's metrics, for events outside a request


def activate(m: Metrics, *, default: bool = False) -> object:
    """Makes `m` the metrics of the current context (the middleware, per request); `default`: also outside."""
    if default:
        _last[:] = [m]
    return _active.set(m)


def current() -> Metrics | None:
    return _active.get() or (_last[0] if _last else None)


def rate_limited(kind: str) -> None:
    """A gateway limit refused the request (kind: key_rpm, user_tpm, budget, ...). Inside a recorded request
    this only sets `ctx.refusal` (counted once when the request ends); outside one it counts at once."""
    ctx = context.current()
    if ctx is not None:
        ctx.refusal = kind
        return
    m = current()
    if m is not None:
        m.rate_limits.labels(kind).inc()


def guard_action(action: str, reasons: list[str] | tuple[str, ...] = ()) -> None:
    """The sanitizer's decision on this request (allow, flag, redact, block) and its reasons."""
    ctx = context.current()
    if ctx is not None:
        ctx.guard_action = action
        ctx.guard_reasons = list(reasons)
    m = current()
    if m is not None:
        m.guard.labels(action).inc()


def cache(hit: bool) -> None:
    """A cache lookup made for this request."""
    ctx = context.current()
    if ctx is not None and hit:
        ctx.cache_hit = True
    m = current()
    if m is not None:
        m.cache.labels("hit" if hit else "miss").inc()


def circuit(model: str, state: str) -> None:
    """A circuit breaker's state changed (closed, half_open, open)."""
    m = current()
    if m is not None:
        m.set_circuit(model, state)
