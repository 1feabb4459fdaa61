"""The service's errors. Each carries a stable `code`; `server.py` alone turns them into HTTP statuses.

    SkyMarketError                      base: code, HTTP status, a message safe to show a user
    ├── ConfigError                     configuration is wrong or missing (settings, presets, model file)
    │   ├── ProviderAuthError           the provider refused our credentials (401 upstream)
    │   └── DataKeyError                stored text does not decrypt with any configured DATA_ENCRYPTION_KEY
    ├── PromptError                     a prompt file is malformed, or a variable is missing
    ├── InputRejected                   the request's content is refused (guard block, moderation)
    ├── MalformedBody                   400: a body no parser may take (not UTF-8, NaN, a 5,000-digit number)
    │   ├── BodyTooDeep                 400: JSON nested deeper than MAX_JSON_DEPTH (json_too_deep)
    │   └── InvalidUnicode              422: a lone UTF-16 surrogate escape (lone_surrogate)
    ├── ProviderError                   the model provider failed after fallbacks
    │   ├── ProviderRateLimited         upstream 429
    │   └── ProviderUnavailable         5xx, timeout, connection failure, garbage answer
    ├── NotReady                        a dependency (model, index) is not ready yet
    ├── RetentionError                  a prune refused or failed (e.g. a broken audit chain is never pruned)
    ├── Unauthorized                    401: no API key (missing_api_key) or a wrong/revoked one (invalid_api_key)
    ├── Forbidden                       403: the key lacks the route's scope (missing_scope)
    ├── RateLimited                     429: a requests/tokens-per-minute limit (the message names which)
    ├── BudgetExceeded                  402: a hard daily budget is spent; paid models refused
    ├── PayloadTooLarge                 413: the request body is over MAX_BODY_BYTES
    └── InputTooLong                    422: a text is over its length limit (the message names the limit)

Messages never contain secrets or upstream response bodies: provider text can echo keys or prompts.
"""

from __future__ import annotations

__all__ = [
    "BodyTooDeep",
    "BudgetExceeded",
    "ConfigError",
    "DataKeyError",
    "Forbidden",
    "InputRejected",
    "InputTooLong",
    "InvalidUnicode",
    "MalformedBody",
    "NotReady",
    "PayloadTooLarge",
    "PromptError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderUnavailable",
    "RateLimited",
    "RetentionError",
    "SkyMarketError",
    "Unauthorized",
    "from_provider_error",
]


class SkyMarketError(Exception):
    code = "internal_error"
    status = 500
    default_retry_after: float | None = None  # Retry-After when the raiser gives none (429 and 503 always have one)

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after


class ConfigError(SkyMarketError):
    code = "configuration_error"
    status = 500


class ProviderAuthError(ConfigError):
    code = "provider_auth_failed"
    status = 401


class DataKeyError(ConfigError):
    code = "data_key_error"
    status = 500


class PromptError(SkyMarketError):
    code = "prompt_error"
    status = 500


class InputRejected(SkyMarketError):
    code = "input_rejected"
    status = 400


class MalformedBody(SkyMarketError):
    code = "malformed_body"
    status = 400


class BodyTooDeep(MalformedBody):
    code = "json_too_deep"
    status = 400


class InvalidUnicode(MalformedBody):
    code = "lone_surrogate"
    status = 422


class ProviderError(SkyMarketError):
    code = "provider_error"
    status = 502


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    status = 429
    default_retry_after = 5.0


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503
    default_retry_after = 5.0


class NotReady(SkyMarketError):
    code = "not_ready"
    status = 503
    default_retry_after = 5.0


class RetentionError(SkyMarketError):
    """Pruning a store refused or failed (`skymarket prune`, the daily job): never raised by a request."""

    code = "retention_failed"
    status = 500


class Unauthorized(SkyMarketError):
    code = "invalid_api_key"
    status = 401


class Forbidden(SkyMarketError):
    code = "missing_scope"
    status = 403


class RateLimited(SkyMarketError):
    code = "rate_limited"
    status = 429
    default_retry_after = 1.0


class BudgetExceeded(SkyMarketError):
    code = "budget_exceeded"
    status = 402


class PayloadTooLarge(SkyMarketError):
    code = "body_too_large"
    status = 413


class InputTooLong(SkyMarketError):
    """A validation error, raised before any screening: a size limit is not a verdict on the content."""

    code = "input_too_long"
    status = 422


def from_provider_error(exc: BaseException) -> SkyMarketError | None:
    """Classifies an exception raised by the OpenAI client; None if it is not a provider error."""
    import json

    import openai  # local import: errors.py stays importable without the SDK loaded

    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderAuthError("the AI provider refused the configured credentials")
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited("the AI provider is rate limiting us; try again shortly", retry_after=_retry(exc))
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError | openai.InternalServerError):
        return ProviderUnavailable("the AI provider is unavailable; try again shortly", retry_after=5)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return ProviderUnavailable("the AI provider sent a malformed answer", retry_after=5)
    if isinstance(exc, openai.APIStatusError):
        return ProviderError("the AI provider refused the request")
    return None


def _retry(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
