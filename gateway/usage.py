"""The LangChain callback that measures every model call: the model that answered, tokens, cost, latency.

Attached to each served chain itself (`instrument`), not passed in the request config: LangServe drops
request-config callbacks on its stream and batch endpoints, while callbacks bound to the runnable are
inherited by every child run on every endpoint. The handler keeps no per-request state of its own; it
writes to the current `RequestContext` (a ContextVar, which asyncio tasks and LangChain's executor threads
both inherit).

For each chat-model run:
    on_chat_model_start  the model asked for, start time (and the prompt, when AUDIT_TEXT is on)
    on_llm_new_token     the first non-empty token: time to first token (streams)
    on_llm_end           the model's configured name (whatever the server reports back: issue 20)
                         and `usage_metadata` (input, cache_read, output tokens) -> priced `ModelCall`
    on_llm_error         a failed `ModelCall` (the error's type only: provider messages can echo secrets)
A fallback thus shows as a failed call of the primary then an answered call of the fallback, which is
the one the cost is attributed to.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from gateway import context
from gateway.context import ModelCall
from gateway.pricing import PriceTable

__all__ = ["UsageCallback", "instrument"]

log = logging.getLogger("skymarket.usage")


@dataclass
class _Run:
    model: str
    started: float
    ctx: context.RequestContext | None
    first_token: float | None = None


class UsageCallback(BaseCallbackHandler):
    """Records one `ModelCall` per chat-model run into the current request's context."""

    run_inline = True  # no executor hop: cheap, and the ContextVar is read on the caller's side
    raise_error = False  # accounting must never break an answer

    def __init__(self, prices: PriceTable, *, keep_text: bool = False) -> None:
        """Args:
        prices: the price table.
        keep_text: keep the last user message and the answer on the context (for AUDIT_TEXT; redacted later).
        """
        self.prices = prices
        self.keep_text = keep_text
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()
        self.orphans = 0  # model calls seen outside any recorded request

    # --- callbacks ---
    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        params = kwargs.get("invocation_params") or {}
        model = str(params.get("model") or params.get("model_name") or (metadata or {}).get("ls_model_name") or "?")
        ctx = context.current()
        with self._lock:
            self._runs[run_id] = _Run(model=model, started=time.perf_counter(), ctx=ctx)
        if ctx is not None and self.keep_text and ctx.prompt_text is None and messages and messages[0]:
            ctx.prompt_text = _text(messages[0][-1])

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     **kwargs: Any) -> None:
        params = kwargs.get("invocation_params") or {}
        model = str(params.get("model") or params.get("model_name") or "?")
        with self._lock:
            self._runs[run_id] = _Run(model=model, started=time.perf_counter(), ctx=context.current())

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is None or run.first_token is not None or not token:
            return
        run.first_token = time.perf_counter()
        ctx = run.ctx
        if ctx is not None and (ctx.first_token_at is None or run.first_token < ctx.first_token_at):
            ctx.first_token_at = run.first_token

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        now = time.perf_counter()
        message = _first_message(response)
        meta = dict(getattr(message, "response_metadata", None) or {})
        llm_output = response.llm_output or {}
        # The name the model layer asked for (the configured name or alias), not the one the server reports back:
        # OpenAI answers with a dated snapshot, llama.cpp with its file path (issue 20). One name per model keeps
        # one series in the ledger, the metrics and the audit trail, and never leaks a server's file layout.
        model = run.model if run.model != "?" else str(meta.get("model_name") or llm_output.get("model_name") or "?")
        reported = _usage(message, llm_output)
        is_local = self.prices.is_local(model) or self.prices.is_local(run.model)
        tokens = reported or (0, 0, 0)
        if reported is None and not is_local:
            log.warning("model %r answered without reporting usage: its cost is unknown", model[:80])
        cost = self.prices.cost(model, input_tokens=tokens[0], cached_tokens=tokens[1], output_tokens=tokens[2],
                                is_local=is_local)
        priced = cost.priced and (is_local or reported is not None)
        call = ModelCall(
            model=model, ok=True, input_tokens=tokens[0], cached_tokens=tokens[1], output_tokens=tokens[2],
            cost_usd=cost.usd, priced=priced, latency_ms=(now - run.started) * 1000.0,
            ttft_ms=(run.first_token - run.started) * 1000.0 if run.first_token is not None else None,
            is_local=is_local,
        )
        self._record(run.ctx, call)
        if run.ctx is not None and self.keep_text:
            run.ctx.answer_text = _text(message) if message is not None else None

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        call = ModelCall(model=run.model, ok=False, latency_ms=(time.perf_counter() - run.started) * 1000.0,
                         error_type=type(error).__name__, is_local=self.prices.is_local(run.model))
        self._record(run.ctx, call)

    def _record(self, ctx: context.RequestContext | None, call: ModelCall) -> None:
        if ctx is None:
            self.orphans += 1
            return
        ctx.add_call(call)


def _first_message(response: LLMResult) -> Any:
    for gens in response.generations:
        for gen in gens:
            msg = getattr(gen, "message", None)
            if msg is not None:
                return msg
    return None


def _usage(message: Any, llm_output: dict[str, Any]) -> tuple[int, int, int] | None:
    """(input incl. cached, cached, output) from `usage_metadata`, else the raw `token_usage`; None if absent."""
    um = getattr(message, "usage_metadata", None)
    if um:
        details = um.get("input_token_details") or {}
        return int(um.get("input_tokens") or 0), int(details.get("cache_read") or 0), int(um.get("output_tokens") or 0)
    tu = llm_output.get("token_usage")
    if tu:
        cached = (tu.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        return int(tu.get("prompt_tokens") or 0), int(cached), int(tu.get("completion_tokens") or 0)
    return None


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def instrument(chain: Runnable, handler: UsageCallback) -> Runnable:
    """The chain with the usage callback bound to it (inherited by every model call inside, on every endpoint).

    Args:
        chain: a served runnable (its input/output types are kept).
        handler: the app's usage callback.
    """
    return chain.with_config(callbacks=[handler])
