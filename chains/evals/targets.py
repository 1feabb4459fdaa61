"""How a golden case reaches its chain: one target per prompt, built with the product's own factories.

    chat          the assistant's text view (/chat), on the shipped search index: {"messages": [...]} -> the
    chat_local    answer text with its cards; keyed by the prompt its first model reads (the embedded model
                  has its own, the chat preset's `local:`), so `eval chat` runs on OpenAI, `eval chat_local`
                  on the embedded model
    describe      the describe chain (cache off, so every run asks the model): facts -> the description
    search_parse  the search's LLM step (`retrieval.llm_hints.ask_llm`): {"query": ...} -> the hints as JSON

Each target is a Runnable, so the usage callback passed in the run's config sees every model call.
`product_targets(settings)` builds them on the configured models (the CLI); tests call `build_targets` with fakes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from chains.assistant import build_assistant_chain
from chains.describe import DescribeOutput, build_describe_chain
from chains.evals.checks import Judge, build_judge
from chains.prompting import PromptStore
from retrieval.llm_hints import ask_llm
from settings import Settings

__all__ = ["build_targets", "product_targets"]


def build_targets(
    *,
    settings: Settings,
    prompts: PromptStore,
    chat_model: Runnable | None = None,
    describe_model: Runnable | None = None,
    search_model: Runnable | None = None,
    local_base_url: str | None = None,
    engine: Any = None,
    local_chat_model: Runnable | None = None,
) -> dict[str, Runnable]:
    """Builds one target per use case whose model is given, keyed by the preset's prompt name.

    Args:
        settings: the service's settings (presets, guard, describe settings).
        prompts: the prompt store the chains read (the prompt files under evaluation).
        chat_model: the chat use case's model (with fallbacks), or None to leave chat out.
        describe_model: the describe use case's model, or None.
        search_model: the search use case's model, or None.
        local_base_url: the local model's URL, as given to the models (describe names models with it).
        engine: the search engine the assistant cites from; the shipped index (`build_search_engine`) when None.
        local_chat_model: the embedded model alone, when the chat model starts with a paid one: its own prompt
            (the chat preset's `local:`) is then evaluated too.
    """
    targets: dict[str, Runnable] = {}
    if chat_model is not None:
        if engine is None:
            from retrieval.engine import build_search_engine

            engine = build_search_engine(settings=settings)
        chat = build_assistant_chain(settings=settings, model=chat_model, engine=engine, prompts=prompts, view="text",
                                     evaluate_prompt=True)
        targets[chat.prompt_name] = chat.with_config(run_name="eval:chat")  # the first model's prompt
        if local_chat_model is not None:  # the embedded model's own prompt, to compare with the paid one's
            local = build_assistant_chain(settings=settings, model=local_chat_model, engine=engine, prompts=prompts,
                                          view="text", evaluate_prompt=True)
            targets[local.prompt_name] = local.with_config(run_name="eval:chat_local")
    if describe_model is not None:
        describe = build_describe_chain(
            settings=settings.model_copy(update={"describe_cache_enabled": False}), prompts=prompts,
            model=describe_model, local_base_url=local_base_url,
        )

        def description(out: DescribeOutput) -> str:
            return out.description

        targets[settings.preset("describe").prompt] = (describe | RunnableLambda(description)).with_config(
            run_name="eval:describe"
        )
    if search_model is not None:
        name = settings.preset("search").prompt
        model = search_model

        def hints(inp: dict[str, Any]) -> str:
            found = ask_llm(model=model, prompts=prompts, query=str(inp["query"]), prompt_name=name)
            return json.dumps(found.model_dump(), ensure_ascii=False)

        targets[name] = RunnableLambda(hints).with_config(run_name="eval:search_parse")
    return targets


@contextmanager
def product_targets(settings: Settings) -> Iterator[tuple[dict[str, Runnable], Judge | None]]:
    """The real chains on the configured models, and the judge when one is configured.

    Starts the embedded local model when it is used (and stops it on exit), as the service would.

    Args:
        settings: the service's settings (OPENAI_*, LOCAL_MODEL_*, PROMPT_EVAL_JUDGE_MODEL).
    """
    from chains.local_llm import LocalModelServer
    from chains.models import build_chat_model

    uses_local = settings.local_model_enabled or not settings.has_openai
    server = None
    if uses_local and not settings.local_model_url:
        server = LocalModelServer(model_path=settings.local_model_path, sha256=settings.local_model_sha256,
                                  threads=settings.local_model_threads, ctx=settings.local_model_ctx,
                                  parallel=settings.local_model_parallel)
        server.start()
    try:
        url = (settings.local_model_url or (server.base_url if server else None)) if uses_local else None

        def model(use_case: str) -> Runnable:
            return build_chat_model(settings=settings, use_case=use_case, local_base_url=url)

        prompts = PromptStore(settings.prompts_dir)
        local_only = None
        if url is not None and settings.has_openai:
            local_only = build_chat_model(settings=settings.model_copy(update={"openai_api_key": None}),
                                          use_case="chat", local_base_url=url)
        targets = build_targets(settings=settings, prompts=prompts, chat_model=model("chat"),
                                describe_model=model("describe"), search_model=model("search"), local_base_url=url,
                                local_chat_model=local_only)
        yield targets, _judge(settings, prompts)
    finally:
        if server is not None:
            server.stop()


def _judge(settings: Settings, prompts: PromptStore) -> Judge | None:
    if not settings.prompt_eval_judge_model or settings.openai_api_key is None:
        return None
    from langchain_openai import ChatOpenAI

    judge_model: Any = ChatOpenAI(model=settings.prompt_eval_judge_model, api_key=settings.openai_api_key,
                                  base_url=settings.openai_base_url, temperature=0,
                                  timeout=settings.request_timeout_s, max_retries=settings.ai_max_retries)
    return build_judge(model=judge_model, prompts=prompts)
