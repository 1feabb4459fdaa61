"""Request-level recording for every feature route: one ledger row, one audit line, metrics, alert checks.

`RecordingMiddleware` (pure ASGI, so streams pass through untouched) opens a `RequestContext` for each
POST under a feature's path (`/chat/invoke`, `/chat/c/<hash>/stream`, `/search`, ...), puts it in the
ContextVar and on `request.state.ctx`, sets the `X-Request-ID` response header on every response (the
caller's own id when well-formed), and when the response has been sent hands the context to the
observability's `BatchWriter` (gateway/writer.py: one thread, one ledger transaction per batch). Token
usage reaches the context from the `UsageCallback` that `Observability.instrument` binds to each served chain.
Ledger rows go through a `DurableLedger` (gateway/durable.py): a database outage delays them, never loses them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import context, metrics
from gateway.alerts import Alerts, build_alerts
from gateway.audit import _SECRET, AuditLog, build_audit
from gateway.context import RequestContext
from gateway.durable import Drained, DurableLedger
from gateway.ledger import Ledger, UsageRow, build_ledger
from gateway.metrics import Metrics
from gateway.pricing import LivePriceTable, PriceTable
from gateway.usage import UsageCallback, instrument
from gateway.writer import BatchWriter

__all__ = ["Observability", "RecordingMiddleware", "build_observability", "request_id_from", "to_row"]

log = logging.getLogger("skymarket.recording")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{7,63}$")


def request_id_from(value: str | None) -> str:
    """The caller's X-Request-ID when well-formed (8-64 of A-Z a-z 0-9 . _ : -, not key-shaped), else a new one."""
    if value and _REQUEST_ID.match(value) and not _SECRET.search(value):
        return value
    return uuid.uuid4().hex


def to_row(ctx: RequestContext, *, user_hash: str | None) -> UsageRow:
    """The ledger row of a finished request."""
    error = ctx.status >= 500 or (bool(ctx.calls) and not ctx.answered)
    return UsageRow(
        request_id=ctx.request_id, ts=dt.datetime.fromtimestamp(ctx.started_at, dt.UTC), route=ctx.route,
        endpoint=ctx.endpoint, status=ctx.status, latency_ms=ctx.latency_ms, key_name=ctx.key_name,
        user_hash=user_hash, model=ctx.model, models_tried=",".join(ctx.models_tried), fallback=ctx.fallback,
        error=error, error_type=ctx.error_type, input_tokens=ctx.input_tokens, cached_tokens=ctx.cached_tokens,
        output_tokens=ctx.output_tokens, cost_usd=ctx.cost_usd, priced=ctx.priced, ttft_ms=ctx.ttft_ms,
        cache_hit=ctx.cache_hit, guard_action=ctx.guard_action, refusal=ctx.refusal,
    )


