"""`Fallbacks`: a model's fallbacks tried in order inside the caller's own run.

LangChain's RunnableWithFallbacks adds a run of its own and an asyncio task to every call; a chain that is
already one run (chains/chat.py) calls `Fallbacks` instead, with the same order and the same errors that move
on to the next model (the wrapped RunnableWithFallbacks' `exceptions_to_handle`). Given a `LiveModel` (a
use case's model, following its preset), the models are those of the preset in force at each call.
A per-model messages callable may raise `Unsuited` for a model the turn is not for (the embedded model, for a
question with no listing to answer from): that model is skipped, and when no other answers, `NoSuitedModel`
tells the caller to answer without a model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableWithFallbacks

from chains.models import LiveModel

__all__ = ["Fallbacks", "Messages", "NoSuitedModel", "Unsuited"]

# The model's input: the same messages for every model, or messages made for each (a prompt per model).
Messages = list[BaseMessage] | Callable[[Runnable], list[BaseMessage]]


class Unsuited(Exception):
    """Raised by a per-model messages callable: this turn is not for that model (it is skipped, not failed)."""


class NoSuitedModel(Exception):
    """No model answered: those that may take the turn failed (or none could), the others were unsuited. The
    caller answers without a model."""


def _for(messages: Messages, model: Runnable) -> list[BaseMessage]:
    return messages(model) if callable(messages) else messages


class Fallbacks:
    """The models of `model` (a RunnableWithFallbacks, or one model) called in order.

    On invoke the first answer wins; on streams a failure before the first chunk moves on to the next model,
    after it the error ends the stream. When every model fails, the first error is raised.
    """

    def __init__(self, model: Runnable) -> None:
        # A model that follows its preset (chains.models.LiveModel): its current models, unpacked per rebuild.
        self._live: Callable[[], Runnable] | None = model.current if isinstance(model, LiveModel) else None
        self._unpacked: tuple[Runnable, list[Runnable], tuple[type[BaseException], ...]] | None = None
        self._unpack(self._live() if self._live is not None else model)

    def _unpack(self, model: Runnable) -> tuple[list[Runnable], tuple[type[BaseException], ...]]:
        hit = self._unpacked
        if hit is not None and hit[0] is model:
            return hit[1], hit[2]
        if isinstance(model, RunnableWithFallbacks) and model.exception_key is None:
            runnables: list[Runnable] = [model.runnable, *model.fallbacks]
            errors: tuple[type[BaseException], ...] = tuple(model.exceptions_to_handle)
        else:
            runnables, errors = [model], ()
        self._unpacked = (model, runnables, errors)
        return runnables, errors

    @property
    def runnables(self) -> list[Runnable]:
        """The models in the order they are tried (for a live model: those of the preset in force)."""
        if self._live is not None:
            return self._unpack(self._live())[0]
        assert self._unpacked is not None
        return self._unpacked[1]

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The errors that move on to the next model."""
        if self._live is not None:
            return self._unpack(self._live())[1]
        assert self._unpacked is not None
        return self._unpacked[2]

    def invoke(self, messages: Messages, config: RunnableConfig) -> Any:
        return self.invoke_with_model(messages, config)[1]

    async def ainvoke(self, messages: Messages, config: RunnableConfig) -> Any:
        return (await self.ainvoke_with_model(messages, config))[1]

    def invoke_with_model(self, messages: Messages, config: RunnableConfig) -> tuple[Runnable, Any]:
        """The first answer, and the model that gave it."""
        tried = _Tried()
        for model in self.runnables:
            if (msgs := tried.messages(messages, model)) is None:
                continue
            try:
                return model, model.invoke(msgs, config)
            except self.errors as exc:
                tried.failed(exc)
        raise tried.error()

    async def ainvoke_with_model(self, messages: Messages, config: RunnableConfig) -> tuple[Runnable, Any]:
        tried = _Tried()
        for model in self.runnables:
            if (msgs := tried.messages(messages, model)) is None:
                continue
            try:
                return model, await model.ainvoke(msgs, config)
            except self.errors as exc:
                tried.failed(exc)
        raise tried.error()

    def stream(self, messages: Messages, config: RunnableConfig) -> Iterator[Any]:
        """A failure before the first chunk moves on to the next model; after it, the error ends the stream."""
        tried = _Tried()
        for model in self.runnables:
            if (msgs := tried.messages(messages, model)) is None:
                continue
            stream = model.stream(msgs, config)
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except self.errors as exc:
                tried.failed(exc)
                continue
            yield chunk
            yield from stream
            return
        raise tried.error()

    async def astream(self, messages: Messages, config: RunnableConfig) -> AsyncIterator[Any]:
        tried = _Tried()
        for model in self.runnables:
            if (msgs := tried.messages(messages, model)) is None:
                continue
            stream = model.astream(msgs, config).__aiter__()
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except self.errors as exc:
                tried.failed(exc)
                continue
            yield chunk
            async for chunk in stream:
                yield chunk
            return
        raise tried.error()


class _Tried:
    """What became of the models tried for one call: the first failure, and whether any was unsuited."""

    def __init__(self) -> None:
        self.first: BaseException | None = None
        self.skipped: list[str] = []

    def messages(self, messages: Messages, model: Runnable) -> list[BaseMessage] | None:
        """The model's messages; None when the turn is not for this model (`Unsuited`): it is skipped."""
        try:
            return _for(messages, model)
        except Unsuited:
            self.skipped.append(str(model.name))
            return None

    def failed(self, exc: BaseException) -> None:
        self.first = self.first or exc

    def error(self) -> BaseException:
        """What to raise when no model answered: `NoSuitedModel` if one was skipped, else the first failure."""
        if self.skipped:
            error = NoSuitedModel(f"no model answered; not for this turn: {', '.join(self.skipped)}")
            error.__cause__ = self.first
            return error
        assert self.first is not None
        return self.first
