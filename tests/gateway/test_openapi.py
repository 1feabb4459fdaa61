"""The feature routes' guard reads the key headers itself; /openapi.json still declares both key schemes
on those routes, exactly as FastAPI writes them for routes that declare the schemes as dependencies."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway.auth import Principal, require_scope
from gateway.deps import route_dependencies
from gateway.openapi import document_gateway_security


def test_feature_routes_are_documented_as_fastapi_documents_security_dependencies() -> None:
    app = FastAPI()

    @app.post("/chat/invoke", dependencies=route_dependencies("chat"))
    def chat() -> dict[str, str]:
        return {}

    @app.get("/usage")
    def usage(principal: Principal = Depends(require_scope("admin"))) -> dict[str, str]:  # noqa: B008
        return {}

    @app.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    fastapi_own = FastAPI()
    fastapi_own.get("/usage")(usage)
    expected = fastapi_own.openapi()

    document_gateway_security(app)
    spec = app.openapi()
    assert spec["components"]["securitySchemes"] == expected["components"]["securitySchemes"]
    assert set(spec["components"]["securitySchemes"]) == {"Bearer", "ApiKey"}
    assert spec["paths"]["/chat/invoke"]["post"]["security"] == expected["paths"]["/usage"]["get"]["security"]
    assert spec["paths"]["/usage"]["get"]["security"] == expected["paths"]["/usage"]["get"]["security"]
    assert "security" not in spec["paths"]["/open"]["get"]
    assert app.openapi() is spec  # built once
