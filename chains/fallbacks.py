"""`Fallbacks`: a model's fallbacks tried in order inside the caller's own run.

LangChain's RunnableWithFallbacks adds a run of its own and an asyncio task to every call; a chain that is
already one run (chains/chat.py) calls `Fallbacks` instead, with the same order and the same errors that move
on to the next model (the wrapped RunnableWithFallbacks' `exceptions_to_handle`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableWithFallbacks

__all__ = ["Fallbacks"]


class Fallbacks:
    """The models of `model` (a RunnableWithFallbacks, or one model) called in order.

    On invoke the first answer wins; on streams a failure before the first chunk moves on to the next model,
    after it the error ends the stream. When every model fails, the first error is raised.
    """

    def __init__(self, model: Runnable) -> None:
        if isinstance(model, RunnableWithFallbacks) and model.exception_key is None:
            self.runnables: list[Runnable] = [model.runnable, *model.fallbacks]
            self.errors: tuple[type[BaseException], ...] = tuple(model.exceptions_to_handle)
        else:
            self.runnables, self.errors = [model], ()

    def invoke(self, messages: list[BaseMessage], config: RunnableConfig) -> Any:
        first: BaseException | None = None
        for model in self.runnables:
            try:
                return model.invoke(messages, config)
            except self.errors as exc:
                first = first or exc
        assert first is not None
        raise first

    async def ainvoke(self, messages: list[BaseMessage], config: RunnableConfig) -> Any:
        first: BaseException | None = None
        for model in self.runnables:
            try:
                return await model.ainvoke(messages, config)
            except self.errors as exc:
                first = first or exc
        assert first is not None
        raise first

    def stream(self, messages: list[BaseMessage], config: RunnableConfig) -> Iterator[Any]:
        """A failure before the first chunk moves on to the next model; after it, the error ends the stream."""
        first: BaseException | None = None
        for model in self.runnables:
            stream = model.stream(messages, config)
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except self.errors as exc:
                first = first or exc
                continue
            yield chunk
            yield from stream
            return
        assert first is not None
        raise first

    async def astream(self, messages: list[BaseMessage], config: RunnableConfig) -> AsyncIterator[Any]:
        first: BaseException | None = None
        for model in self.runnables:
            stream = model.astream(messages, config).__aiter__()
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except self.errors as exc:
                first = first or exc
                continue
            yield chunk
            async for chunk in stream:
                yield chunk
            return
        assert first is not None
        raise first
