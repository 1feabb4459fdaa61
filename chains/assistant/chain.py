"""The assistant runnable: a conversation in, an answer grounded in the listings out.

    messages -> read      guard the customer's turns (block: 400), moderate them (flagged: 400)
             -> condense  the whole conversation as one search request (conversation.py)
             -> retrieve  the listings (a retriever run: ListingRetriever), screened as operator text; the
                          service area is decided here, by code: outside it, the notice and nothing cited
             -> prompt    the preset's prompt for the model that answers (the embedded model has its own),
                          listings fenced as data, a fresh canary
             -> model     with its fallbacks
             -> ground    every claim checked against the cited listings (grounding.py): unbacked sentences
                          removed; too little left: ask once more (not the embedded model), then the answer
                          built from the listings (answer.py); moderation and the leak guard last
             -> AssistantOutput (/assistant), or its text followed by the listings as cards (/chat)

One run of its own whose children are the retriever run and the model run(s): the steps are plain methods,
not a composed sequence, because every composed step costs LangChain's config merging and callback work on
every request (bench/overhead.py). Streams send the listings first (object view), then the text one checked
sentence at a time: nothing leaves before its claims are checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from langchain_core.runnables.utils import AddableDict
from pydantic import BaseModel

from chains import claims
from chains.assistant import answer
from chains.assistant.conversation import Request, condense
from chains.assistant.grounding import SentenceGate, Sources, sources_for
from chains.assistant.listings import ListingScreen
from chains.assistant.schema import AssistantOutput
from chains.chat_input import screen_chat_input
from chains.fallbacks import Fallbacks
from chains.guard import GuardConfig, make_canary
from chains.moderation import Moderator, Verdict
from chains.prompting import PromptFile, PromptStore
from chains.search import SearchResult
from errors import InputRejected
from retrieval.fence import fence_listing_lines, fence_listings
from retrieval.ranking import NO_MATCH
from retrieval.retriever import ListingRetriever
from settings import Preset

__all__ = ["AssistantChain", "View"]

View = Literal["object", "text"]
_MIN_LEAK_WORDS = 12  # a run of this many words shared with the system prompt is a leak
_POOL = 10  # listings considered when the customer asks for an order (cheapest, best rated, nearest)
_PROMPT_FIELDS = ("title", "operator", "city", "county", "price_from_usd", "price_unit", "rating", "review_count",
                  "services", "certifications", "insured", "features", "description")


@dataclass(frozen=True)
class _Read:
    """The request as read: the conversation (user turns screened), the customer's own words, the question."""

    history: list[BaseMessage]
    turns: list[str]
    question: str


@dataclass
class _Found:
    """What the search gave for a request, and what the answer may say without a model (`final`)."""

    request: Request
    listings: list[SearchResult]
    in_service_area: bool | None
    notice: str | None
    final: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Turn:
    """One model turn: the messages for each model, what the answer may claim, and the leak guard's refs."""

    messages: Callable[[Runnable], list[BaseMessage]]
    sources: Sources
    canary: str
    leak_ref: str