@dataclass
class Observability:
    """Prices, the usage callback, ledger, audit log, metrics and alerts of one app."""

    prices: PriceTable
    usage: UsageCallback
    ledger: Ledger
    audit: AuditLog
    metrics: Metrics
    alerts: Alerts
    durable: DurableLedger  # the ledger behind a backlog that survives outages
    features: set[str] = field(default_factory=set)  # first path segments whose POSTs are recorded

    writer: BatchWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = BatchWriter(self.finish_many, name="usage-writer", idle=self.durable.retry, idle_s=0.25)

    def start(self) -> None:
        """Creates the ledger's tables (connects), takes over a spool an earlier run left, and starts the
        writer; called from the app's lifespan. A database that is down is not fatal: rows wait for it."""
        try:
            self.ledger.create()
        except Exception as exc:
            log.error("usage ledger unavailable at start (%s): rows wait until it answers", type(exc).__name__)
            self.durable.mark_down(exc)
        self.durable.start()
        metrics.activate(self.metrics, default=True)
        self.writer.start()

    def drain(self) -> Drained:
        """Writes down every request finished so far, for a shutdown: the queue through the writer (which
        stops), then the backlog to the ledger if it answers, else to the spool (replayed at the next start).
        Drops nothing unless the database and the disk both fail (counted). Safe to call more than once.

        Returns:
            How many waiting rows were written, spooled, dropped.
        """
        self.writer.stop()
        return self.durable.drain()

    def stop(self) -> None:
        """`drain()` (ledger rows, audit lines, metrics), then closes the ledger and the metrics."""
        done = self.drain()
        if done.spooled or done.dropped:
            log.warning("usage ledger at shutdown: %d row(s) spooled for the next start, %d dropped",
                        done.spooled, done.dropped)
        self.ledger.close()
        self.metrics.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Blocks until every request finished so far is written down (or waits in the backlog)."""
        return self.writer.flush(timeout)

    def instrument(self, chains: dict[str, Runnable]) -> None:
        """Binds the usage callback to every chain (in place) and records requests to their routes."""
        for name, chain in chains.items():
            chains[name] = instrument(chain, self.usage)
            self.features.add(name.split("/")[0])

    def finish(self, ctx: RequestContext) -> None:
        """Writes one finished request down at once. Never raises."""
        self.finish_many([ctx])

    def finish_many(self, ctxs: Sequence[RequestContext]) -> None:
        """Writes finished requests down: metrics, ledger rows (one transaction), audit lines, the alert check.

        Never raises: accounting must not fail a request.
        """
        for ctx in ctxs:
            try:
                self.metrics.observe(ctx)
            except Exception:
                log.exception("metrics failed for request %s", ctx.request_id)
        rows = []
        for ctx in ctxs:
            try:
                rows.append(to_row(ctx, user_hash=self.audit.user_hash(ctx.user_id)))
            except Exception:
                log.exception("no ledger row for request %s", ctx.request_id)
                self.durable.lose(1, "its row could not be made")
        self.durable.write(rows)  # never raises: a database outage delays rows, never loses them
        for ctx in ctxs:
            try:
                self.audit.record(ctx)
            except Exception as exc:
                log.error("audit write failed for request %s: %s", ctx.request_id, type(exc).__name__)
        try:
            self.alerts.maybe_check()
        except Exception as exc:
            log.error("alert check failed: %s", type(exc).__name__)


def build_observability(settings: Any, *, features: Iterable[str] = ()) -> Observability:
    """Builds everything from settings; nothing connects until `start()`."""
    prices = LivePriceTable(settings.pricing_file, local={settings.local_model_name})  # re-read after an edit
    ledger = build_ledger(settings)
    m = Metrics(multiprocess_dir=getattr(settings, "prometheus_multiproc_dir", None))
    durable = DurableLedger(ledger, spool_dir=settings.usage_spool_dir, max_rows=settings.usage_backlog_max_rows,
                            spool_after_s=settings.usage_spool_after_s, retry_s=settings.usage_retry_s,
                            count=m.count_usage)
    m.watch_backlog(lambda: durable.pending, lambda: durable.spooled)
    return Observability(
        prices=prices, usage=UsageCallback(prices, keep_text=settings.audit_text), ledger=ledger,
        audit=build_audit(settings), metrics=m, alerts=build_alerts(settings, ledger, m), durable=durable,
        features=set(features),
    )


def _route(path: str) -> tuple[str, str]:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "", ""
    return parts[0], parts[-1][:16] if len(parts) > 1 else ""


class RecordingMiddleware:
    """Pure ASGI middleware: X-Request-ID on every response; a recorded context for feature POSTs."""

    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.obs = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(Headers(scope=scope).get("x-request-id"))
        route, endpoint = _route(scope.get("path", ""))
        tracked = scope.get("method") == "POST" and route in self.obs.features
        ctx = RequestContext(request_id=rid, route=route, endpoint=endpoint)
        scope.setdefault("state", {})["ctx"] = ctx

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctx.status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        if not tracked:
            await self.app(scope, receive, send_with_id)
            return
        token = context.bind(ctx)
        mtoken = metrics.activate(self.obs.metrics)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # The response may have opened already (a stream: LangServe sent 200, then an error event).
            ctx.status = 500
            raise
        finally:
            ctx.finished_mono = time.perf_counter()
            metrics._active.reset(mtoken)  # type: ignore[arg-type]
            context.reset(token)
            self.obs.writer.submit(ctx)  # written by the writer thread, with others (gateway/writer.py)
