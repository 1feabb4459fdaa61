"""The assistant runnable: a conversation in, an answer grounded in the listings out.

    messages -> read      guard the customer's turns (block: 400), moderate them (flagged: 400)
             -> condense  the whole conversation as one search request (conversation.py); with a key and
                          ASSISTANT_LLM_CONDENSE, the search's LLM step adds what the words missed
             -> retrieve  the listings (a retriever run: ListingRetriever), screened as operator text; the
                          service area is decided here, by code: outside it, the notice and nothing cited;
                          a question about the listings shown, answered from their values, skips the
                          embedded model (Steps.answered)
             -> prompt    the preset's prompt for the model that answers (the embedded model has its own),
                          listings fenced as data, a fresh canary
             -> model     with its fallbacks
             -> ground    every claim checked against the cited listings (grounding.py): unbacked sentences
                          removed; too little left: ask once more (not the embedded model), then the answer
                          built from the listings (answer.py); moderation and the leak guard last
             -> AssistantOutput (/assistant), or its text followed by the listings as cards (/chat)

The steps are methods of `Steps` (steps.py); this module runs them for invoke and streams. One run of its
own whose children are the retriever run and the model run(s): the steps are plain methods, not a composed
sequence, because every composed step costs LangChain's config merging and callback work on every request
(bench/overhead.py). Streams send the listings first (object view), then the text one checked sentence at a
time (stream.py): nothing leaves before its claims are checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from langchain_core.runnables.utils import AddableDict
from pydantic import BaseModel

from chains.assistant.schema import AssistantOutput
from chains.assistant.steps import Found, Read, Steps, Turn, text_of, was_cut
from chains.assistant.stream import StreamState
from chains.fallbacks import NoSuitedModel

# When the models that may take a turn failed and the embedded one is not for it (nothing to answer from)
_UNANSWERED = "answered without a model: the models that may take this turn failed"

__all__ = ["AssistantChain"]


class AssistantChain(Runnable[Any, Any]):
    """See the module docstring. Built by `chains.assistant.build_assistant_chain`.

    Args:
        steps: the assistant's parts and steps.
        input_type: the conversation's input model (`chains.chat_input.make_chat_input`).
    """

    def __init__(self, *, steps: Steps, input_type: type[BaseModel]) -> None:
        self.steps, self.input_type = steps, input_type
        self.name = "assistant" if steps.view == "object" else "chat"

    @property
    def prompt_name(self) -> str:
        """The prompt file the first model tried reads (the embedded model may have its own)."""
        return self.steps.prompt().name

    @property
    def InputType(self) -> type[BaseModel]:
        return self.input_type

    @property
    def OutputType(self) -> Any:
        return AssistantOutput if self.steps.view == "object" else str

    def _start(self, config: RunnableConfig | None) -> RunnableConfig:
        """The run's config, with the prompt of the first model (name and version) in its metadata."""
        prompt = self.steps.prompt()
        config = ensure_config(config)
        meta = {**config.get("metadata", {}), "prompt": prompt.name, "prompt_version": prompt.version}
        return {**config, "metadata": meta}

    # --- pre-check (before a stream opens) ---
    async def aprecheck(self, data: Any) -> None:
        """Raises `InputRejected` if the guard or moderation refuses the conversation; silent on bad shape
        (LangServe's validation answers 422). LangServe reports an error inside a stream as a bare 500, so
        the server runs this first."""
        try:
            self.input_type.model_validate(data)
        except ValueError:  # pydantic's ValidationError: LangServe answers 422 with the details
            return
        read = await self.steps.aread(data)
        self.steps.refuse(await self.steps.moderator.acheck(read.turns))

    # --- read, condense, retrieve ---
    def _retrieve(self, data: Any, config: RunnableConfig) -> tuple[Read, Found]:
        s = self.steps
        read = s.read(data)
        s.refuse(s.moderator.check(read.turns))
        request = s.refine(s.condense(read), read.turns, config)
        search = s.search(request)
        docs = s.retriever.invoke(search[0], config, **search[1]) if search else None
        found = s.found(request, docs, read.question, earlier=read.earlier)
        if (wider := s.wider(found)) is not None:  # nothing serves the place: the nearest that fit the rest
            found = s.nearest(found, s.retriever.invoke(wider[0], config, **wider[1]))
        if (other := s.instead(found, read)) is not None and (again := s.search(other)) is not None:
            found = s.replaced(found, other, s.retriever.invoke(again[0], config, **again[1]))  # none of them had it
        return read, s.answered(found, read)

    async def _aretrieve(self, data: Any, config: RunnableConfig) -> tuple[Read, Found]:
        s = self.steps
        read = await s.aread(data)
        s.refuse(await s.moderator.acheck(read.turns))
        request = await s.arefine(s.condense(read), read.turns, config)
        search = s.search(request)
        docs = await s.retriever.ainvoke(search[0], config, **search[1]) if search else None
        found = s.found(request, docs, read.question, earlier=read.earlier)
        if (wider := s.wider(found)) is not None:
            found = s.nearest(found, await s.retriever.ainvoke(wider[0], config, **wider[1]))
        if (other := s.instead(found, read)) is not None and (again := s.search(other)) is not None:
            found = s.replaced(found, other, await s.retriever.ainvoke(again[0], config, **again[1]))
        return read, s.answered(found, read)

    # --- invoke: prompt -> model -> ground (-> once more) -> moderate ---
    def _run(self, data: Any, config: RunnableConfig) -> Any:
        s = self.steps
        read, found = self._retrieve(data, config)
        if found.final is not None:
            return s.output(found, found.final, [])
        turn, flags, quiet = s.turn(found, read), list[str](), _unwatched(config)
        try:
            model, message = s.models.invoke_with_model(turn.messages, quiet)
        except NoSuitedModel:
            return s.output(found, s.fallback_text(found), [_UNANSWERED])
        draft = text_of(message)
        text = s.review(turn, message, flags)
        for _ in range(s.max_attempts - 1):
            retry = s.retry(turn, model, found, draft, text, flags)
            if retry is None:
                break
            message = model.invoke(retry, quiet)
            draft = text_of(message)
            text = s.review(turn, message, flags)
        verdict = s.moderator.check([text]) if text else None
        return s.output(found, s.settle(found, text, verdict, flags), flags)

    async def _arun(self, data: Any, config: RunnableConfig) -> Any:
        s = self.steps
        read, found = await self._aretrieve(data, config)
        if found.final is not None:
            return s.output(found, found.final, [])
        turn, flags, quiet = s.turn(found, read), list[str](), _unwatched(config)
        try:
            model, message = await s.models.ainvoke_with_model(turn.messages, quiet)
        except NoSuitedModel:
            return s.output(found, s.fallback_text(found), [_UNANSWERED])
        draft = text_of(message)
        text = s.review(turn, message, flags)
        for _ in range(s.max_attempts - 1):
            retry = s.retry(turn, model, found, draft, text, flags)
            if retry is None:
                break
            message = await model.ainvoke(retry, quiet)
            draft = text_of(message)
            text = s.review(turn, message, flags)
        verdict = await s.moderator.acheck([text]) if text else None
        return s.output(found, s.settle(found, text, verdict, flags), flags)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        try:
            out = self._run(input, patch_config(config, callbacks=run.get_child()))
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(_end(out))
        return out

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = self._start(config)
        run = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        try:
            out = await self._arun(input, patch_config(config, callbacks=run.get_child()))
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(_end(out))
        return out

    # --- streams: the listings first, then the text one checked sentence at a time ---
    def _open(self, read: Read, found: Found) -> tuple[StreamState, Turn | None]:
        turn = self.steps.turn(found, read) if found.final is None else None
        return StreamState(self.steps, found, self.steps.gate(turn) if turn is not None else None), turn

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        sent: list[Any] = []
        moderator = self.steps.moderator
        try:
            child = patch_config(config, callbacks=run.get_child())
            out, turn = self._open(*self._retrieve(input, child))
            for piece in out.head():  # the listings reach the client before the model starts
                sent.append(piece)
                yield piece
            if turn is not None and out.gate is not None:
                cut = False
                try:
                    for chunk in self.steps.models.stream(turn.messages, _unwatched(child)):
                        cut = cut or was_cut(chunk)
                        for sentence in out.gate.feed(text_of(chunk)):
                            if (piece := out.moderated(sentence, moderator.check([sentence]))) is not None:
                                sent.append(piece)
                                yield piece
                except NoSuitedModel:  # nothing was sent: the tail is the data's answer
                    out.flags.append(_UNANSWERED)
                for sentence in out.gate.close(cut=cut):
                    if (piece := out.moderated(sentence, moderator.check([sentence]))) is not None:
                        sent.append(piece)
                        yield piece
            for piece in out.tail():
                sent.append(piece)
                yield piece
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(_joined(sent))

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        config = self._start(config)
        run = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        sent: list[Any] = []
        moderator = self.steps.moderator
        try:
            child = patch_config(config, callbacks=run.get_child())
            out, turn = self._open(*await self._aretrieve(input, child))
            for piece in out.head():  # the listings reach the client before the model starts
                sent.append(piece)
                yield piece
            if turn is not None and out.gate is not None:
                # After a leak or a refused sentence the gate lets nothing more out; the model's stream is
                # still read to its end, so its run ends normally and its usage is recorded.
                cut = False
                try:
                    async for chunk in self.steps.models.astream(turn.messages, _unwatched(child)):
                        cut = cut or was_cut(chunk)
                        for sentence in out.gate.feed(text_of(chunk)):
                            if (piece := out.moderated(sentence, await moderator.acheck([sentence]))) is not None:
                                sent.append(piece)
                                yield piece
                except NoSuitedModel:  # nothing was sent: the tail is the data's answer
                    out.flags.append(_UNANSWERED)
                for sentence in out.gate.close(cut=cut):
                    if (piece := out.moderated(sentence, await moderator.acheck([sentence]))) is not None:
                        sent.append(piece)
                        yield piece
            for piece in out.tail():
                sent.append(piece)
                yield piece
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(_joined(sent))


def _unwatched(config: RunnableConfig) -> RunnableConfig:
    """The config for a model call, without the event and log streamers (`stream_events`, `stream_log`, the
    playgrounds): the model's draft is unchecked, and a client reading those streams must not see a claim the
    check will remove. Usage callbacks and tracers still see the call. A streamer is known by the method
    LangChain's own streamers implement (`tap_output_aiter`); if it is renamed, tests/chains/assistant fails."""
    callbacks = config.get("callbacks")
    if not isinstance(callbacks, BaseCallbackManager):
        return config
    quiet = callbacks.copy()
    for handler in [*quiet.handlers, *quiet.inheritable_handlers]:
        if hasattr(handler, "tap_output_aiter"):
            quiet.remove_handler(handler)
    return {**config, "callbacks": quiet}


def _end(out: Any) -> Any:
    return out.model_dump(mode="json") if isinstance(out, BaseModel) else out


def _joined(pieces: list[Any]) -> Any:
    if not pieces:
        return None
    if isinstance(pieces[0], str):
        return "".join(pieces)
    total = AddableDict()
    for p in pieces:
        total = total + p
    return total