class AssistantChain(Runnable[Any, Any]):
    """See the module docstring. Built by `chains.assistant.build_assistant_chain`."""

    def __init__(
        self, *, model: Runnable, retriever: ListingRetriever, prompts: PromptStore, preset: Preset,
        guard: GuardConfig, moderator: Moderator, rules_file: Any, catalog: Callable[[], claims.Catalog | None],
        input_type: type[BaseModel], view: View, local_model: str | None, today: Callable[[], dt.date],
        k: int, min_words: int, max_attempts: int,
    ) -> None:
        self.models = Fallbacks(model)  # tried here: RunnableWithFallbacks adds a run and a task per call
        self.retriever, self.engine = retriever, retriever.engine
        self.prompts, self.preset, self.guard, self.moderator = prompts, preset, guard, moderator
        self.rules_file, self.catalog, self.input_type, self.view = rules_file, catalog, input_type, view
        self.local_model, self.today = local_model, today
        self.k, self.min_words, self.max_attempts = k, min_words, max_attempts
        self.screen = ListingScreen(guard)
        self.name = "assistant" if view == "object" else "chat"

    @property
    def prompt_name(self) -> str:
        """The prompt file the first model tried reads (the embedded model may have its own)."""
        return self._prompt().name

    @property
    def InputType(self) -> type[BaseModel]:
        return self.input_type

    @property
    def OutputType(self) -> Any:
        return AssistantOutput if self.view == "object" else str

    # --- the steps ---
    def _is_local(self, model: Runnable) -> bool:
        return self.local_model is not None and model.name == f"model:{self.local_model}"

    def _prompt(self, model: Runnable | None = None) -> PromptFile:
        """The prompt file of `model` (default: the first model tried): the embedded model may have its own."""
        model = model if model is not None else self.models.runnables[0]
        return self.prompts.get(self.preset.prompt_for(local=self._is_local(model)))

    def _start(self, config: RunnableConfig | None) -> RunnableConfig:
        """The run's config, with the prompt of the first model (name and version) in its metadata."""
        prompt = self._prompt()
        config = ensure_config(config)
        meta = {**config.get("metadata", {}), "prompt": prompt.name, "prompt_version": prompt.version}
        return {**config, "metadata": meta}

    def _read(self, data: Any) -> _Read:
        """The guard screens the customer's turns (raises `InputRejected` on a block)."""
        history = screen_chat_input(data, guard=self.guard)
        raw = (data.get("messages") if isinstance(data, dict) else getattr(data, "messages", None)) or []
        turns = [_content(m) for m in raw if _speaker(m) == "user"]
        question = next((str(m.content) for m in reversed(history) if isinstance(m, HumanMessage)), "")
        return _Read(history=history, turns=turns, question=question)

    @staticmethod
    def _refuse(verdict: Verdict) -> None:
        if verdict.flagged:
            raise InputRejected(
                "the message was refused by moderation (" + ", ".join(verdict.categories) + "); please rephrase it",
                code="moderation_flagged",
            )

    def _search(self, request: Request) -> tuple[str, dict[str, Any]] | None:
        """The retriever call a request needs (None: nothing to search, or outside the service area)."""
        it = request.interpreted
        if it is None or it.outside_place is not None:
            return None
        return it.text, {"interpreted": it, "limit": self.k if request.order == "relevance" else _POOL}

    def _found(self, request: Request, docs: Sequence[Document] | None) -> _Found:
        it = request.interpreted
        if it is not None and it.outside_place is not None:  # decided by code: the model is never asked
            notice = self.engine.area.outside_notice(it.outside_place.name)
            return _Found(request, [], False, notice, final=notice)
        if it is None:
            return _Found(request, [], None, None)
        listings = [SearchResult.model_validate(d.metadata) for d in docs or ()]
        listings, flags = self.screen.keep(listings)
        listings = _ordered(listings, request.order)[: self.k]
        in_area = True if it.place is not None else None
        if not listings:
            return _Found(request, [], in_area, NO_MATCH, final=answer.none_found_text(request), flags=flags)
        fuzzy = f"Showing results for {it.place.name}." if it.fuzzy_place and it.place else None
        return _Found(request, listings, in_area, fuzzy, flags=flags)

    def _turn(self, found: _Found, read: _Read) -> _Turn:
        canary = make_canary()
        today = self.today().isoformat()
        request = answer.request_text(found.request)
        blocks = {False: fence_listings(found.listings, fields=_PROMPT_FIELDS) if found.listings else "(none)",
                  True: fence_listing_lines(found.listings) if found.listings else "(none)"}

        def render(prompt: PromptFile, local: bool, listings: str) -> tuple[str, str | None]:
            return prompt.render(today=today, canary=canary, request=request, question=read.question,
                                 listings=listings)

        def messages(model: Runnable) -> list[BaseMessage]:
            local = self._is_local(model)
            system, human = render(self._prompt(model), local, blocks[local])
            if human is not None:  # a prompt with its own human turn (the small model's): the question only
                return [SystemMessage(system), HumanMessage(human)]
            return [SystemMessage(system), *read.history]

        used = {self._prompt(m).name: self._prompt(m) for m in self.models.runnables}
        leak_ref = "\n".join(render(p, False, "")[0] for p in used.values())
        rules = claims.load_claims(self.rules_file)
        sources = sources_for(found.listings, found.request, rules=rules, catalog=self.catalog(),
                              counties=self.engine.gazetteer.service_area)
        return _Turn(messages=messages, sources=sources, canary=canary, leak_ref=leak_ref)

    def _fallback_text(self, found: _Found) -> str:
        """The answer built from the data when the model's text is not usable."""
        if found.final is not None:
            return found.final
        if found.listings:
            return answer.found_text(found.request, found.listings)
        return answer.GREETING if found.request.small_talk else answer.GENERAL

    def _gate(self, turn: _Turn) -> SentenceGate:
        return SentenceGate(turn.sources, turn.canary, turn.leak_ref, _MIN_LEAK_WORDS)

    def _review(self, turn: _Turn, text: str, flags: list[str]) -> str:
        """The model's whole answer through the gate: what is left once every unbacked sentence is removed."""
        gate = self._gate(turn)
        clean = gate.take(text)
        flags.extend(_removed(gate))
        return clean
    def _retry(self, turn: _Turn, model: Runnable, draft: str, flags: list[str]) -> list[BaseMessage] | None:
        """The messages of one more attempt, when too little was left and the model is worth asking again."""
        if len(draft.split()) >= self.min_words or self._is_local(model) or self.max_attempts < 2:
            return None
        problems = [f for f in flags if f.startswith("removed ")]
        if not problems:
            return None
        follow_up, _ = self.prompts.get("chat_retry").render(problems="\n".join(f"- {p[8:]}" for p in problems))
        flags.append("regenerated: the first answer made unsupported claims")
        return [*turn.messages(model), AIMessage(draft or "(empty)"), HumanMessage(follow_up)]

    def _settle(self, found: _Found, text: str, verdict: Verdict | None, flags: list[str]) -> str:
        """The text to send: the model's when it is long enough and not flagged, else the data's."""
        if verdict is not None and verdict.flagged:
            flags.append("moderation: the answer was flagged (" + ", ".join(verdict.categories) + ") and replaced")
            return self._fallback_text(found)
        if len(text.split()) < self.min_words:
            if text.strip():
                flags.append("replaced: too little of the model's answer was backed by the listings")
            return self._fallback_text(found)
        return text

    def _head(self, found: _Found) -> AddableDict:
        return AddableDict(
            listings=[x.model_dump(mode="json") for x in found.listings], in_service_area=found.in_service_area,
            notice=found.notice,
            interpreted=found.request.interpreted.model_dump(mode="json") if found.request.interpreted else None,
        )

    def _output(self, found: _Found, text: str, flags: list[str]) -> Any:
        if self.view == "text":
            return f"{text}\n\n{answer.cards(found.listings)}" if found.listings else text
        return AssistantOutput(text=text, listings=found.listings, in_service_area=found.in_service_area,
                               notice=found.notice, interpreted=found.request.interpreted,
                               flags=list(dict.fromkeys([*found.flags, *flags])))

    # --- pre-check (before a stream opens) ---
    async def aprecheck(self, data: Any) -> None:
        """Raises `InputRejected` if the guard or moderation refuses the conversation; silent on bad shape
        (LangServe's validation answers 422). LangServe reports an error inside a stream as a bare 500, so
        the server runs this first."""
        try:
            self.input_type.model_validate(data)
        except ValueError:  # pydantic's ValidationError: LangServe answers 422 with the details
            return
        read = self._read(data)
        self._refuse(await self.moderator.acheck(read.turns))

    # --- invoke ---
    def _run(self, data: Any, config: RunnableConfig) -> Any:
        read = self._read(data)
        self._refuse(self.moderator.check(read.turns))
        request = condense(read.turns, self.engine.parser)
        search = self._search(request)
        docs = self.retriever.invoke(search[0], config, **search[1]) if search else None
        found = self._found(request, docs)
        if found.final is not None:
            return self._output(found, found.final, [])
        turn, flags = self._turn(found, read), list[str]()
        model, message = self.models.invoke_with_model(turn.messages, config)
        text = self._review(turn, _text(message), flags)
        for _ in range(self.max_attempts - 1):
            retry = self._retry(turn, model, text, flags)
            if retry is None:
                break
            text = self._review(turn, _text(model.invoke(retry, config)), flags)
        verdict = self.moderator.check([text]) if text else None
        return self._output(found, self._settle(found, text, verdict, flags), flags)

    async def _arun(self, data: Any, config: RunnableConfig) -> Any:
        read = self._read(data)
        self._refuse(await self.moderator.acheck(read.turns))
        request = condense(read.turns, self.engine.parser)
        search = self._search(request)
        docs = await self.retriever.ainvoke(search[0], config, **search[1]) if search else None
        found = self._found(request, docs)
        if found.final is not None:
            return self._output(found, found.final, [])
        turn, flags = self._turn(found, read), list[str]()
        model, message = await self.models.ainvoke_with_model(turn.messages, config)
        text = self._review(turn, _text(message), flags)
        for _ in range(self.max_attempts - 1):
            retry = self._retry(turn, model, text, flags)
            if retry is None:
                break
            text = self._review(turn, _text(await model.ainvoke(retry, config)), flags)
        verdict = await self.moderator.acheck([text]) if text else None
        return self._output(found, self._settle(found, text, verdict, flags), flags)

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
    def _open(self, read: _Read, found: _Found) -> tuple[_Stream, _Turn | None]:
        turn = self._turn(found, read) if found.final is None else None
        return _Stream(self, found, self._gate(turn) if turn is not None else None), turn

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config = self._start(config)
        run = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.get_name(), run_id=config.pop("run_id", None)
        )
        sent: list[Any] = []
        try:
            child = patch_config(config, callbacks=run.get_child())
            read = self._read(input)
            self._refuse(self.moderator.check(read.turns))
            request = condense(read.turns, self.engine.parser)
            search = self._search(request)
            found = self._found(request, self.retriever.invoke(search[0], child, **search[1]) if search else None)
            out, turn = self._open(read, found)
            sent += out.head()
            yield from sent
            if turn is not None and out.gate is not None:
                for chunk in self.models.stream(turn.messages, child):
                    for sentence in out.gate.feed(_text(chunk)):
                        if (piece := out.moderated(sentence, self.moderator.check([sentence]))) is not None:
                            sent.append(piece)
                            yield piece
                for sentence in out.gate.close():
                    if (piece := out.moderated(sentence, self.moderator.check([sentence]))) is not None:
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
        try:
            child = patch_config(config, callbacks=run.get_child())
            read = self._read(input)
            self._refuse(await self.moderator.acheck(read.turns))
            request = condense(read.turns, self.engine.parser)
            search = self._search(request)
            docs = await self.retriever.ainvoke(search[0], child, **search[1]) if search else None
            out, turn = self._open(read, self._found(request, docs))
            for piece in out.head():  # the listings reach the client before the model starts
                sent.append(piece)
                yield piece
            if turn is not None and out.gate is not None:
                # After a leak or a refused sentence the gate lets nothing more out; the model's stream is
                # still read to its end, so its run ends normally and its usage is recorded.
                async for chunk in self.models.astream(turn.messages, child):
                    for sentence in out.gate.feed(_text(chunk)):
                        if (piece := out.moderated(sentence, await self.moderator.acheck([sentence]))) is not None:
                            sent.append(piece)
                            yield piece
                for sentence in out.gate.close():
                    if (piece := out.moderated(sentence, await self.moderator.acheck([sentence]))) is not None:
                        sent.append(piece)
                        yield piece
            for piece in out.tail():
                sent.append(piece)
                yield piece
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(_joined(sent))


