"""/openapi.json as a client needs it: the key schemes, every error status with its codes, the streams as
server-sent events, the ops routes' bodies. `document_api(app)` once the routes are added (server.py).

- Security: the feature routes' guard (gateway/deps.py) reads the key headers itself instead of declaring
  `bearer` and `api_key_header` as FastAPI security dependencies (resolving those costs about 0.1 ms per
  request here), so FastAPI does not see them on those routes: this adds the same schemes, described by
  FastAPI's own models, with the same requirement FastAPI writes for them (either scheme).
- Errors (gateway/openapi_errors.py): every keyed route may answer 400 (a malformed X-User-Id), 401, 403 and
  500; a feature route's POST also 413, 429 and 503 from the gateway and its chain, and a model route's
  (chat, describe: `paid_scopes`) 402, 502 and 504 too. 422 stays FastAPI's own.
- Streams (`/stream`, `/stream_log`, `/stream_events`) answer `text/event-stream`; `/metrics` Prometheus text.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.auth import api_key_header, bearer
from gateway.openapi_errors import ErrorBody, error_response
from gateway.openapi_ops import OPS_BODIES

__all__ = ["document_api"]

_SCHEMES = (bearer, api_key_header)
_REF = "#/components/schemas/{model}"
_KEYED = (400, 401, 403, 500)  # any route behind a key
_FEATURE_POST = (413, 429, 503)  # + the gateway's admission and the chain's readiness
_MODEL_POST = (402, 502, 504)  # + budgets, the provider, the deadline
_STREAMS = ("/stream", "/stream_log", "/stream_events")
_STREAM_200 = {
    "description": "Server-sent events: `data` events (output chunks, log patches or run events, by endpoint), "
                   "then `end`. An error after the stream opened is an `error` event `{status_code, message}`; "
                   "errors found before it opens are the statuses below.",
    "content": {"text/event-stream": {"schema": {"$ref": _REF.format(model="StreamEvent")}}},
}
# Hand-written: one event of a stream (OpenAPI 3.1 has `schema` describe each event), and LangServe's 422 body.
_SCHEMAS = {
    "StreamEvent": {
        "title": "StreamEvent", "type": "object", "required": ["event", "data"],
        "description": "One server-sent event; `data` is JSON (for `error`: `{status_code, message}`).",
        "properties": {"event": {"type": "string", "enum": ["metadata", "data", "error", "end"]},
                       "data": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}},
    },
    "InputValidationError": {
        "title": "InputValidationError", "type": "object", "required": ["detail"],
        "description": "The input does not fit the route's input schema (FastAPI's validation errors), the "
                       "body is not JSON (`[\"Invalid JSON body\"]`), or LangServe refused the config (a text).",
        "properties": {"detail": {"anyOf": [
            {"type": "array", "items": {"anyOf": [{"$ref": _REF.format(model="ValidationError")}, {"type": "string"}]}},
            {"type": "string"},
        ]}},
    },
}
_USER_ID = {
    "name": "X-User-Id", "in": "header", "required": False,
    "description": "your end user, for per-user rate limits (1-128 letters, digits or ._:@|+=-)",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:@|+=-]{1,128}$"},
}


def document_api(app: FastAPI, *, paid_scopes: Collection[str] = ("chat", "describe")) -> None:
    """Wraps `app.openapi` (FastAPI's documented way to extend the schema); call once the routes are added.

    Args:
        app: the application.
        paid_scopes: the feature scopes whose routes call a paid model (`Gateway.model_routes`).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        gated = {(route.path_format, method.lower()): scope for route in app.routes if isinstance(route, APIRoute)
                 for scope in _gateway_scopes(route) for method in route.methods or ()}
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        _add_models(schemas, [ErrorBody, *(model for bodies in OPS_BODIES.values() for _, model in bodies)])
        schemas.update(_SCHEMAS)
        if gated:
            schemes = schema["components"].setdefault("securitySchemes", {})
            for scheme in _SCHEMES:
                schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                scope = gated.get((path, method))
                if scope is not None:
                    security = operation.setdefault("security", [])
                    security += [{s.scheme_name: []} for s in _SCHEMES if {s.scheme_name: []} not in security]
                _document(path, method, operation, scope=scope, paid=scope in paid_scopes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _gateway_scopes(route: APIRoute) -> list[str]:
    return [scope for d in route.dependencies if (scope := getattr(d.dependency, "gateway_scope", None))]


def _add_models(schemas: dict[str, Any], models: list[type[BaseModel]]) -> None:
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=_REF)
    schemas.update(top.get("$defs", {}))


def _document(path: str, method: str, operation: dict[str, Any], *, scope: str | None, paid: bool) -> None:
    responses = operation.setdefault("responses", {})
    statuses: list[int] = []
    if operation.get("security"):
        statuses += _KEYED
        params = operation.setdefault("parameters", [])
        if all(p.get("name") != _USER_ID["name"] for p in params):
            params.append(dict(_USER_ID))
    if scope is not None and method == "post":
        statuses += [*_FEATURE_POST, *(_MODEL_POST if paid else ())]
        invalid = error_response(422, ref=_REF.format(model=ErrorBody.__name__))
        invalid["content"]["application/json"]["schema"] = {"anyOf": [
            {"$ref": _REF.format(model="InputValidationError")}, {"$ref": _REF.format(model=ErrorBody.__name__)}]}
        responses["422"] = invalid
    for status in sorted(statuses):
        responses.setdefault(str(status), error_response(status, ref=_REF.format(model=ErrorBody.__name__)))
    if path.endswith(_STREAMS) and "200" in responses:
        responses["200"] = dict(_STREAM_200)
    if path == "/metrics":
        responses["200"] = {"description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}
    for status, model in OPS_BODIES.get((path, method), ()):
        entry = responses.setdefault(str(status), {"description": model.__doc__ or model.__name__})
        entry["content"] = {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    operation["responses"] = dict(sorted(responses.items()))
