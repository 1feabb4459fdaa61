"""`/describe`: listing descriptions for operators — generation, batch, moderation, grounded claims, cache.

    schema.py      DescribeInput -> DescribeOutput, the canonical form of an input
    moderation.py  OpenAI moderation with a key; the local check (data/moderation.yaml) without
    cache.py       exact-match cache: SQLite file, or Redis when REDIS_URL is set
    chain.py       the runnable: invoke, batch (dedupe, bounded concurrency, per-item errors), stream

The claim check against the operator's input is the shared one (chains/claims, rules in data/claims.yaml).

`build_describe_chain()` builds the served runnable from settings; nothing connects until the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable

from chains.claims import AREA_NAMES, Catalog
from chains.describe.cache import DescribeCache, build_cache
from chains.describe.chain import DescribeRunnable, error_output
from chains.describe.schema import DescribeInput, DescribeOutput
from chains.guard import GuardConfig
from chains.models import model_chain
from chains.moderation import Moderator, build_moderator
from chains.prompting import PromptStore
from retrieval.places import load_gazetteer
from settings import Preset, Settings

__all__ = [
    "DescribeInput",
    "DescribeOutput",
    "DescribeRunnable",
    "area_places",
    "build_describe_chain",
    "error_output",
]


def build_describe_chain(
    *,
    settings: Settings,
    prompts: PromptStore,
    model: Runnable,
    local_base_url: str | None,
    moderator: Moderator | None = None,
    cache: DescribeCache | None = None,
    catalog: Callable[[], Catalog | None] | None = None,
) -> Runnable[DescribeInput, DescribeOutput]:
    """Builds the `/describe` runnable.

    Args:
        settings: the service's settings (the `describe_*` fields, the describe preset, guard settings).
        prompts: the prompt store; each model's prompt (the preset's, or its `local:` one for the embedded
            model) and, in `write` mode, `<prompt>_retry` are read on every call.
        model: the chat model with its fallbacks (`build_chat_model(use_case="describe", ...)`).
        local_base_url: the local model's URL as given to `build_chat_model` (names the models in the cache key).
        moderator: defaults to `build_moderator(settings)`.
        cache: defaults to `build_cache(settings)`.
        catalog: the services the listings know (`chains.assistant.IndexCatalog`), so a description cannot
            claim a service the operator did not list; None skips those rules.

    Returns:
        The runnable, typed and named "describe".
    """
    preset = settings.preset("describe")
    choices = model_chain(settings=settings, preset=preset, local_base_url=local_base_url)
    live = _LiveSetup(settings, local_base_url)
    runnable = DescribeRunnable(
        model=model, prompts=prompts, prompt_name=preset.prompt, rules_file=settings.describe_claims_file,
        moderator=moderator or build_moderator(settings), cache=cache or build_cache(settings),
        model_id={}, default_model="unknown", setup=live,
        concurrency=_concurrency(settings, choices), max_batch=settings.describe_max_batch,
        max_attempts=settings.describe_max_attempts, min_words=settings.describe_min_words,
        guard_config=GuardConfig.from_settings(settings),
        local_model=next((c.name for c in choices if c.is_local), None), catalog=catalog,
        places=area_places(settings.places_file), preset=lambda: settings.preset("describe"),
    )
    return runnable.with_types(input_type=DescribeInput, output_type=DescribeOutput).with_config(run_name="describe")


def area_places(places_file: Path) -> tuple[str, ...]:
    """The names of the service area's places and counties ("Troy", "Oakland", "Oakland County"), as a
    description may use them (`name_unknown` flags any other proper name the input does not contain).

    Args:
        places_file: the gazetteer (`settings.places_file`).
    """
    g = load_gazetteer(places_file)
    return (*AREA_NAMES, *(p.name for p in g.places), *g.service_area, *(f"{c} County" for c in g.service_area))


class _LiveSetup:
    """The describe preset in force as (prompt name, model id for the cache key, first model's name); worked out
    again only when the preset changed (an edit of data/presets.yaml)."""

    def __init__(self, settings: Settings, local_base_url: str | None) -> None:
        self.settings, self.local_base_url = settings, local_base_url
        self._last: tuple[Preset, tuple[str, dict[str, Any], str]] | None = None

    def __call__(self) -> tuple[str, dict[str, Any], str]:
        preset = self.settings.preset("describe")
        last = self._last
        if last is not None and (last[0] is preset or last[0] == preset):
            return last[1]
        choices = model_chain(settings=self.settings, preset=preset, local_base_url=self.local_base_url)
        model_id = [{"name": c.name, "temperature": c.temperature, "max_tokens": c.max_tokens,
                     "frequency_penalty": c.frequency_penalty, "prompt": preset.prompt_for(local=c.is_local),
                     "mode": preset.mode_for(local=c.is_local)} for c in choices]
        setup = (preset.prompt, {"chain": model_id}, choices[0].name if choices else "unknown")
        self._last = (preset, setup)
        return setup


def _concurrency(settings: Settings, choices: list[Any]) -> int:
    """DESCRIBE_CONCURRENCY, but never more than the local model's slots when it is the only model: requests
    beyond its slots would only queue inside llama.cpp and eat their timeout there."""
    if choices and all(c.is_local for c in choices):
        return max(1, min(settings.describe_concurrency, settings.local_model_parallel))
    return settings.describe_concurrency