@dataclass
class _Stream:
    """One stream's state: what the search found, the sentence gate, the flags, the text pieces sent."""

    chain: AssistantChain
    found: _Found
    gate: SentenceGate | None
    flags: list[str] = field(default_factory=list)
    texts: int = 0

    def _piece(self, text: str) -> Any:
        piece = text if self.texts == 0 else " " + text
        self.texts += 1
        return AddableDict(text=piece) if self.chain.view == "object" else piece

    def head(self) -> list[Any]:
        """The first chunk of the object view: the listings, the area and the search (none for the text view)."""
        return [self.chain._head(self.found)] if self.chain.view == "object" else []

    def moderated(self, sentence: str, verdict: Verdict) -> Any | None:
        """The chunk of a sentence the gate let out, unless moderation refuses it (that ends the model's text)."""
        if verdict.flagged and self.gate is not None:
            self.gate.take_back(sentence)
            self.flags.append("moderation: the answer was flagged (" + ", ".join(verdict.categories) + ") and cut")
            return None
        return self._piece(sentence)

    def tail(self) -> list[Any]:
        """After the model's sentences: the data's answer if too few went out, then the cards or the flags."""
        out: list[Any] = []
        words = self.gate.words if self.gate is not None else 0
        if self.gate is not None:
            self.flags.extend(_removed(self.gate))
        if self.found.final is not None or words < self.chain.min_words:
            if words:
                self.flags.append("added the listings' answer: too little of the model's answer was backed")
            out.append(self._piece(self.chain._fallback_text(self.found)))
        if self.chain.view == "text":
            out += ["\n\n" + answer.cards(self.found.listings)] if self.found.listings else []
        else:
            out.append(AddableDict(flags=list(dict.fromkeys([*self.found.flags, *self.flags]))))
        return out


def _removed(gate: SentenceGate) -> list[str]:
    return [f"removed {flag}" for flag in dict.fromkeys(f.flag for f in gate.findings)]


def _ordered(listings: list[SearchResult], order: str) -> list[SearchResult]:
    if order == "price":
        return sorted(listings, key=lambda x: x.price_from_usd)
    if order == "rating":
        return sorted(listings, key=lambda x: (-x.rating, -x.review_count))
    if order == "distance":
        return sorted(listings, key=lambda x: x.distance_miles if x.distance_miles is not None else float("inf"))
    return listings


def _speaker(m: Any) -> str:
    role = m.get("role") or m.get("type") if isinstance(m, dict) else (m.role or m.type)
    return "user" if role in ("user", "human") else "assistant"


def _content(m: Any) -> str:
    return str(m.get("content", "") if isinstance(m, dict) else m.content)


def _text(message: Any) -> str:
    """A message's (or a streamed chunk's) text, without markdown bold; spaces kept: chunks are joined."""
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks: keep the text ones
        content = "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content
                          if isinstance(p, str | dict))
    return str(content).replace("**", "")


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
