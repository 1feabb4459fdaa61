"""The operations dashboard: `GET /dashboard` (the page), `GET /dashboard/data?window=7d` (its figures as JSON),
`GET /dashboard/static/<file>` (its script, styles and the vendored Chart.js; no CDN, no build step).

Every route needs the `admin` scope (gateway/auth.py); in development, where keyless loopback callers hold
every scope, the dashboard also refuses any caller that is not on loopback, keyed or not (403).
The page is a server-rendered shell; its script fetches the JSON every 30 seconds and redraws the charts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from errors import Forbidden
from gateway.auth import Principal, is_loopback, require_scope
from gateway.dashboard.cache import BucketCache
from gateway.dashboard.figures import COST, build_figures
from gateway.dashboard.queries import WINDOWS, Window, bucket_start, window_buckets

__all__ = ["REFRESH_S", "build_dashboard_router", "dashboard_figures", "require_dashboard"]

HERE = Path(__file__).resolve().parent
STATIC = {  # the only files served: name -> media type
    "dashboard.js": "text/javascript", "dashboard.css": "text/css", "vendor/chart.umd.min.js": "text/javascript",
}
REFRESH_S = 30
_admin = require_scope("admin")


async def require_dashboard(request: Request, principal: Annotated[Principal, Depends(_admin)]) -> Principal:
    """Admin scope; in development, loopback callers only (403 otherwise)."""
    settings = request.app.state.services.settings
    if settings.skymarket_env == "development":
        host = request.client.host if request.client else None
        if not is_loopback(host, development=True):
            raise Forbidden("in development the dashboard answers loopback callers only", code="loopback_only")
    return principal


def dashboard_figures(services: Any, cache: BucketCache, window: str, now: dt.datetime) -> dict[str, Any]:
    """The figures of one window (blocking: run it in a worker thread).

    Args:
        services: the app's Services (ledger, settings, breakers).
        cache: the closed-bucket cache of this app.
        window: 1h | 24h | 7d | 30d.
        now: an aware UTC datetime.
    """
    ledger = services.observability.ledger
    unit, starts = window_buckets(window, now)
    buckets = cache.buckets(ledger, unit, starts, now)
    # Today's spend: the open day's rollup rows (already read for the 7- and 30-day views).
    midnight = bucket_start(now, "day")
    [today] = buckets[-1:] if unit == "day" else cache.buckets(ledger, "day", [midnight], now)
    return build_figures(
        window, unit, buckets, threshold=services.settings.ai_cost_alert_threshold,
        spent_today=today.totals()[COST], circuits=services.breakers.states(), now=now,
    )


def build_dashboard_router() -> APIRouter:
    """The dashboard's routes, all behind `require_dashboard`."""
    import jinja2
    from anyio import to_thread

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    cache = BucketCache()
    router = APIRouter(prefix="/dashboard", tags=["ops"], dependencies=[Depends(require_dashboard)])

    @router.get("", response_class=HTMLResponse)
    async def page(request: Request,
                   window: Annotated[Window, Query(description="1h, 24h, 7d or 30d")] = "24h") -> HTMLResponse:
        """The dashboard page (server-rendered; figures fetched from /dashboard/data)."""
        html = env.get_template("dashboard.html").render(
            window=window, windows=list(WINDOWS), refresh_s=REFRESH_S, base=str(request.url.path),
            threshold=request.app.state.services.settings.ai_cost_alert_threshold,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get("/data")
    async def data(request: Request,
                   window: Annotated[Window, Query(description="1h, 24h, 7d or 30d")] = "24h") -> dict[str, Any]:
        """The dashboard's figures as JSON: spend, tokens, latency, rates, circuits, top keys."""
        services = request.app.state.services
        now = dt.datetime.now(dt.UTC)
        return await to_thread.run_sync(lambda: dashboard_figures(services, cache, window, now))

    @router.get("/static/{name:path}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in STATIC:
            raise HTTPException(404, detail="no such dashboard file")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "private, max-age=3600"})

    return router
