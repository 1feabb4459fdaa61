"""Search over the drone listings, served at `/search` (invoke and batch).

    {"query", "limit", lat?, lon?, radius_miles?, category?, max_price?}   (the filters: retrieval.filters)
      -> deterministic parse -> [optional LLM hints, time-boxed] -> hybrid retrieval + geo rerank
      -> {"results": [listing + score + distance_miles], "in_service_area", "notice", "interpreted"}

The LLM step runs only when a model is given and SEARCH_LLM_PARSER is on; it can add to what the parser found
but never remove it, and a slow or failing model is ignored: the search never fails because of it. It sees
the customer's query only, never listing text.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chains.guard import GuardConfig, screen
from chains.prompting import PromptStore
from chains.schemas import InputModel
from errors import InputRejected
from gateway import context
from retrieval.engine import Outcome, SearchEngine
from retrieval.filters import InputFilters
from retrieval.llm_hints import Hints, ask_llm, merge_hints
from retrieval.query import Interpreted
from retrieval.schema import Listing
from settings import Settings

__all__ = ["SearchInput", "SearchOutput", "SearchResult", "build_search_chain"]

log = logging.getLogger("skymarket.search")


class _Query(InputModel):  # InputModel: a form the playground can draw (chains/schemas.py)
    query: str = Field(..., min_length=1, max_length=500, description="what the customer typed")
    limit: int = Field(default=10, ge=1, le=50, description="how many results at most (1-50)")
    lat: float | None = Field(default=None, ge=-90, le=90, description="where the service is needed")
    lon: float | None = Field(default=None, ge=-180, le=180)


# Flat, as the route has always taken it: the query's fields first, then one per filter (retrieval.filters).
class SearchInput(InputFilters, _Query):
    """A search: free text, plus optional explicit filters that override what the text says."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _check(self) -> SearchInput:
        if not self.query.strip():
            raise ValueError("query must not be blank")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give lat and lon together, or neither")
        return self


class SearchResult(Listing):
    score: float = Field(description="relevance, higher is better (not comparable across queries)")
    distance_miles: float | None = Field(description="from the searched place; null when none was given")


class SearchOutput(BaseModel):
    results: list[SearchResult]
    in_service_area: bool
    notice: str | None = None
    interpreted: Interpreted


def _output(out: Outcome) -> SearchOutput:
    results = [  # from the listing's attributes: half the cost of `**listing.model_dump()`
        SearchResult.model_validate({**h.listing.__dict__, "score": h.score, "distance_miles": h.distance_miles})
        for h in out.hits
    ]
    return SearchOutput(
        results=results, in_service_area=out.in_service_area, notice=out.notice, interpreted=out.interpreted
    )


def build_search_chain(
    *,
    settings: Settings,
    index: SearchEngine,
    model: Runnable | None = None,
    prompts: PromptStore | None = None,
    prompt_name: str = "search_parse",
) -> Runnable:
    """Builds the `/search` runnable.

    Args:
        settings: the service settings (SEARCH_LLM_PARSER, SEARCH_LLM_TIMEOUT_S).
        index: the search engine (`retrieval.engine.build_search_engine`).
        model: a chat model for the optional LLM step; the step is off without one.
        prompts: the prompt store holding the prompt file (needed with a model).
        prompt_name: the LLM step's prompt (the `search` preset's `prompt`).
    """
    use_llm = model is not None and prompts is not None and settings.search_llm_parser
    guard = GuardConfig.from_settings(settings)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="search-llm") if use_llm else None

    def parse(data: Any) -> dict[str, Any]:
        inp = data if isinstance(data, SearchInput) else SearchInput.model_validate(data)
        # The guard screens the query; its sanitized text (never fenced: it is matched, not prompted) is searched.
        verdict = screen(inp.query, source="search", config=guard)
        ctx = context.current()
        if ctx is not None:
            ctx.guard_action, ctx.guard_reasons = verdict.action, list(verdict.reasons)
        if verdict.action == "block":
            raise InputRejected("the search text was refused by the input guard", code="guard_blocked")
        if verdict.text != inp.query and verdict.text.strip():
            inp = inp.model_copy(update={"query": verdict.text})
        return {"input": inp, "interpreted": index.parser.parse(inp.query)}

    def enrich(state: dict[str, Any]) -> dict[str, Any]:
        if pool is None or model is None or prompts is None:
            return state
        inp: SearchInput = state["input"]
        future = pool.submit(ask_llm, model=model, prompts=prompts, query=inp.query, prompt_name=prompt_name)
        try:
            hints: Hints | None = future.result(timeout=settings.search_llm_timeout_s)
        # An optional step: any failure at all (timeout, provider error, garbage answer) is ignored on purpose.
        except Exception as exc:
            future.cancel()
            log.info("search LLM step skipped: %s", type(exc).__name__)
            return state
        if hints is not None:
            state["interpreted"] = merge_hints(state["interpreted"], hints, index.parser)
        return state

    def rank(state: dict[str, Any]) -> SearchOutput:
        inp: SearchInput = state["input"]
        it = state["interpreted"]
        return _output(index.search(inp.query, limit=inp.limit, lat=inp.lat, lon=inp.lon, filters=inp, interpreted=it))

    async def arank(state: dict[str, Any]) -> SearchOutput:
        inp: SearchInput = state["input"]
        it = state["interpreted"]
        out = await index.asearch(inp.query, limit=inp.limit, lat=inp.lat, lon=inp.lon, filters=inp, interpreted=it)
        return _output(out)

    async def aparse(data: Any) -> dict[str, Any]:
        return parse(data)  # guard + parser: well under a millisecond, cheaper on the loop than a thread hop

    async def asearch(data: Any) -> SearchOutput:
        return await arank(parse(data))

    # LangServe awaits the async versions: a repeated search never leaves the event loop, and a new one waits
    # for its embedding batch without holding a worker thread. `invoke` (tests, scripts) runs the sync ones.
    chain: Runnable
    if use_llm:
        chain = (
            RunnableLambda(parse, afunc=aparse).with_config(run_name="search_parse")
            | RunnableLambda(enrich).with_config(run_name="search_llm_hints")
            | RunnableLambda(rank, afunc=arank).with_config(run_name="search_rank")
        )
    else:  # one step: each LangChain step costs more event-loop CPU (run events) than a cached search itself
        chain = RunnableLambda(lambda data: rank(parse(data)), afunc=asearch)
    return chain.with_types(input_type=SearchInput, output_type=SearchOutput).with_config(run_name="search")
