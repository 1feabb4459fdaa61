"""Input models whose JSON schema the LangServe playground can draw: `InputModel`, and `drawable()` under it.

An optional field (`lat: float | None = None`) gets the JSON schema `{"anyOf": [{"type": "number"},
{"type": "null"}], "default": null}`. The playground's form library (JSON Forms, in LangServe's built bundle)
draws every branch of an `anyOf` and has no control for `{"type": "null"}`: the whole page stays blank
(console: `Unknown type: {"type":"null"}`). `InputModel` writes such a field as what a form can draw —
`{"type": "number"}`, not required, with its default when it has one other than null; an optional enum stays an
enum (a drop-down). Only the schema changes: validation is the field's own, so a missing field and an explicit
null are both still accepted, and /openapi.json, /<route>/input_schema and the playground all show this schema.

How to use it, for any route's input (the input of `/search`, `/describe`, `/guard`; the next route's too):

    from chains.schemas import InputModel

    class AssistantInput(InputModel):          # instead of BaseModel; model_config etc. as usual
        messages: list[ChatMessage]            # a nested model must be an InputModel too (ChatMessage is)
        location: str | None = None            # drawn as an optional text box; null still accepted

    chain.with_types(input_type=AssistantInput, output_type=...)

A model that cannot change its base (a third party's) can call `drawable(schema)` from its own
`__get_pydantic_json_schema__`, as `InputModel` does. tests/browser/test_playground.py checks each
playground in a real browser: add the route's line there.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = ["InputModel", "drawable"]

_NULL = {"type": "null"}
# Keywords whose values are schemas (or maps/lists of schemas) a form may descend into.
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_MANY = ("prefixItems", "allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def drawable(schema: Any) -> Any:
    """Rewrites, in place and all the way down, every `anyOf` that allows null into the non-null schema.

    `{"anyOf": [X, {"type": "null"}], "default": null, "title": T}` becomes `{**X, "title": T}`: the null
    default goes (a form would fill the field with a value its own type refuses); any other default stays.
    With several non-null branches the `anyOf` keeps them and only loses the null one.

    Args:
        schema: a JSON schema (a dict; lists and other values are walked or returned as they are).

    Returns:
        The same object, rewritten.
    """
    if isinstance(schema, list):
        for item in schema:
            drawable(item)
        return schema
    if not isinstance(schema, dict):
        return schema
    for key in _ONE:
        if isinstance(schema.get(key), dict):
            drawable(schema[key])
    for key in _MANY:
        if isinstance(schema.get(key), list):
            drawable(schema[key])
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for sub in schema[key].values():
                drawable(sub)
    branches = schema.get("anyOf")
    if isinstance(branches, list) and _NULL in branches:
        rest = [b for b in branches if b != _NULL]
        del schema["anyOf"]
        if schema.get("default", 0) is None:
            del schema["default"]
        if len(rest) == 1:
            # The field's own keywords (title, description, default) win over the branch's.
            merged = {**rest[0], **schema}
            schema.clear()
            schema.update(merged)
        elif rest:
            schema["anyOf"] = rest
    return schema


class InputModel(BaseModel):
    """A pydantic model whose JSON schema the playground can draw (see the module docstring); validation as
    `BaseModel`'s. Subclass it for a route's input model and for every model nested in it."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        # Pydantic hands back a $ref to the model's definition when the model is nested (as in /openapi.json):
        # rewrite the definition itself, and keep the reference where it was.
        drawable(handler.resolve_ref_schema(json_schema))
        return json_schema
