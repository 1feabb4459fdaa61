"""Usage reports: `GET /usage` (admin), `GET /metrics`, and `skymarket usage --by day|key|model|route`.

Both routes need the `admin` scope (`require_admin`, the gateway's auth): an API key holding it, or in
development a keyless call from loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from gateway.auth import require_scope
from gateway.ledger import GROUPS, Group, Ledger, ReportRow, build_ledger

__all__ = ["build_router", "format_table", "main", "parse_since", "require_admin"]


# The admin scope (gateway/auth.py): an API key with `admin`; in development, keyless loopback callers too.
require_admin = require_scope("admin")


_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


def parse_since(value: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """`7d`, `24h`, `30m`, `2w`, `today`, or an ISO date/time (naive = UTC) -> an aware UTC datetime."""
    now = now or dt.datetime.now(dt.UTC)
    v = value.strip().lower()
    if v == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    m = _RELATIVE.match(v)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - dt.timedelta(**{unit: int(m.group(1))})
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"cannot read {value!r}: use 7d, 24h, today or an ISO date such as 2026-11-01") from None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _when(name: str, value: str) -> dt.datetime:
    """`parse_since` for a query parameter: a bad value is FastAPI's own 422 body, as any malformed parameter's."""
    try:
        return parse_since(value)
    except ValueError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ["query", name], "msg": str(exc),
                                       "input": value}]) from None


def build_router() -> APIRouter:
    """`GET /usage` and `GET /metrics`, both behind `require_admin`."""
    router = APIRouter(tags=["ops"], dependencies=[Depends(require_admin)])

    @router.get("/usage")
    async def usage(request: Request, by: Annotated[Group, Query()] = "day",
                    since: Annotated[str, Query(description="7d, 24h, today or an ISO date")] = "7d",
                    until: Annotated[str | None, Query()] = None,
                    key: Annotated[str | None, Query(max_length=64)] = None,
                    route: Annotated[str | None, Query(max_length=32)] = None) -> dict[str, Any]:
        """Requests, tokens, cost, error rate and p50/p95 latency, grouped by day, key, model or route."""
        start = _when("since", since)
        end = _when("until", until) if until else None
        ledger: Ledger = request.app.state.services.observability.ledger
        from anyio import to_thread

        rows = await to_thread.run_sync(lambda: ledger.report(by, since=start, until=end, key_name=key, route=route))
        return {"by": by, "since": start.isoformat(), "until": end.isoformat() if end else None,
                "rows": [r.as_dict() for r in rows]}

    @router.get("/metrics")
    async def prometheus(request: Request) -> Response:
        """Prometheus text format."""
        body, ctype = request.app.state.services.observability.metrics.render()
        return Response(body, media_type=ctype)

    return router


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def format_table(rows: list[ReportRow], by: str) -> str:
    """A readable fixed-width table with a total line."""
    head = [by, "requests", "tokens in", "cached", "tokens out", "cost USD", "errors", "fallback", "p50 ms",
            "p95 ms"]
    body = [[r.group, f"{r.requests:,}", f"{r.input_tokens:,}", f"{r.cached_tokens:,}", f"{r.output_tokens:,}",
             f"{r.cost_usd:,.4f}" + ("*" if r.unpriced else ""), f"{r.error_rate:.1%}", f"{r.fallback_rate:.1%}",
             _ms(r.p50_ms), _ms(r.p95_ms)] for r in rows]
    if rows:
        n = sum(r.requests for r in rows)
        body.append(["total", f"{n:,}", f"{sum(r.input_tokens for r in rows):,}",
                     f"{sum(r.cached_tokens for r in rows):,}", f"{sum(r.output_tokens for r in rows):,}",
                     f"{sum(r.cost_usd for r in rows):,.4f}", f"{sum(r.errors for r in rows) / n:.1%}",
                     f"{sum(r.fallbacks for r in rows) / n:.1%}", "", ""])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(body) > 1:
        lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    if any(r.unpriced for r in rows):
        lines.append("* includes calls to models missing from data/pricing.json (counted as $0)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`skymarket usage --by day|key|model|route --since 7d [--until ...] [--key NAME] [--json]`."""
    import json

    from settings import load_settings

    p = argparse.ArgumentParser(prog="skymarket usage", description="usage and cost report from the ledger")
    p.add_argument("--by", choices=GROUPS, default="day")
    p.add_argument("--since", default="7d", help="7d, 24h, today or an ISO date (UTC); default 7d")
    p.add_argument("--until", default=None)
    p.add_argument("--key", default=None, help="only this API key's requests (by name)")
    p.add_argument("--route", default=None)
    p.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    args = p.parse_args(argv)
    try:
        since = parse_since(args.since)
        until = parse_since(args.until) if args.until else None
    except ValueError as exc:
        p.error(str(exc))
    ledger = build_ledger(load_settings()).create()
    try:
        rows = ledger.report(args.by, since=since, until=until, key_name=args.key, route=args.route)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    elif not rows:
        print(f"no usage since {since:%Y-%m-%d %H:%M} UTC")
    else:
        window = f"since {since:%Y-%m-%d %H:%M} UTC" + (f" until {until:%Y-%m-%d %H:%M}" if until else "")
        print(f"usage by {args.by} {window}")
        print(format_table(rows, args.by))
    return 0
