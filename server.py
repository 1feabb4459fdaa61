"""The HTTP service: `create_app(settings) -> FastAPI`. The only module that imports LangServe.

A request reads top to bottom: route -> (gateway dependencies) -> chain -> errors mapped to statuses here.
Run it with `make serve` (`skymarket serve`): how it runs as one process or several is serving/'s part.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
import openai
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse
from langchain_core.runnables import Runnable, RunnableBinding
from langserve import add_routes
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from sqlalchemy.exc import OperationalError

from chains.guard import text_precheck
from chains.guarded import set_deadline
from chains.prompt_header import PromptVersionHeader, live_prompt_routes
from errors import NotReady, SkyMarketError, from_provider_error
from gateway.admin_config import build_config_router
from gateway.body_check import BodyCheck
from gateway.dashboard import build_dashboard_router
from gateway.deps import RateLimitHeaders, route_dependencies
from gateway.envelope import check_envelope, invalid_json
from gateway.openapi import document_api
from gateway.recording import RecordingMiddleware
from gateway.reports import build_router
from gateway.safe_errors import SafeJSONResponse, install_input_handlers
from services import Services, build_services
from serving import Drain
from serving import main as serving_main
from settings import Settings, load_settings

__all__ = ["ServicesDep", "create_app", "main"]

log = logging.getLogger("skymarket.server")

# The playgrounds stream through stream_log and read schemas under config-hash paths: both stay on.
Endpoint = Literal["invoke", "batch", "stream", "stream_log", "stream_events", "playground", "input_schema",
                   "output_schema", "config_schema", "config_hashes"]
_CHAT_ENDPOINTS: list[Endpoint] = [
    "invoke", "batch", "stream", "stream_log", "stream_events",
    "input_schema", "output_schema", "config_schema", "config_hashes",
]
# Search and guard answer at once: invoke and batch only, no streams.
_GUARD_ENDPOINTS: list[Endpoint] = [
    "invoke", "batch", "input_schema", "output_schema", "config_schema", "config_hashes",
]


def _endpoints(base: list[Endpoint], playground: bool) -> list[Endpoint]:
    """A route's endpoints; with its playground, also stream_log, the one endpoint the playground runs through."""
    if not playground:
        return base
    stream_log: list[Endpoint] = [] if "stream_log" in base else ["stream_log"]
    return [*base, *stream_log, "playground"]


async def get_services(request: Request) -> Services:
    """The app's services. Async: FastAPI runs a plain `def` dependency in a worker thread, per request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def request_deadline(services: ServicesDep) -> None:
    """Starts the request's clock: no model call runs past AI_REQUEST_TIMEOUT + AI_DEADLINE_MARGIN_MS.

    Async on purpose: it runs in the request's task, so the deadline reaches the chain (and a stream's task).
    """
    set_deadline(services.settings.request_deadline_s)


async def flush_records(services: ServicesDep) -> None:
    """Waits until every finished request is in the ledger, the audit log and the metrics (for their readers)."""
    if services.observability is not None:
        await anyio.to_thread.run_sync(services.observability.flush)


Precheck = Callable[[Any], Awaitable[None]]


def precheck_of(chain: Runnable) -> Precheck | None:
    """A served chain's input check (its `aprecheck`), however it was wrapped (`with_config`, `with_types`)."""
    while isinstance(chain, RunnableBinding):
        chain = chain.bound
    check: Precheck | None = getattr(chain, "aprecheck", None)
    return check


def input_precheck(chain: Runnable, check: Precheck | None = None) -> Callable[[Request], Awaitable[None]]:
    """A feature route's dependency: checks the request before LangServe reads it, so that the client gets a
    4xx rather than a 500 or a stream cut by a generic error event.

    Every POST: what LangServe 0.3.3 would crash on (gateway/envelope.py). Streams: the feature's own input
    check. Invoke and batch are left to their chains, which run the same check before any model call.

    Args:
        chain: the route's runnable: each item of a batch is validated with its input schema, as LangServe does.
        check: the feature's check of the request's `input`; raises a `SkyMarketError` to refuse it.
    """
    schema = chain.input_schema
    input_model = schema if issubclass(schema, BaseModel) else None  # pydantic 2 (a v1 model is left alone)

    async def dependency(request: Request) -> None:
        if request.method != "POST":
            return
        endpoint = str(request.scope.get("path", "")).rsplit("/", 1)[-1]
        try:
            body = await request.json()  # parsed once: LangServe reads the same cached value
        except ValueError:  # not JSON, or not UTF-8
            raise invalid_json() from None
        check_envelope(body, endpoint, input_model)
        if check is not None and endpoint.startswith("stream") and isinstance(body, dict):
            await check(body.get("input"))

    return dependency


