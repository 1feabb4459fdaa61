"""The gateway as FastAPI dependencies, and the middleware that puts X-RateLimit-* on responses.

    add_routes(app, chain, path="/chat", dependencies=route_dependencies("chat"))   # every feature route
    @router.get("/usage")
    async def usage(principal: AdminDep) -> ...                                      # admin-only routes

`route_dependencies(scope)` authenticates (401), checks the scope (403), the body size (413), the client's
max_tokens (400), the hard budget (402) and the limits (429), all before the chain or a stream starts. It is
one plain `async def` dependency: FastAPI solves a dependency with `yield` through an exit stack and a
shielded cancel scope, about 0.1 ms more per request, so the settlement after the response (the token
reservation replaced by the real usage) is done by the `RateLimitHeaders` middleware instead, which already
sees every response of a feature route.

Headers on every response of a feature route (`RateLimitHeaders` middleware): `X-RateLimit-Limit`,
`-Remaining`, `-Reset` for requests (seconds until the window frees a slot), the same with a `-Tokens`
suffix for tokens; and on a 429, `Retry-After` plus `X-RateLimit-Exceeded` naming the limit
(user_rpm, key_rpm, global_rpm, user_tpm, key_tpm, global_tpm).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import BudgetExceeded, RateLimited
from gateway.auth import Principal, api_key_header, bearer, presented_key, principal_of, require_scope
from gateway.gate import Gateway
from gateway.limits import Admission, LimitRefused

__all__ = [
    "AdminDep",
    "GatewayDep",
    "PrincipalDep",
    "RateLimitHeaders",
    "gateway_guard",
    "get_gateway",
    "require_scope",
    "route_dependencies",
]


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.services.gateway
    return gateway


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    api_key: str | None = Security(api_key_header),
) -> Principal:
    """The authenticated caller, any scope (401 without a valid key outside dev loopback)."""
    return await principal_of(request, credentials.credentials if credentials else api_key)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(require_scope("admin"))]


def gateway_guard(scope: str) -> Any:
    """The one dependency of a feature route: everything the gateway checks (settlement: `RateLimitHeaders`)."""

    async def guard(request: Request) -> Principal:
        principal = await principal_of(request, presented_key(request))
        ctx = request.scope.get("state", {}).get("ctx")
        try:
            admission = await get_gateway(request).admit(request, principal, scope)
        except RateLimited as exc:
            if isinstance(exc, LimitRefused):
                request.state.ratelimit_refused = exc
            if ctx is not None:
                ctx.refusal = getattr(exc, "limit", "rate_limited")
            raise
        except BudgetExceeded:
            if ctx is not None:
                ctx.refusal = "budget"
            raise
        if admission is not None:
            request.state.ratelimit = admission
        return principal

    guard.__name__ = f"gateway_{scope}"
    guard.gateway_scope = scope  # type: ignore[attr-defined]  # how gateway/openapi.py finds the feature routes
    return guard


def route_dependencies(scope: str) -> list[Any]:
    """The dependency list for `add_routes(..., dependencies=...)` of a feature route.

    Args:
        scope: the scope a key needs for this route: chat, search, describe, guard (or admin).
    """
    return [Depends(gateway_guard(scope))]


class RateLimitHeaders:
    """Pure ASGI middleware (streams pass through untouched): adds the X-RateLimit-* headers that the
    gateway dependency left in the request's state and, once the response has been sent (a stream to its
    end), settles the request's token reservation with the usage its record holds (`Gateway.settle`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                admission: Admission | None = state.get("ratelimit")
                refused: LimitRefused | None = state.get("ratelimit_refused")
                if admission is not None or refused is not None:
                    _add_headers(message, admission, refused)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            state = scope.get("state") or {}
            admission = state.get("ratelimit")
            if admission is not None:  # synchronous: a client that left mid-stream still settles
                scope["app"].state.services.gateway.settle(admission, state.get("ctx"))


_NAMES = {suffix: tuple(f"x-ratelimit-{part}{suffix}".lower().encode() for part in ("limit", "remaining", "reset"))
          for suffix in ("", "-Tokens")}


def _add_headers(message: Message, admission: Admission | None, refused: LimitRefused | None) -> None:
    windows = {}
    if admission is not None:
        windows = {"": admission.requests, "-Tokens": admission.token_state}
    if refused is not None:  # rare: through MutableHeaders, which replaces a Retry-After already set
        windows["" if refused.kind == "requests" else "-Tokens"] = refused.window
        headers = MutableHeaders(scope=message)
        headers["X-RateLimit-Exceeded"] = refused.limit
        headers["Retry-After"] = str(refused.window.reset_s)
    raw = message["headers"] = list(message.get("headers", ()))  # the app sets no X-RateLimit-* itself
    for suffix, w in windows.items():
        if w is not None:
            limit, remaining, reset = _NAMES[suffix]
            raw += ((limit, b"%d" % w.limit), (remaining, b"%d" % w.remaining), (reset, b"%d" % w.reset_s))
