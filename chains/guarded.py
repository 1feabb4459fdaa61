"""A chat model wrapped with its circuit breaker and the request's deadline.

`GuardedChatModel` delegates to the real model (a `ChatOpenAI`) and
- fails fast with `CircuitOpen` while the model's breaker is open (the fallback then answers at once);
- counts provider errors (`PROVIDER_ERRORS`) as breaker failures, answers as successes — for streams, the
  first chunk is the success;
- never runs past the request's deadline (`deadline_scope()`): each call gets the time that is left, and
  `DeadlineExceeded` ends the request instead of starting another model.

Being a chat model itself, it passes usage metadata, streaming tokens and callbacks through unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from chains.breaker import CircuitBreaker
from errors import BudgetExceeded, ProviderUnavailable

__all__ = ["DeadlineExceeded", "GuardedChatModel", "PaidModelsOff", "deadline_scope", "paid_models_off", "time_left"]

_deadline: ContextVar[float | None] = ContextVar("skymarket_deadline", default=None)
_paid_off: ContextVar[bool] = ContextVar("skymarket_paid_models_off", default=False)


class PaidModelsOff(BudgetExceeded):
    """Raised instead of calling a paid model in a request over its budget: the local model answers if it is
    in the chain (the fallbacks move on, as for an open circuit), else the request gets a 402."""

    def __init__(self) -> None:
        super().__init__("the daily budget is spent: paid models are off until tomorrow (UTC)", retry_after=3600)


def paid_models_off() -> None:
    """Marks the current request (this context and the tasks it starts): no paid model may be called."""
    _paid_off.set(True)


class DeadlineExceeded(ProviderUnavailable):
    code = "deadline_exceeded"
    status = 504


@contextmanager
def deadline_scope(seconds: float) -> Iterator[None]:
    """Every model call inside this scope (this task and the tasks it starts) ends by `seconds` from now."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def set_deadline(seconds: float) -> None:
    """Sets the deadline for the current context (a request's task) without a scope to close."""
    _deadline.set(time.monotonic() + seconds)


def time_left() -> float | None:
    """Seconds left before the current request's deadline; None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _expired() -> DeadlineExceeded:
    return DeadlineExceeded("the request ran out of time; try again shortly", retry_after=2)


class GuardedChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    breaker: CircuitBreaker
    failure_types: tuple[type[BaseException], ...]
    is_local: bool = False  # free: still called when a budget has turned the paid models off

    @property
    def _llm_type(self) -> str:
        return f"guarded-{self.inner._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return dict(self.inner._identifying_params)

    @property
    def model_name(self) -> str:
        return str(getattr(self.inner, "model_name", self.breaker.name))

    def _outcome(self, exc: BaseException | None) -> None:
        if exc is None:
            self.breaker.success()
        elif isinstance(exc, self.failure_types):
            self.breaker.failure()
        else:
            self.breaker.release()

    def _start(self) -> float | None:
        if _paid_off.get() and not self.is_local:
            raise PaidModelsOff()
        left = time_left()
        if left is not None and left <= 0:
            raise _expired()
        self.breaker.check()
        return left

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        self._start()  # sync path: the SDK's own timeout bounds the call
        try:
            result = self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except BaseException as exc:
            self._outcome(exc)
            raise
        self._outcome(None)
        return result

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        left = self._start()
        try:
            # asyncio.timeout, not wait_for: no extra task per call (wait_for wraps the call in one)
            async with asyncio.timeout(left):
                result = await self.inner._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except TimeoutError:
            self.breaker.failure()
            raise _expired() from None
        except BaseException as exc:
            self._outcome(exc)
            raise
        self._outcome(None)
        return result

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._start()
        first = True
        try:
            for chunk in self.inner._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
                if first:
                    self._outcome(None)
                    first = False
                yield chunk
        except BaseException as exc:
            if first:
                self._outcome(exc)
            raise
        if first:
            self._outcome(None)

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self._start()
        stream = self.inner._astream(messages, stop=stop, run_manager=run_manager, **kwargs).__aiter__()
        first = True
        try:
            while True:
                left = time_left()
                if left is not None and left <= 0:
                    raise _expired()
                try:
                    async with asyncio.timeout(left):  # per chunk, without a task per chunk
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise _expired() from None
                if first:
                    self._outcome(None)
                    first = False
                yield chunk
        except BaseException as exc:
            if first and isinstance(exc, DeadlineExceeded):
                self.breaker.failure()  # no first token before the deadline: the model was too slow
            elif first:
                self._outcome(exc)
            raise
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if first:
            self._outcome(None)
