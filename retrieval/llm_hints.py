"""The optional LLM step of query understanding: structured hints that can only add to the parser's reading.

The hints are generated, not written by hand: a category (the vocabulary's), a place, every filter marked
`Hint(...)` in retrieval.filters, and features (the vocabulary's). So is what the prompt tells the model about
them (`prompt_values()`, the `keys` variable of prompts/search_parse.yaml) and the JSON shape its golden cases
check (`hints_shape()`): both are kept in files, so the prompt's version changes with them, and
`python -m retrieval.vocab --write` rewrites them (tests/retrieval/test_vocab.py fails until then).
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, Field, create_model

from retrieval import filters
from retrieval.filters import SearchFilters
from retrieval.query import Interpreted, QueryParser
from retrieval.vocab import CATEGORIES, FEATURE_NAMES, Category

__all__ = ["Hints", "LLMHints", "ask_llm", "hints_shape", "merge_hints", "prompt_values"]

PROMPT = "search_parse"


class Hints(BaseModel):
    """The hints' fixed part (the type to annotate with); `LLMHints` adds the hinted filters."""

    category: Category | None = None
    place: str | None = Field(default=None, max_length=100)
    features: list[str] = Field(default_factory=list, max_length=20)


# the hints: the fields above plus every filter the LLM step may set, typed and bounded as the filter is
_FIELDS = SearchFilters.model_fields
_HINTED: dict[str, Any] = {n: (_FIELDS[n].annotation, _FIELDS[n]) for n in filters.hints()}
LLMHints = create_model("LLMHints", __base__=Hints, **_HINTED)


def prompt_values() -> dict[str, str]:
    """The prompt's generated variables: `keys`, one indented line per key of the hints (what goes there)."""
    lines = [
        f'"category": one of {", ".join(CATEGORIES)}, or null when unclear',
        '"place": the city, township or county the customer names, spelled correctly, or null',
        *(f'"{name}": {text}' for name, text in filters.hints().items()),
        f'"features": a list drawn from {", ".join(FEATURE_NAMES)} (may be empty)',
    ]
    return {"keys": ";\n".join(f"  {line}" for line in lines) + "."}


def _json_type(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        return "|".join(_json_type(a) for a in get_args(annotation))
    origin = get_origin(annotation) or annotation
    if origin is Literal:
        return _json_type(type(get_args(annotation)[0]))
    names = {str: "string", float: "number", int: "integer", bool: "boolean", list: "list", type(None): "null"}
    return names.get(origin, "object")


def hints_shape() -> dict[str, str]:
    """The JSON shape of the hints, as golden cases check it (`json:` in prompts/cases/search_parse.yaml)."""
    order = ["category", "place", *filters.hints(), "features"]
    return {name: _json_type(LLMHints.model_fields[name].annotation) for name in order}


def ask_llm(
    *, model: Runnable, prompts: Any, query: str, prompt_name: str = PROMPT, config: RunnableConfig | None = None
) -> Hints:
    """Asks the model for hints: structured output when the model supports it, JSON parsing otherwise.

    Args:
        model: a chat model (or a chain of models with fallbacks).
        prompts: the `PromptStore` with `search_parse.yaml`.
        query: the customer's query (data, fenced by the prompt).
        prompt_name: the prompt file (the `search` preset's `prompt`).
        config: the caller's run config (its callbacks meter the call as part of the caller's run).
    """
    # The file's own `values` win; these fill a prompt file that has none (an operator's own prompt).
    system, human = prompts.get(prompt_name).render(**prompt_values(), query=query)
    messages = [("system", system), ("human", human or query)]
    try:
        runnable = model.with_structured_output(LLMHints)  # type: ignore[attr-defined]
    except (AttributeError, NotImplementedError):  # a model without tool calling: parse its JSON instead
        runnable = model | PydanticOutputParser(pydantic_object=LLMHints)
    result = runnable.invoke(messages, config)
    return result if isinstance(result, LLMHints) else LLMHints.model_validate(result)


def merge_hints(it: Interpreted, hints: Hints, parser: QueryParser) -> Interpreted:
    """Adds what the parser did not find; the parser's own findings always win.

    Args:
        it: the parser's reading.
        hints: the model's hints.
        parser: reads the hinted place against the gazetteer.
    """
    out = it.model_copy(deep=True)
    added = False
    if out.category is None and hints.category is not None:
        out.category, out.categories, added = hints.category, [hints.category], True
    if out.place is None and out.outside_place is None and hints.place:
        seen = parser.parse(hints.place)
        if seen.place is not None or seen.outside_place is not None:
            out.place, out.outside_place, added = seen.place, seen.outside_place, True
    for name in filters.hints():
        if getattr(out, name) is None and getattr(hints, name) is not None:
            setattr(out, name, getattr(hints, name))
            added = True
    extra = [f for f in hints.features if f in FEATURE_NAMES and f not in out.features]
    if extra:
        out.features, added = [*out.features, *extra], True
    out.llm = added
    return out
