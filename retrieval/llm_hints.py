"""The optional LLM step of query understanding: structured hints that can only add to the parser's reading."""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field

from retrieval.query import Interpreted, QueryParser
from retrieval.schema import CATEGORIES, Category
from retrieval.vocab import FEATURE_PATTERNS

__all__ = ["LLMHints", "ask_llm", "merge_hints"]

PROMPT = "search_parse"


class LLMHints(BaseModel):
    category: Category | None = None
    place: str | None = Field(default=None, max_length=100)
    max_price: float | None = Field(default=None, gt=0)
    features: list[str] = Field(default_factory=list, max_length=20)


def ask_llm(*, model: Runnable, prompts: Any, query: str, prompt_name: str = PROMPT) -> LLMHints:
    """Asks the model for hints: structured output when the model supports it, JSON parsing otherwise.

    Args:
        model: a chat model (or a chain of models with fallbacks).
        prompts: the `PromptStore` with `search_parse.yaml`.
        query: the customer's query (data, fenced by the prompt).
        prompt_name: the prompt file (the `search` preset's `prompt`).
    """
    system, human = prompts.get(prompt_name).render(
        categories=", ".join(CATEGORIES), features=", ".join(FEATURE_PATTERNS), query=query
    )
    messages = [("system", system), ("human", human or query)]
    try:
        runnable = model.with_structured_output(LLMHints)  # type: ignore[attr-defined]
    except (AttributeError, NotImplementedError):  # a model without tool calling: parse its JSON instead
        runnable = model | PydanticOutputParser(pydantic_object=LLMHints)
    result = runnable.invoke(messages)
    return result if isinstance(result, LLMHints) else LLMHints.model_validate(result)


def merge_hints(it: Interpreted, hints: LLMHints, parser: QueryParser) -> Interpreted:
    """Adds what the parser did not find; the parser's own findings always win."""
    out = it.model_copy(deep=True)
    added = False
    if out.category is None and hints.category is not None:
        out.category, out.categories, added = hints.category, [hints.category], True
    if out.place is None and out.outside_place is None and hints.place:
        seen = parser.parse(hints.place)
        if seen.place is not None or seen.outside_place is not None:
            out.place, out.outside_place, added = seen.place, seen.outside_place, True
    if out.max_price is None and hints.max_price is not None:
        out.max_price, added = hints.max_price, True
    extra = [f for f in hints.features if f in FEATURE_PATTERNS and f not in out.features]
    if extra:
        out.features, added = [*out.features, *extra], True
    out.llm = added
    return out
