"""Error answers that cannot themselves fail: a JSON response that always renders, and the handlers of
invalid input (422) built on it, installed by server.py.

Starlette's `JSONResponse` encodes with `ensure_ascii=False, allow_nan=False`: a lone surrogate echoed from
the input raises UnicodeEncodeError, a NaN raises ValueError, and an error handler that raises turns a 4xx
into a 500 (and uvicorn then drops the keep-alive connection, failing the client's next request too).
`SafeJSONResponse` renders the normal way and, only when that fails, again with every string escaped to ASCII
(`"\\ud800"` stays valid JSON) and every value JSON cannot hold (NaN, infinities, objects) as a string.

LangServe 0.3.3 (its last release) validates each input of a `/batch` request outside the block that turns
pydantic's `ValidationError` into FastAPI's 422, so one invalid item was a 500; `install_input_handlers`
answers a `ValidationError` of a served route's input model with the 422 invoke gives.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

__all__ = ["SafeJSONResponse", "install_input_handlers", "plain"]

log = logging.getLogger("skymarket.server")


def plain(value: Any) -> Any:
    """`value` with only what JSON holds: non-finite floats and unknown objects become strings.

    Args:
        value: any structure of dicts, lists, tuples and scalars.
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class SafeJSONResponse(JSONResponse):
    """A JSONResponse whose rendering never raises."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, TypeError):  # UnicodeEncodeError is a ValueError
            try:
                return json.dumps(plain(content), ensure_ascii=True, separators=(",", ":")).encode("ascii")
            except (ValueError, TypeError, RecursionError):
                return b'{"error":{"code":"unrenderable","message":"the error could not be rendered"}}'


def install_input_handlers(app: FastAPI, input_models: Iterable[str]) -> None:
    """422 for invalid input and the HTTP errors FastAPI raises, answered as FastAPI does, never raising.

    Args:
        app: the application.
        input_models: the titles of the served routes' input models, as pydantic names them in a
            `ValidationError` (its config's title, else the class name); a `ValidationError` of another model
            is a fault of ours: a 500 with a JSON body.
    """
    names = frozenset(input_models)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        try:
            return await request_validation_exception_handler(request, exc)
        except Exception:  # the input echoed could not be rendered: escaped instead
            return SafeJSONResponse({"detail": plain(exc.errors())}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _invalid_item(_: Request, exc: ValidationError) -> Response:
        if exc.title not in names:
            log.error("unexpected validation error of %s", exc.title, exc_info=exc)
            return SafeJSONResponse({"error": {"code": "internal_error", "message": "internal error"}},
                                    status_code=500)
        return SafeJSONResponse({"detail": plain(exc.errors(include_url=False))}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        try:
            return await http_exception_handler(request, exc)
        except Exception:
            return SafeJSONResponse({"detail": plain(exc.detail)}, status_code=exc.status_code)
