"""Who is calling: an API key (`Authorization: Bearer <key>` or `X-API-Key`), and the end user the trusted
app names in `X-User-Id` (for per-user limits).

    no key, development, loopback client   -> the keyless `local-dev` principal (every scope)
    no key, otherwise                      -> 401 missing_api_key
    unknown or revoked key                 -> 401 invalid_api_key
    key without the route's scope          -> 403 missing_scope

Both headers are declared as OpenAPI security schemes, so /docs has an "Authorize" button. Neither the key
nor its hash is ever logged or returned: errors name the problem, never the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from errors import Forbidden, InputRejected, Unauthorized
from gateway.keys import ALL_SCOPES, KeyRecord, KeyStore

__all__ = [
    "DEV_PRINCIPAL_NAME",
    "Principal",
    "api_key_header",
    "authenticate",
    "bearer",
    "is_loopback",
    "presented_key",
    "principal_of",
    "require_scope",
]

DEV_PRINCIPAL_NAME = "local-dev"
_USER_ID = re.compile(r"^[A-Za-z0-9._:@|+=-]{1,128}$")

bearer = HTTPBearer(auto_error=False, scheme_name="Bearer", description="`Authorization: Bearer <API key>`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="the API key, as an alternative to the Authorization header")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    key_name: str
    scopes: frozenset[str]
    rpm: int | None = None
    tpm: int | None = None
    daily_budget_usd: float | None = None
    user_id: str | None = None
    keyless: bool = False


def is_loopback(host: str | None, *, development: bool) -> bool:
    """True for 127.0.0.0/8 and ::1; also Starlette's TestClient ("testclient"), in development only."""
    if host is None:
        return False
    if host == "testclient":
        return development
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authenticate(*, store: KeyStore, presented: str | None, user_id: str | None, client_host: str | None,
                 development: bool) -> Principal:
    """Resolves the caller.

    Args:
        store: the key store (its in-memory view; no I/O here).
        presented: the key from the request's headers, None when absent.
        user_id: the `X-User-Id` header, None when absent.
        client_host: the client's IP address as the server sees it.
        development: SKYMARKET_ENV is development (keyless loopback calls allowed).

    Raises:
        Unauthorized: no key where one is needed (missing_api_key), or an unknown/revoked key.
        InputRejected: a malformed `X-User-Id`.
    """
    if user_id is not None and not _USER_ID.match(user_id):
        raise InputRejected("X-User-Id: 1-128 letters, digits or ._:@|+=- characters", code="invalid_user_id")
    if not presented:
        if development and is_loopback(client_host, development=development):
            return Principal(key_name=DEV_PRINCIPAL_NAME, scopes=frozenset(ALL_SCOPES), user_id=user_id,
                             keyless=True)
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                           code="missing_api_key")
    record = store.lookup(presented)
    if record is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
    return _principal(record, user_id)


def _principal(record: KeyRecord, user_id: str | None) -> Principal:
    return Principal(key_name=record.name, scopes=record.scopes, rpm=record.rpm, tpm=record.tpm,
                     daily_budget_usd=record.daily_budget_usd, user_id=user_id)


def check_scope(principal: Principal, scope: str) -> None:
    """Raises `Forbidden` (403 missing_scope) unless the principal holds `scope`."""
    if scope not in principal.scopes:
        raise Forbidden(f"this API key may not call {scope!r}: ask for a key with the {scope!r} scope")


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the authenticated caller, who must hold `scope` (e.g. `require_scope("admin")`
    for /usage and the dashboard). Auth only: no limits, no budget; use `gateway.deps.route_dependencies`
    for feature routes."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
        api_key: str | None = Security(api_key_header),
    ) -> Principal:
        principal = await principal_of(request, credentials.credentials if credentials else api_key)
        check_scope(principal, scope)
        return principal

    dependency.__name__ = f"require_scope_{scope}"
    return dependency


def presented_key(request: Request) -> str | None:
    """The key a request presents, read as `bearer` and `api_key_header` read it: an `Authorization: Bearer`
    credential first, else `X-API-Key`. For the feature routes' guard, which does not declare them as
    dependencies (FastAPI's security-scope resolution costs about 0.1 ms per request here; gateway/openapi.py
    declares the schemes on those routes instead)."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if credentials and scheme.lower() == "bearer":
        return credentials
    return request.headers.get("x-api-key") or None


async def principal_of(request: Request, presented: str | None) -> Principal:
    """Authenticates a request once (the result is kept on `request.state.principal`).

    Args:
        presented: the key from the request's headers (`presented_key`), None when absent.
    """
    state = request.scope.setdefault("state", {})  # what request.state wraps (a miss there raises inside)
    cached: Principal | None = state.get("principal")
    if cached is not None:
        return cached
    gateway: Any = request.app.state.services.gateway
    await gateway.refresh_keys()
    principal = authenticate(
        store=gateway.keys, presented=presented.strip() if presented else None,
        user_id=request.headers.get("x-user-id"), client_host=request.client.host if request.client else None,
        development=gateway.settings.skymarket_env == "development",
    )
    state["principal"] = principal
    ctx = state.get("ctx")  # the usage record (gateway/context.py): names, never keys
    if ctx is not None:
        ctx.key_name = principal.key_name
        ctx.user_id = principal.user_id
    return principal
