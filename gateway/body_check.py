"""`BodyCheck`: one pure ASGI middleware that refuses request bodies no route can handle safely, before any
route, dependency or parser sees them.

Python's JSON parser recurses once per nesting level, so a body nested 10,000 deep raised RecursionError
wherever it was parsed (the gateway's token estimate, LangServe, pydantic): a 500, and uvicorn then closes
the keep-alive connection, failing the client's next request too. Bytes that are not UTF-8, numbers Python
cannot turn into values (NaN, 1e999, an integer of 5,000 digits) and lone UTF-16 surrogates (`"\\ud800"`:
valid JSON, but not Unicode text, so neither the response encoder nor PostgreSQL can take them) failed the
same way further in. Checked here once, every route (the LangServe routes with all their endpoints, and any
route added later) gets a clear 4xx instead:

    more than MAX_BODY_BYTES                 413 body_too_large
    not UTF-8                                400 invalid_utf8        (names the byte offset)
    nested deeper than MAX_JSON_DEPTH        400 json_too_deep       (names the limit; found without recursion)
    NaN, Infinity, a number that overflows   400 non_finite_number
    an integer too long to convert           400 number_too_long
    a lone UTF-16 surrogate escape           422 lone_surrogate      (echoes the escape, as ASCII)

A body that is simply not JSON passes through: each route already answers that (LangServe: 422).
The check reads the body once and hands the same bytes on, without parsing it unless a cheap scan finds
something that may need it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import BodyTooDeep, InvalidUnicode, MalformedBody, PayloadTooLarge, SkyMarketError
from gateway.json_scan import NonFinite, json_depth_over, lone_surrogate, maybe_unparseable_number, parse_finite

__all__ = ["BodyCheck", "check_body"]

_METHODS = frozenset({"POST", "PUT", "PATCH"})


def check_body(body: bytes, *, max_depth: int) -> SkyMarketError | None:
    """What is wrong with a request body, or None (also None for text that is not JSON at all: the route
    answers that itself). A typical body costs a few microseconds: the body is parsed here only when a
    cheap scan finds something that may be a number Python cannot hold.

    Args:
        body: the whole request body.
        max_depth: MAX_JSON_DEPTH.
    """
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return MalformedBody(f"the request body is not valid UTF-8 (byte {exc.start}); send JSON as UTF-8",
                             code="invalid_utf8")
    if json_depth_over(body, max_depth):
        return BodyTooDeep(f"the JSON body is nested deeper than {max_depth} levels, the limit (MAX_JSON_DEPTH)")
    lone = lone_surrogate(body)
    if lone is not None:
        at, escape = lone
        return InvalidUnicode(f"the JSON body has a lone UTF-16 surrogate {escape} (byte {at}): it is not a "
                              "Unicode character; send text as valid UTF-8 or escape surrogates in pairs")
    if not maybe_unparseable_number(body):
        return None
    try:
        parse_finite(text)
    except NonFinite as exc:
        return MalformedBody(f"the JSON body has a number that is not finite ({exc}); send finite numbers",
                             code="non_finite_number")
    except json.JSONDecodeError:
        return None  # not JSON: the route's own answer (LangServe: 422 "Invalid JSON body")
    except ValueError:  # an integer of more digits than Python converts
        return MalformedBody(f"the JSON body has a number longer than {sys.get_int_max_str_digits()} digits",
                             code="number_too_long")
    except RecursionError:  # not reached below a sane MAX_JSON_DEPTH; never a 500 all the same
        return BodyTooDeep(f"the JSON body is nested deeper than {max_depth} levels, the limit (MAX_JSON_DEPTH)")
    return None


Responder = Callable[[SkyMarketError], Any]  # an error -> an ASGI response (server.py's error mapping)


class BodyCheck:
    """Pure ASGI middleware: reads a POST/PUT/PATCH body (at most `max_bytes`), refuses it through `respond`
    when `check_body` finds it unsafe, else passes the same bytes on."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int, respond: Responder) -> None:
        """Args:
        app: the wrapped application.
        max_bytes: MAX_BODY_BYTES; a larger body is refused with 413 without being read further.
        max_depth: MAX_JSON_DEPTH.
        respond: turns an error into an ASGI response (server.py's `_error_response`).
        """
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(PayloadTooLarge(f"the request body is {declared} bytes; the limit is {self.max_bytes}"),
                               scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(PayloadTooLarge(f"the request body is over the limit of {self.max_bytes} bytes"),
                                   scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        problem = check_body(body, max_depth=self.max_depth)
        if problem is not None:
            await self._refuse(problem, scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect a stream listens for

        await self.app(scope, replay, send)

    async def _refuse(self, error: SkyMarketError, scope: Scope, receive: Receive, send: Send) -> None:
        await self.respond(error)(scope, receive, send)
