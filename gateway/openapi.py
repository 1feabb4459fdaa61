"""/openapi.json declares the API-key schemes on every feature route, so /docs has its "Authorize" button
and API clients know how to call.

The feature routes' guard (gateway/deps.py) reads the key headers itself instead of declaring `bearer` and
`api_key_header` as FastAPI security dependencies: resolving those costs about 0.1 ms per request here. So
FastAPI does not see them on those routes, and this adds them to the schema: the same schemes, described by
FastAPI's own models, and the same requirement FastAPI writes for them (either scheme).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute

from gateway.auth import api_key_header, bearer

__all__ = ["document_gateway_security"]

_SCHEMES = (bearer, api_key_header)


def document_gateway_security(app: FastAPI) -> None:
    """Wraps `app.openapi` (FastAPI's documented way to extend the schema); call once the routes are added."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        gated = {(route.path_format, method.lower()) for route in app.routes if isinstance(route, APIRoute)
                 and any(getattr(d.dependency, "gateway_scope", None) for d in route.dependencies)
                 for method in route.methods or ()}
        if gated:
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            for scheme in _SCHEMES:
                schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (path, method) in gated:
                    security = operation.setdefault("security", [])
                    security += [{s.scheme_name: []} for s in _SCHEMES if {s.scheme_name: []} not in security]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