def _error_body(exc: SkyMarketError) -> dict[str, Any]:
    # The flat message is for clients that read no other field (LangChain.js RemoteRunnable.stream's error).
    return {"error": {"code": exc.code, "message": exc.message}, "message": f"{exc.code}: {exc.message}"}


def _error_response(exc: SkyMarketError) -> JSONResponse:
    # The code in a header too: a streaming client (langserve.RemoteRunnable.stream) sees headers, not the body.
    headers = {"X-Error-Code": exc.code}
    if exc.retry_after:
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
    return SafeJSONResponse(_error_body(exc), status_code=exc.status, headers=headers)


def _refused_body(exc: SkyMarketError) -> JSONResponse:
    """A body refused by `BodyCheck` (gateway/body_check.py), before any route."""
    log.warning("request body refused: %s (%s)", exc.code, exc.message)
    return _error_response(exc)


def _install_error_handlers(app: FastAPI, services: Services) -> None:
    # 422s (and FastAPI's HTTP errors) that never fail to render; a batch item's invalid input is a 422 too.
    schemas = [chain.get_input_schema() for chain in services.chains.values()]
    install_input_handlers(app, {getattr(s, "model_config", {}).get("title") or s.__name__ for s in schemas})

    @app.exception_handler(SkyMarketError)
    async def _ours(_: Request, exc: SkyMarketError) -> JSONResponse:
        log.warning("request failed: %s (%s)", exc.code, exc.message)
        return _error_response(exc)

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        # /usage, /dashboard, the key store while the database is down: a retryable 503, not a 500
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
        return _error_response(NotReady("the database is unavailable; try again shortly",
                                        code="database_unavailable", retry_after=5))

    @app.exception_handler(openai.OpenAIError)
    async def _provider(_: Request, exc: openai.OpenAIError) -> JSONResponse:
        mapped = from_provider_error(exc) or SkyMarketError("the AI provider failed")
        # The provider's own message can echo a key or the prompt: log the type only.
        log.warning("provider error %s -> %s", type(exc).__name__, mapped.code)
        return _error_response(mapped)


def _mount_features(app: FastAPI, services: Services) -> None:
    """One LangServe route per product feature."""
    playground = services.settings.serve_playgrounds
    chains = services.chains
    for path, playground_type in (("/chat", "chat"), ("/assistant", "default")):  # one assistant, two faces
        chain = chains[path[1:]]
        add_routes(
            app,
            chain,
            path=path,
            playground_type=playground_type,  # type: ignore[arg-type]
            enabled_endpoints=_endpoints(_CHAT_ENDPOINTS, playground),
            # gateway first (401..429; a key's "chat" scope covers both), then the body's envelope and, before a
            # stream opens, the guard's and moderation's check, then the clock starts
            dependencies=[
                *route_dependencies("chat"),
                Depends(input_precheck(chain, precheck_of(chain))),
                Depends(request_deadline),
            ],
        )
    add_routes(
        app,
        services.chains["search"],
        path="/search",
        enabled_endpoints=_endpoints(_GUARD_ENDPOINTS, playground),
        # stream_log (the playground's) screens the query before it opens, as invoke's chain does inside
        dependencies=[
            *route_dependencies("search"),
            Depends(input_precheck(chains["search"], text_precheck(settings=services.settings, source="search",
                                                                   field="query"))),
        ],
    )
    add_routes(
        app,
        services.chains["guard"],
        path="/guard",
        enabled_endpoints=_endpoints(_GUARD_ENDPOINTS, playground),
        dependencies=[*route_dependencies("guard"), Depends(input_precheck(chains["guard"]))],
    )
    add_routes(
        app,
        services.chains["describe"],
        path="/describe",
        enabled_endpoints=_endpoints(_CHAT_ENDPOINTS, playground),
        # No request deadline: a batch of hundreds runs far longer than one model call (items are bounded).
        dependencies=[
            *route_dependencies("describe"),
            Depends(input_precheck(chains["describe"], precheck_of(chains["describe"]))),
        ],
    )


