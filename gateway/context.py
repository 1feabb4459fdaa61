"""The per-request record every gateway part writes to, and the usage recorder reads at the end.

One `RequestContext` per HTTP request, created by the recording middleware (`gateway.recording`) before any
route code runs. It lives in a `ContextVar` (so LangChain callbacks, which run deep inside a chain, find it)
and on `request.state.ctx` (so FastAPI dependencies find it through the request).

Who writes what (gateway engineers: set these fields, do not replace the object):

    auth dependency      ctx.key_name = "web-app"; ctx.user_id = request.headers["X-User-Id"]  (raw id;
                         only its keyed hash is ever written down)
    limits / budgets     ctx.refusal = "rpm" | "tpm" | "budget" ... when refusing (and metrics.rate_limited)
    guard                ctx.guard_action = "allow" | "flag" | "block"; ctx.guard_reasons = [...]
    a cache              ctx.cache_hit = True
    usage callback       ctx.calls.append(ModelCall(...)) per model call; ctx.first_token_at
    recording middleware request_id, route, endpoint, started_at, status, finished_at

    from gateway import context
    ctx = context.current()          # None outside a recorded request
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelCall", "RequestContext", "bind", "current", "from_request", "reset"]


@dataclass
class ModelCall:
    """One call to one model: the answer's tokens and price, or the error that made us fall back."""

    model: str  # the model that answered (as the provider named it), or the one that failed
    ok: bool
    input_tokens: int = 0  # all prompt tokens, cached ones included
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    latency_ms: float = 0.0
    ttft_ms: float | None = None  # from the call's start, streams only
    error_type: str | None = None
    is_local: bool = False


@dataclass
class RequestContext:
    request_id: str
    route: str  # the feature: chat, search, guard, describe, ...
    endpoint: str = ""  # invoke, batch, stream, ...
    started_at: float = field(default_factory=time.time)  # wall clock, seconds
    started_mono: float = field(default_factory=time.perf_counter)
    key_name: str | None = None
    user_id: str | None = None  # raw end-user id: hashed (HMAC) before anything writes it down
    calls: list[ModelCall] = field(default_factory=list)
    first_token_at: float | None = None  # perf_counter of the first streamed token
    guard_action: str | None = None
    guard_reasons: list[str] = field(default_factory=list)
    cache_hit: bool = False
    refusal: str | None = None  # which gateway limit refused the request, if one did
    status: int = 0
    finished_mono: float | None = None
    prompt_text: str | None = None  # only kept when AUDIT_TEXT is on; redacted before it is written
    answer_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- what the call list adds up to ---
    @property
    def models_tried(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.calls))  # in order, once each (a batch repeats)

    @property
    def answered(self) -> list[ModelCall]:
        return [c for c in self.calls if c.ok]

    @property
    def model(self) -> str | None:
        """The model that answered; with several (a batch), the one that cost most."""
        ok = self.answered
        if not ok:
            return None
        return max(ok, key=lambda c: (c.cost_usd, c.input_tokens + c.output_tokens)).model

    @property
    def fallback(self) -> bool:
        return any(not c.ok for c in self.calls) and bool(self.answered)

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.calls)

    @property
    def cached_tokens(self) -> int:
        return sum(c.cached_tokens for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)

    @property
    def priced(self) -> bool:
        return all(c.priced for c in self.calls)

    @property
    def latency_ms(self) -> float:
        end = self.finished_mono if self.finished_mono is not None else time.perf_counter()
        return (end - self.started_mono) * 1000.0

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.started_mono) * 1000.0

    @property
    def error_type(self) -> str | None:
        """The last model error when no model answered (None on success or without model calls)."""
        if self.answered or not self.calls:
            return None
        return self.calls[-1].error_type

    def add_call(self, call: ModelCall) -> None:
        with self.lock:  # batch items may finish on several threads
            self.calls.append(call)


_current: ContextVar[RequestContext | None] = ContextVar("skymarket_request", default=None)


def current() -> RequestContext | None:
    """The request being served, or None (a chain called outside HTTP, a CLI)."""
    return _current.get()


def bind(ctx: RequestContext) -> object:
    """Makes `ctx` the current request; returns a token for `reset`."""
    return _current.set(ctx)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def from_request(request: Any) -> RequestContext | None:
    """The context stored on a Starlette/FastAPI request (`request.state.ctx`), or None."""
    return getattr(request.state, "ctx", None)
