"""/openapi.json: the feature routes' guard reads the key headers itself, yet both key schemes are declared
on those routes exactly as FastAPI writes them for routes that declare the schemes as dependencies; every error
code raised anywhere in the source is documented under its status."""

from __future__ import annotations

import ast
import inspect

from fastapi import Depends, FastAPI

from gateway.auth import Principal, require_scope
from gateway.deps import route_dependencies
from gateway.openapi import document_api
from gateway.openapi_errors import ERRORS
from tests.conftest import ROOT


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

    document_api(app)
    spec = app.openapi()
    assert spec["components"]["securitySchemes"] == expected["components"]["securitySchemes"]
    assert set(spec["components"]["securitySchemes"]) == {"Bearer", "ApiKey"}
    assert spec["paths"]["/chat/invoke"]["post"]["security"] == expected["paths"]["/usage"]["get"]["security"]
    assert spec["paths"]["/usage"]["get"]["security"] == expected["paths"]["/usage"]["get"]["security"]
    assert "security" not in spec["paths"]["/open"]["get"]
    assert app.openapi() is spec  # built once


# --- errors: every code raised anywhere is documented under its status ---

_SOURCES = ("errors.py", "server.py", "services.py", "settings.py", "chains", "gateway", "retrieval")
# Codes that never reach an HTTP status: a failed item of /describe/batch carries it inside a 200 body; a data
# key problem stops the start or a CLI (a request meets a cache miss instead); a prune runs off the request path.
_NOT_HTTP = {"invalid_input", "data_key_error", "retention_failed"}


def raised_codes() -> dict[str, set[str]]:
    """code -> the names of the classes it is given to (`code = "..."` in a class, or `X(..., code="...")`)."""
    found: dict[str, set[str]] = {}
    files = [p for name in _SOURCES for p in ([ROOT / name] if name.endswith(".py") else (ROOT / name).rglob("*.py"))
             if "evals" not in p.parts]  # the evaluation CLI's errors never reach HTTP
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and [getattr(t, "id", None) for t in stmt.targets] == ["code"]
                            and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                        found.setdefault(stmt.value.value, set()).add(node.name)
            elif isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        found.setdefault(kw.value.value, set()).add(getattr(node.func, "id", "?"))
    return found


def test_every_error_code_in_the_source_is_documented_under_its_status() -> None:
    import errors
    from chains.breaker import CircuitOpen
    from chains.guarded import DeadlineExceeded

    classes = {c.__name__: c for c in (*vars(errors).values(), CircuitOpen, DeadlineExceeded)
               if inspect.isclass(c) and issubclass(c, errors.SkyMarketError)}
    documented = {code: status for status, (_, codes) in ERRORS.items() for code in codes}
    found = raised_codes()
    assert {"guard_blocked", "token_estimate_over_limit", "budget_exceeded", "circuit_open"} <= set(found)
    for code, raisers in sorted(found.items()):
        if code in _NOT_HTTP:
            continue
        assert code in documented, f"{code!r} (raised as {sorted(raisers)}) is missing from gateway/openapi_errors.py"
        for name in raisers & set(classes):
            assert classes[name].status == documented[code], (code, name)
