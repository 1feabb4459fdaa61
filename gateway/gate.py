"""The gateway of one app: key store, limiter and budgets, and the admission of one feature request.

`Gateway.admit()` runs, in order, before any chain code (so before a stream opens; LangServe would turn a
later error into a generic 500): scope (403) -> body size (413) -> client max_tokens cap (400) -> hard
budget (402) -> request and token limits (429). Authentication (401) comes first, in `gateway.auth`.
`Gateway.settle()` runs after the response, replacing the token reservation by the real usage and adding the
request's cost to the budgets' figures.

Nothing on the request path waits for the key store: `start()` runs a thread that reloads the keys every
GATEWAY_KEYS_REFRESH_S, so a key revoked by the CLI (another process) stops working within that time plus
one table read; a key revoked through this process's `KeyStore` stops at once. With the setting at 0 (tests,
development) the keys are reloaded by the request itself, every time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request

from errors import BudgetExceeded, ConfigError, InputRejected, PayloadTooLarge
from gateway import tokens
from gateway.auth import Principal, check_scope
from gateway.budgets import Budgets, SpendSource
from gateway.keys import KeyStore, build_key_store
from gateway.limits import Admission, Limiter, LimitSpec
from settings import Settings

__all__ = ["Gateway", "build_gateway", "global_limit"]

log = logging.getLogger("skymarket.gateway")

# Text bigger than this is tokenized in a worker thread, not on the event loop.
_THREADED_CHARS = 20_000


@dataclass
class Gateway:
    settings: Settings
    keys: KeyStore
    limiter: Limiter
    budgets: Budgets
    model_routes: set[str] = field(default_factory=lambda: {"chat", "describe"})
    # Called when a paid request is over budget; True = it may go on without the paid models (the local model
    # answers; services.py wires it to chains.guarded.paid_models_off when the local model is enabled).
    over_budget: Callable[[], bool] | None = None
    _refreshing: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _refresher: threading.Thread | None = None

    def start(self) -> None:
        """Opens the key store and loads the keys; production refuses to start without one.

        Raises:
            ConfigError: SKYMARKET_ENV=production and no active API key.
        """
        self.keys.create_table()
        self.keys.refresh()
        if self.settings.skymarket_env == "production" and self.keys.active_count == 0:
            raise ConfigError("production needs at least one API key: run `skymarket keys create --name NAME "
                              "--scopes chat,search,describe,guard` first")
        self.limiter.start()
        if self.keys.refresh_s > 0 and self._refresher is None:
            self._stop.clear()
            self._refresher = threading.Thread(target=self._refresh_loop, daemon=True, name="api-key-refresh")
            self._refresher.start()
        models = (self.settings.ai_model_primary, self.settings.ai_model_fallback)
        threading.Thread(target=tokens.warm_up, args=(models,), daemon=True, name="token-warm-up").start()

    def stop(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=5)
            self._refresher = None
        try:
            self.keys.refresh()  # writes the last-used times back
        except Exception as exc:
            log.warning("could not save key last-used times: %s", type(exc).__name__)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.keys.refresh_s):
            try:
                self.keys.refresh()
            except Exception as exc:  # the store is down: keep serving the keys we know
                log.error("key store refresh failed (%s); using the cached keys", type(exc).__name__)

    async def refresh_keys(self) -> None:
        """Reloads the key cache when stale and no refresher thread runs (GATEWAY_KEYS_REFRESH_S=0, or before
        `start()`), in a thread; one refresh at a time, others use the old view."""
        if self._refresher is not None and self._refresher.is_alive():
            return
        if self.keys.stale and self._refreshing.acquire(blocking=False):
            try:
                await anyio.to_thread.run_sync(self.keys.refresh)
            except Exception as exc:  # the store is down: keep serving the keys we know
                log.error("key store refresh failed (%s); using the cached keys", type(exc).__name__)
            finally:
                self._refreshing.release()

    # --- admission ---
    async def admit(self, request: Request, principal: Principal, scope: str) -> Admission | None:
        """Checks everything a feature request must pass; None for reads (schemas, playground), which only
        need auth and scope.

        Raises:
            Forbidden, PayloadTooLarge, InputRejected, BudgetExceeded, RateLimited, NotReady.
        """
        check_scope(principal, scope)
        if request.method != "POST":
            return None
        body = await self._read_body(request)
        paid = scope in self.model_routes
        reserve = await self._estimate(body, scope) if paid else 0
        if paid and self.settings.has_openai:
            try:
                await self.budgets.check(key_name=principal.key_name, key_budget_usd=principal.daily_budget_usd)
            except BudgetExceeded:
                if self.over_budget is None or not self.over_budget():
                    raise
        return await self.limiter.admit(self._specs(principal, scope), tokens=reserve)

    def settle(self, admission: Admission, ctx: Any) -> None:
        """Replaces the reservation by the tokens the request really used (from the usage record), and adds
        its cost to the budgets' figures."""
        if ctx is not None and ctx.calls:
            self.budgets.add_spend(ctx.key_name, ctx.cost_usd)
        self.limiter.settle(admission, used_tokens=used_tokens(ctx))

    async def aclose(self) -> None:
        """Sends what the limiter still holds back (settlements waiting for the next admission) and closes
        its Redis connection; in the serving event loop, before `stop()`."""
        await self.limiter.aclose()

    def _specs(self, p: Principal, scope: str) -> list[LimitSpec]:
        s = self.settings
        specs = []
        if p.user_id is not None:
            specs.append(LimitSpec("user", f"{p.key_name}/{p.user_id}", s.gateway_user_rpm or s.ai_rate_limit_rpm,
                                   s.gateway_user_tpm or s.ai_rate_limit_tpm))
        specs.append(LimitSpec("key", p.key_name, p.rpm or s.ai_rate_limit_rpm, p.tpm or s.ai_rate_limit_tpm))
        specs.append(global_limit(s, scope))
        return specs

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # what Request.body() caches: the endpoint reads the same bytes
        return body

    async def _estimate(self, body: bytes, scope: str) -> int:
        """Tokens to reserve: the prompt counted offline, a fixed allowance for the system prompt, and the
        most the answer may take, per input (a batch has several)."""
        try:
            data = json.loads(body) if body else {}
        except (ValueError, RecursionError):  # BodyCheck (gateway/body_check.py) refuses those first
            return 0  # LangServe answers 4xx without calling a model
        if not isinstance(data, dict):
            return 0
        batch = data.get("inputs")
        inputs: list[Any] = batch if isinstance(batch, list) else [data.get("input")]
        max_tokens = self._max_tokens(data, inputs, scope)
        texts = [t for item in inputs for t in _strings(item)]
        model = self.settings.ai_model_primary
        count: Callable[[], int] = lambda: sum(tokens.count_tokens(t, model=model) + 4 for t in texts)  # noqa: E731
        prompt = await anyio.to_thread.run_sync(count) if sum(map(len, texts)) > _THREADED_CHARS else count()
        per_input = self.settings.gateway_prompt_overhead_tokens + max_tokens
        return prompt + per_input * max(1, len(inputs))

    def _max_tokens(self, data: dict[str, Any], inputs: list[Any], scope: str) -> int:
        s = self.settings
        cap = s.gateway_max_tokens_cap or s.ai_max_tokens
        preset = s.presets.get(scope)
        default = preset.max_tokens if preset is not None and preset.max_tokens else s.ai_max_tokens
        asked = [v for v in _max_tokens_asked(data, inputs) if v is not None]
        for v in asked:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputRejected("max_tokens must be a positive integer", code="invalid_max_tokens")
            if v > cap:
                raise InputRejected(f"max_tokens {v} is over this service's cap of {cap}",
                                    code="max_tokens_too_large")
        return min(max(asked, default=default), cap)


