"""The LangServe request envelope, checked before LangServe reads it: `{"input", "config"?, "kwargs"?}`, and
`{"inputs": [...], "config"?}` for batch.

LangServe 0.3.3 (its last release) answers a 500 for several mistakes of the client's (found by
tests/test_contract.py): a body that is not UTF-8, a null `config` or a non-list `inputs` (a TypeError past its
shallow validation), and any invalid item of a batch (validated outside its translation of validation errors
into a 422). `check_envelope` refuses them first with FastAPI's own 422 body, the one /openapi.json documents.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

__all__ = ["check_envelope", "invalid_json"]


def invalid_json() -> RequestValidationError:
    """LangServe's own 422 for a body that is not JSON (it lets one that is not UTF-8 crash instead)."""
    return RequestValidationError(["Invalid JSON body"])


def _refuse(field: str, message: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ["body", field], "msg": message, "input": value}])


def check_envelope(body: Any, endpoint: str, input_model: type[BaseModel] | None = None) -> None:
    """Raises a 422 for an envelope LangServe would crash on; anything else is left to LangServe's validation.

    Args:
        body: the request's parsed JSON.
        endpoint: the LangServe endpoint: invoke, batch, stream, stream_log or stream_events.
        input_model: the route's input model, to validate each item of a batch with (as LangServe then does).

    Raises:
        RequestValidationError: `config` is null or not an object (a list of objects for batch), `inputs` of a
            batch is not a list, or an item of it is invalid.
    """
    if not isinstance(body, dict):
        return
    if endpoint == "batch" and "inputs" in body and not isinstance(body["inputs"], list):
        raise _refuse("inputs", "inputs must be a list of inputs", body["inputs"])
    if "config" in body:
        config = body["config"]
        many = endpoint == "batch" and isinstance(config, list)
        if not (isinstance(config, dict) or (many and all(isinstance(c, dict) for c in config))):
            what = "an object or a list of objects" if endpoint == "batch" else "an object"
            raise _refuse("config", f"config must be {what} (leave it out for none)", config)
    if endpoint == "batch" and input_model is not None:
        for i, item in enumerate(body.get("inputs") or ()):
            try:
                input_model.model_validate(item)
            except ValidationError as exc:
                raise RequestValidationError(
                    [{**e, "loc": ("body", "inputs", i, *e["loc"])} for e in exc.errors(include_url=False)]
                ) from None