def fast_jsonable(obj: Any, *args: Any, **kwargs: Any) -> Any:
    """`jsonable_encoder` for LangServe's responses, without walking an already JSON-ready dump again.

    LangServe encodes every response with FastAPI's `jsonable_encoder`, which dumps the pydantic model and
    then re-encodes the dump value by value in Python: 2.3 ms for a 10-result search answer on this machine,
    a fifth of the request's CPU. Pydantic's JSON-mode dump is the same dict (tests/test_server.py checks
    every route's responses against the original); anything else goes to `jsonable_encoder` as before.
    """
    if isinstance(obj, BaseModel) and not args and not kwargs:
        try:
            return obj.model_dump(mode="json", by_alias=True)
        except PydanticSerializationError:
            pass
    return jsonable_encoder(obj, *args, **kwargs)


def use_fast_response_json() -> None:
    """Makes LangServe (pinned: 0.3.3, its last release) encode responses with `fast_jsonable` (process-wide)."""
    from langserve import api_handler

    api_handler.jsonable_encoder = fast_jsonable  # type: ignore[attr-defined]


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False,
               drain_on_signals: bool = False) -> FastAPI:
    """Builds the FastAPI application.

    Args:
        settings: the settings to use; read from the environment when None.
        freeze_gc: after start-up, move every live object out of the garbage collector's reach
            (`gc.freeze()`): a full collection then skips the imports, models and indexes, and the pauses
            that set a busy server's p99 shrink (about fourfold at 16 clients, measured on this stack). For
            the serving process (`main()`), not for an app built per test: frozen objects are never freed.
        drain_on_signals: the serving process's app: SIGTERM/SIGINT first drain it (`serving.Drain`).
    """
    settings = settings or load_settings()
    services = build_services(settings)
    services.freeze_gc = freeze_gc
    use_fast_response_json()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start()
        if drain_on_signals:  # after uvicorn installed its handlers: ours run first, then hand over to them
            Drain(services, delay_s=settings.shutdown_delay_s).install()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if services.gateway is not None:
                await services.gateway.aclose()  # settlements still waiting to ride on an admission
            if services.moderator is not None:
                await services.moderator.aclose()  # its HTTP session on this loop
            services.stop()

    app = FastAPI(
        title="SkyMarket AI",
        version="0.1.0",
        description="Chat, listing descriptions and search for SkyMarket, the Detroit Metro drone marketplace.",
        lifespan=lifespan,
    )
    app.state.services = services
    _install_error_handlers(app, services)

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(s: ServicesDep) -> JSONResponse:
        """The model layer (and the search index, once built) is ready to answer; `degraded` names parts that
        are down while the service works around them (the usage ledger's database, the limits' Redis)."""
        body = s.readiness()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    # Inside the recording: a refused body still gets its X-Request-ID, ledger row and audit line.
    app.add_middleware(BodyCheck, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       respond=_refused_body)
    if services.observability is not None:  # usage, audit, metrics for every feature route; /usage, /metrics
        services.observability.instrument(services.chains)
        app.add_middleware(RecordingMiddleware, observability=services.observability)
        # Requests are written down in batches (gateway/writer.py): these readers wait for the last ones first.
        app.include_router(build_router(), dependencies=[Depends(flush_records)])
        app.include_router(build_dashboard_router(), dependencies=[Depends(flush_records)])  # /dashboard (admin)
    app.include_router(build_config_router())  # GET /admin/config (admin): the effective configuration
    app.add_middleware(RateLimitHeaders)  # X-RateLimit-* left by the gateway dependency (gateway/deps.py)
    app.add_middleware(PromptVersionHeader, prompts=services.prompts, routes=live_prompt_routes(settings))
    _mount_features(app, services)
    # /openapi.json: key schemes, every error status and code, event streams, the ops routes' bodies
    document_api(app, paid_scopes=services.gateway.model_routes if services.gateway else ())
    return app


def main() -> None:
    """Runs the service (`serving.main`: one process, or WORKERS of them)."""
    sys.exit(serving_main())


if __name__ == "__main__":
    main()