def global_limit(s: Settings, scope: str) -> LimitSpec:
    """The service-wide limit of a route. Search and guard run no paid model by default and serve many
    times the requests a model route can: each has its own requests-per-minute window
    (GATEWAY_SEARCH_GLOBAL_RPM, GATEWAY_GUARD_GLOBAL_RPM), so a busy search box never takes chat down with it
    (or the other way round). Every other route (chat, describe, any new one) shares GATEWAY_GLOBAL_RPM.

    Args:
        s: the settings.
        scope: the route's scope (its name).
    """
    if scope == "search":
        return LimitSpec("global", "search", s.gateway_search_global_rpm, s.gateway_global_tpm)
    if scope == "guard":
        return LimitSpec("global", "guard", s.gateway_guard_global_rpm, s.gateway_global_tpm)
    return LimitSpec("global", "all", s.gateway_global_rpm, s.gateway_global_tpm)


def _max_tokens_asked(data: dict[str, Any], inputs: list[Any]) -> list[Any]:
    config = data.get("config")
    configurable = config.get("configurable") if isinstance(config, dict) else None
    kwargs = data.get("kwargs")
    out = [d.get("max_tokens") for d in (configurable, kwargs) if isinstance(d, dict)]
    out += [i.get("max_tokens") for i in inputs if isinstance(i, dict)]
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def used_tokens(ctx: Any) -> int | None:
    """Tokens the request used, from its usage record; None when unknown (the reservation then stays).

    Model calls recorded: their tokens. None recorded: 0 when the request failed or was a cache hit (no
    model ran), unknown otherwise (a route whose chain is not instrumented must not get tokens back).
    """
    if ctx is None:
        return None
    if ctx.calls:
        return int(ctx.input_tokens + ctx.output_tokens)
    if ctx.cache_hit or ctx.status >= 400:
        return 0
    return None


def build_gateway(*, settings: Settings, ledger: SpendSource | None = None,
                  alert: Callable[[str, str], None] | None = None) -> Gateway:
    """Builds the gateway from settings; nothing connects until `start()`.

    Args:
        settings: the service's settings.
        ledger: where today's spend is read (the usage ledger); None: budgets never trigger.
        alert: called once per outage / exhausted budget with (kind, message); default: log only.
    """
    routes = {"chat", "describe"} | ({"search"} if settings.search_llm_parser else set())
    return Gateway(
        settings=settings,
        keys=build_key_store(settings=settings),
        limiter=Limiter(redis_url=settings.redis_url, timeout_s=settings.gateway_redis_timeout_s,
                        on_failure=settings.gateway_redis_failure, retry_s=settings.gateway_redis_retry_s,
                        alert=alert),
        budgets=Budgets(ledger=ledger, daily_budget_usd=settings.gateway_daily_budget_usd,
                        cache_s=settings.gateway_budget_cache_s, alert=alert),
        model_routes=routes,
    )
