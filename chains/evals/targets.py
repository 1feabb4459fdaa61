"""How a golden case reaches its chain: one target per prompt, built with the product's own factories.

    chat          services' chat chain: {"messages": [...]} -> the answer text
    describe      the describe chain (cache off, so every run asks the model): facts -> the description
    search_parse  the search's LLM step (`retrieval.llm_hints.ask_llm`): {"query": ...} -> the hints as JSON

Each target is a Runnable, so the usage callback passed in the run's config sees every model call.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from chains.chat import build_chat_chain, make_chat_input
from chains.describe import DescribeOutput, build_describe_chain
from chains.guard import GuardConfig
from chains.prompting import PromptStore
from retrieval.llm_hints import ask_llm
from settings import Settings

__all__ = ["build_targets"]


def build_targets(
    *,
    settings: Settings,
    prompts: PromptStore,
    chat_model: Runnable | None = None,
    describe_model: Runnable | None = None,
    search_model: Runnable | None = None,
    local_base_url: str | None = None,
) -> dict[str, Runnable]:
    """Builds one target per use case whose model is given, keyed by the preset's prompt name.

    Args:
        settings: the service's settings (presets, guard, describe settings).
        prompts: the prompt store the chains read (the prompt files under evaluation).
        chat_model: the chat use case's model (with fallbacks), or None to leave chat out.
        describe_model: the describe use case's model, or None.
        search_model: the search use case's model, or None.
        local_base_url: the local model's URL, as given to the models (describe names models with it).
    """
    targets: dict[str, Runnable] = {}
    if chat_model is not None:
        chat = build_chat_chain(
            model=chat_model, prompts=prompts, prompt_name=settings.preset("chat").prompt,
            input_type=make_chat_input(max_messages=settings.chat_max_messages,
                                       max_chars=settings.chat_max_message_chars),
            guard=GuardConfig.from_settings(settings),
        )
        targets[settings.preset("chat").prompt] = chat.with_config(run_name="eval:chat")
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
