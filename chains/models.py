"""The model layer: one factory builds the chat model of a use case, with its fallbacks.

Order of degradation: `AI_MODEL_PRIMARY` -> `AI_MODEL_FALLBACK` -> the local model (when enabled).
Without `OPENAI_API_KEY` the local model is the only one. All of them are `ChatOpenAI`: the local model is
llama.cpp's OpenAI-compatible server, so one code path serves both.

Retries live in one layer, the OpenAI SDK's (`max_retries=AI_MAX_RETRIES`): it backs off exponentially
with jitter, honours `Retry-After`, and retries only 408/409/429/5xx and connection errors. LangChain's
fallbacks then switch model only on `PROVIDER_ERRORS`, never on a bare `Exception`: a bad request or a
bad key is not made better by asking another model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_openai import ChatOpenAI

from chains.breaker import BreakerRegistry, CircuitOpen
from chains.guarded import GuardedChatModel, PaidModelsOff
from settings import Preset, Settings

__all__ = ["LOCAL_API_KEY", "PROVIDER_ERRORS", "LiveModel", "ModelChoice", "build_chat_model", "model_chain"]

PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    openai.RateLimitError,  # 429
    openai.InternalServerError,  # 5xx
    openai.APITimeoutError,  # no answer within AI_REQUEST_TIMEOUT
    openai.APIConnectionError,  # refused, reset, DNS
    openai.APIResponseValidationError,  # an answer that is not the API's shape
    json.JSONDecodeError,  # an answer that is not JSON at all (the SDK lets this one through raw)
)

LOCAL_API_KEY = "local-model-needs-no-key"


@dataclass(frozen=True)
class ModelChoice:
    """One model in the fallback chain: what to call and where."""

    name: str
    base_url: str | None
    api_key: str
    max_tokens: int
    temperature: float
    timeout_s: float
    max_retries: int
    organization: str | None = None
    project: str | None = None
    is_local: bool = False
    frequency_penalty: float | None = None


def model_chain(*, settings: Settings, preset: Preset, local_base_url: str | None) -> list[ModelChoice]:
    """The ordered list of models a use case may use.

    Args:
        settings: the service's settings.
        preset: the use case's preset (its `None` fields take the global setting).
        local_base_url: the running local model server's `/v1` URL, or None when it is off.
    """
    temperature = preset.temperature if preset.temperature is not None else settings.ai_temperature
    max_tokens = preset.max_tokens if preset.max_tokens is not None else settings.ai_max_tokens
    out: list[ModelChoice] = []
    if settings.openai_api_key is not None:
        key = settings.openai_api_key.get_secret_value()
        names = [preset.model or settings.ai_model_primary, preset.fallback_model or settings.ai_model_fallback]
        for name in dict.fromkeys(names):  # primary == fallback: ask once
            out.append(
                ModelChoice(
                    name=name, base_url=settings.openai_base_url, api_key=key, max_tokens=max_tokens,
                    temperature=temperature, timeout_s=settings.request_timeout_s,
                    max_retries=settings.ai_max_retries, organization=settings.openai_organization_id,
                    project=settings.openai_project_id,
                )
            )
    if local_base_url is not None and (settings.local_model_enabled or not out):
        own = preset.local
        if own is not None:  # the embedded model's own parameters (data/presets.yaml `local:`)
            temperature = own.temperature if own.temperature is not None else temperature
            max_tokens = own.max_tokens if own.max_tokens is not None else max_tokens
        out.append(
            ModelChoice(
                name=settings.local_model_name, base_url=local_base_url, api_key=LOCAL_API_KEY,
                max_tokens=min(max_tokens, settings.local_model_max_tokens), temperature=temperature,
                timeout_s=max(settings.request_timeout_s, settings.local_model_timeout_s),
                max_retries=0, is_local=True, frequency_penalty=settings.local_model_frequency_penalty,
            )
        )
    return out


def _chat_openai(choice: ModelChoice) -> BaseChatModel:
    kwargs: dict[str, Any] = {}
    if choice.project:
        # langchain-openai has no field for it; the SDK reads it from this header.
        kwargs["default_headers"] = {"OpenAI-Project": choice.project}
    return ChatOpenAI(
        model=choice.name,
        api_key=choice.api_key,  # type: ignore[arg-type]
        base_url=choice.base_url,
        organization=choice.organization,
        max_tokens=choice.max_tokens,  # type: ignore[call-arg]
        temperature=choice.temperature,
        timeout=choice.timeout_s,
        max_retries=choice.max_retries,
        # Own connection pools per built model: langchain-openai otherwise shares one cached async client
        # per (base URL, timeout) across the process, bound to the first event loop that used it.
        http_client=openai.DefaultHttpxClient(timeout=choice.timeout_s),
        http_async_client=openai.DefaultAsyncHttpxClient(timeout=choice.timeout_s),
        frequency_penalty=choice.frequency_penalty,
        stream_usage=True,  # with a base URL set, usage on streams is only sent when asked for
        **kwargs,
    )


def build_chat_model(
    *, settings: Settings, use_case: str, local_base_url: str | None, breakers: BreakerRegistry | None = None
) -> LiveModel:
    """Builds the chat model of a use case: primary with fallbacks, as one Runnable that follows its preset
    (an edit of `data/presets.yaml` applies to the next call: `LiveModel`).

    Args:
        settings: the service's settings.
        use_case: a key of `data/presets.yaml` (chat, describe, search).
        local_base_url: the local model server's `/v1` URL, or None when it is not running.
        breakers: the app's circuit breakers (one per model name); None = no breakers, no deadline checks.

    Raises:
        ConfigError: no model is available at all (no key and the local model off).
    """

    def build(preset: Preset) -> Runnable:
        return _models(settings=settings, preset=preset, local_base_url=local_base_url, breakers=breakers)

    return LiveModel(build=build, preset=lambda: settings.preset(use_case))


def _models(*, settings: Settings, preset: Preset, local_base_url: str | None,
            breakers: BreakerRegistry | None) -> Runnable:
    from errors import ConfigError

    choices = model_chain(settings=settings, preset=preset, local_base_url=local_base_url)
    if not choices:
        raise ConfigError("no model available: set OPENAI_API_KEY or enable the local model")
    models: list[Runnable] = []
    for c in choices:
        model: BaseChatModel = _chat_openai(c)
        if breakers is not None:
            model = GuardedChatModel(
                inner=model, breaker=breakers.get(c.name), failure_types=PROVIDER_ERRORS, is_local=c.is_local
            )
        model.name = f"model:{c.name}"  # the run's name; a field, not a binding: a binding costs per call
        models.append(model)
    if len(models) == 1:
        return models[0]
    # CircuitOpen, PaidModelsOff: the model was not even called, so the next one answers at once.
    return models[0].with_fallbacks(models[1:], exceptions_to_handle=(*PROVIDER_ERRORS, CircuitOpen, PaidModelsOff))


class LiveModel(Runnable[Any, Any]):
    """A runnable that is whatever `build(preset())` gives for the preset in force, rebuilt on the first call
    after the preset changed (a valid edit of `data/presets.yaml`: model, temperature, max_tokens ...).

    It adds no run of its own: each call goes to the current model (or chain of fallbacks) with the caller's
    config. `current()` is that model, for code that walks the fallbacks itself (`chains.fallbacks.Fallbacks`).

    Args:
        build: the model(s) for a preset.
        preset: the preset in force (`settings.preset(use_case)`: one dict lookup until the file changes).
    """

    def __init__(self, *, build: Callable[[Preset], Runnable], preset: Callable[[], Preset]) -> None:
        self._build, self._preset = build, preset
        self._lock = threading.Lock()
        first = preset()
        self._built: tuple[Preset, Runnable] = (first, build(first))  # a model that cannot be built fails here
        self._derived: dict[tuple[Any, ...], tuple[Runnable, Runnable]] = {}

    def current(self) -> Runnable:
        """The model for the preset in force."""
        preset = self._preset()
        built = self._built
        if built[0] is preset or built[0] == preset:
            return built[1]
        with self._lock:
            if self._built[0] != preset:
                self._built = (preset, self._build(preset))
                self._derived.clear()
            return self._built[1]

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable:
        """The current model's structured output, re-derived when the model is rebuilt."""

        def derive() -> Runnable:
            model = self.current()
            key = ("structured", id(schema), tuple(sorted(kwargs.items())))
            hit = self._derived.get(key)
            if hit is None or hit[0] is not model:
                hit = (model, model.with_structured_output(schema, **kwargs))  # type: ignore[attr-defined]
                self._derived[key] = hit
            return hit[1]

        derive()  # a model without tool calling raises here, as the model itself would
        return _Delegate(derive)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.current().invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.current().ainvoke(input, config, **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self.current().stream(input, config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in self.current().astream(input, config, **kwargs):
            yield chunk


class _Delegate(Runnable[Any, Any]):
    """Calls whatever runnable `target()` returns now."""

    def __init__(self, target: Callable[[], Runnable]) -> None:
        self._target = target

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._target().invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._target().ainvoke(input, config, **kwargs)
