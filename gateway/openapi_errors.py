"""Every error a client can get, as /openapi.json documents it: the body's schema and each status's codes.

    {"error": {"code": "guard_blocked", "message": "this request looks like ..."},
     "message": "guard_blocked: this request looks like ..."}

`server.py` writes that body for every `SkyMarketError` (errors.py), with the code in an `X-Error-Code` header
too; the flat `message` repeats it for clients that only read a top-level `message` (LangChain.js
`RemoteRunnable.stream()` puts that in its error), the header for those that read no body (Python
`langserve.RemoteRunnable.stream()`).
A 422 is mostly FastAPI's own validation body (`{"detail": [...]}`), as LangServe answers a malformed input;
the guard's length limit answers one in ours (`input_too_long`).

`ERRORS` is the one list of codes. tests/gateway/test_openapi.py scans the source for every `code=` an error
is raised with and fails if one is missing here: a new code needs its line.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ERRORS", "ErrorBody", "ErrorDetail", "error_response"]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: one of the codes listed under the response's status")
    message: str = Field(description="what went wrong, safe to show a user (never a secret or a provider's text)")


class ErrorBody(BaseModel):
    """The body of every error this service raises itself (422 validation errors are FastAPI's own)."""

    error: ErrorDetail
    message: str | None = Field(default=None, description="'<code>: <message>', for clients reading a flat message")


# status -> (what it means, {code: when})
ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    400: ("The request was refused", {
        "guard_blocked": "the input guard took the text for a prompt-injection attempt (no model was called)",
        "guard_too_long": "a text is longer than GUARD_MAX_CHARS",
        "moderation_flagged": "/describe, /assistant, /chat: moderation refused the operator's or customer's text",
        "batch_too_large": "/describe/batch: more items than one batch may hold",
        "token_estimate_over_limit": "the request alone may use more tokens than a tokens-per-minute limit allows",
        "invalid_max_tokens": "a max_tokens in the config is not a positive integer",
        "max_tokens_too_large": "a max_tokens in the config is over the service's cap",
        "invalid_user_id": "the X-User-Id header is malformed",
        "input_rejected": "the content was refused",
        "malformed_body": "the request body cannot be read as JSON text",
        "invalid_utf8": "the request body is not valid UTF-8",
        "json_too_deep": "the JSON body is nested deeper than MAX_JSON_DEPTH",
        "non_finite_number": "the JSON body has a number that is not finite (NaN, Infinity)",
        "number_too_long": "the JSON body has an integer of more digits than can be read",
    }),
    401: ("Not authenticated", {
        "missing_api_key": "no key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        "invalid_api_key": "the key is unknown or revoked",
        "provider_auth_failed": "the AI provider refused this service's own credentials",
    }),
    402: ("The daily budget is spent", {
        "budget_exceeded": "a hard daily budget (the key's or the service's) is spent; paid models are off until "
                           "00:00 UTC (Retry-After)",
    }),
    403: ("Not allowed", {
        "missing_scope": "the key lacks this route's scope",
        "loopback_only": "/dashboard in development: loopback callers only",
    }),
    413: ("The body is too large", {"body_too_large": "the request body is over MAX_BODY_BYTES"}),
    422: ("The input is invalid", {
        "input_too_long": "a text is over its length limit (the message names it); other invalid input gets "
                          "FastAPI's `{detail: [...]}` body",
        "lone_surrogate": "the JSON body has a lone UTF-16 surrogate escape, which is not a character",
    }),
    429: ("Too many requests: retry after Retry-After seconds", {
        "rate_limited": "a requests- or tokens-per-minute limit (X-RateLimit-Exceeded names which)",
        "provider_rate_limited": "the AI provider is rate limiting this service, and no fallback answered",
    }),
    500: ("A fault of this service", {
        "internal_error": "an unexpected error",
        "configuration_error": "the service's configuration is wrong or incomplete",
        "prompt_error": "a prompt file is malformed",
    }),
    502: ("The AI provider refused the request", {"provider_error": "the provider refused, and no fallback answered"}),
    503: ("Unavailable for now: retry after Retry-After seconds", {
        "not_ready": "a dependency (model, search index) is not ready yet",
        "provider_unavailable": "every model failed (error, timeout or garbage answer)",
        "circuit_open": "every model's circuit breaker is open",
        "limits_unavailable": "the rate-limit store is down and GATEWAY_REDIS_FAILURE is deny",
        "database_unavailable": "the database behind /usage, /dashboard or the key store is down",
    }),
    504: ("Out of time", {"deadline_exceeded": "the request ran past AI_REQUEST_TIMEOUT"}),
}
RETRY_AFTER = {429, 503}  # always sent with these (402 and 504 may carry it too)


def error_response(status: int, *, ref: str) -> dict[str, Any]:
    """The OpenAPI response object of one error status.

    Args:
        status: an HTTP status listed in `ERRORS`.
        ref: the JSON reference of the `ErrorBody` schema.
    """
    summary, codes = ERRORS[status]
    lines = "\n".join(f"- `{code}`: {when}" for code, when in codes.items())
    response: dict[str, Any] = {
        "description": f"{summary}. `error.code` is one of:\n{lines}",
        "content": {"application/json": {"schema": {"$ref": ref}}},
        "headers": {"X-Error-Code": {"description": "`error.code` again, for clients that read no body (streams)",
                                     "schema": {"type": "string"}}},
    }
    if status in (402, 429, 503, 504):
        response["headers"]["Retry-After"] = {
            "description": "seconds to wait before trying again",
            "required": status in RETRY_AFTER,
            "schema": {"type": "integer", "minimum": 0},
        }
    if status == 429:
        response["headers"]["X-RateLimit-Exceeded"] = {
            "description": "the limit reached: user_rpm, key_rpm, global_rpm, user_tpm, key_tpm or global_tpm "
                           "(absent when the provider is the one rate limiting)",
            "schema": {"type": "string"},
        }
    return response
