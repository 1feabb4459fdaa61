"""The assistant's steps, one method each, on the parts they need (models, retriever, prompts, guard, ...):

    read -> condense (conversation.py) -> search -> found (-> nearest, when nothing serves the place)
         -> turn (the prompt per model) -> review (ground) -> retry -> settle -> output

`chain.py` runs them for invoke and for streams (with `stream.py` keeping a stream's state).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import AddableDict

from chains import claims
from chains.assistant import answer
from chains.assistant.amounts import amounts, over_budget
from chains.assistant.aspects import asked, asked_services, is_question, lacking, pointed_top, referred
from chains.assistant.conversation import (
    Request,
    asks_anew,
    asks_more,
    condense,
    is_small_talk,
    keeps_shown,
    llm_query,
    medium_of,
    returns_to,
    takes_back,
    with_hints,
)
from chains.assistant.gear import elsewhere, offered_features
from chains.assistant.grounding import SentenceGate, Sources, sources_for
from chains.assistant.listings import ListingScreen
from chains.assistant.schema import AssistantOutput
from chains.assistant.unlisted import Unlisted, absent, another_job, load_unlisted, named_unlisted, unlisted_text
from chains.chat_input import aprefetch_chat_input, screen_chat_input
from chains.fallbacks import Fallbacks, Unsuited
from chains.guard import GuardConfig, make_canary
from chains.moderation import Moderator, Verdict
from chains.prompting import PromptFile, PromptStore
from chains.search import SearchResult
from errors import InputRejected
from retrieval.fence import fence_listing_lines, fence_listings
from retrieval.llm_hints import Hints, ask_llm
from retrieval.places import haversine_miles
from retrieval.ranking import NO_MATCH
from retrieval.retriever import ListingRetriever
from retrieval.vocab import named_services
from settings import Preset

__all__ = ["Found", "Read", "Steps", "Turn", "View", "removed", "text_of", "was_cut"]

log = logging.getLogger("skymarket.assistant")

View = Literal["object", "text"]
_MIN_LEAK_WORDS = 12  # a run of this many words shared with the system prompt is a leak
# listings considered for the few cited: those offering the service named and the features asked for come first,
# in the order asked for (cheapest, best rated, nearest)
_POOL = 10
_OFFERED = 50  # listings counted when the customer names a place and nothing else
_PROMPT_FIELDS = ("title", "operator", "city", "county", "price_from_usd", "price_unit", "rating", "review_count",
                  "services", "certifications", "insured", "features", "description")


@dataclass(frozen=True)
class Read:
    """The request as read: the conversation (user turns screened), the customer's own words, the question."""

    history: list[BaseMessage]
    turns: list[str]
    question: str

    @property
    def earlier(self) -> tuple[str, ...]:
        """The customer's turns before the newest, oldest first: "that one" may point at what they asked."""
        return tuple(self.turns[:-1])


@dataclass
class Found:
    """What the search gave for a request, and what the answer may say without a model (`final`)."""

    request: Request
    listings: list[SearchResult]
    in_service_area: bool | None
    notice: str | None
    final: str | None = None
    flags: list[str] = field(default_factory=list)
    question: str = ""  # the customer's newest turn: what the answer built from the listings must address
    note: str = ""  # said first: why these are other listings than those shown (`Steps.replaced`)
    earlier: tuple[str, ...] = ()  # the customer's turns before the newest (what "that one" / "it" points back at)
    searched: bool = False  # other listings were searched for what none of these has: none had it either


@dataclass(frozen=True)
class Turn:
    """One model turn: the messages for each model, what the answer may claim, and the leak guard's refs."""

    messages: Callable[[Runnable], list[BaseMessage]]
    sources: Sources
    canary: str
    systems: dict[str, str]  # the prompts the models were given, without the listings

    def leak_ref(self) -> str:
        """What an answer must not repeat: the system prompts given so far."""
        return "\n".join(self.systems.values())


class Steps:
    """The parts of the assistant and its steps. Built once by `build_assistant_chain`."""

    def __init__(
        self, *, model: Runnable, retriever: ListingRetriever, prompts: PromptStore,
        preset: Preset | Callable[[], Preset],
        guard: GuardConfig, moderator: Moderator, rules_file: Any, catalog: Callable[[], claims.Catalog | None],
        view: View, local_model: str | None, today: Callable[[], dt.date], k: int, min_words: int,
        max_attempts: int, hints_model: Runnable | None = None, hints_prompt: str = "search_parse",
        hints_timeout_s: float = 2.0, search_when_none_has_it: bool = True, unlisted_file: Path | None = None,
    ) -> None:
        self.models = Fallbacks(model)  # tried here: RunnableWithFallbacks adds a run and a task per call
        self.retriever, self.engine = retriever, retriever.engine
        self.prompts, self.guard, self.moderator = prompts, guard, moderator
        self._preset = preset  # a callable: the preset in force (data/presets.yaml is re-read after an edit)
        self.rules_file, self.catalog, self.view = rules_file, catalog, view
        self.local_model, self.today = local_model, today
        self.k, self.min_words, self.max_attempts = k, min_words, max_attempts
        self.screen = ListingScreen(guard)
        self.search_when_none_has_it = search_when_none_has_it  # ASSISTANT_SEARCH_WHEN_NONE_HAS_IT (`instead`)
        self._offered_by: tuple[object, dict[str, frozenset[str]]] = (None, {})  # index -> its categories' features
        self.unlisted_file = unlisted_file  # services no listing may offer (data/unlisted.yaml)
        self._absent_by: tuple[object, object, tuple[Unlisted, ...]] = (None, None, ())  # (index, entries) -> absent
        # the optional LLM step (ASSISTANT_LLM_CONDENSE, with a key): the search's own, on the whole conversation
        self.hints_model, self.hints_prompt, self.hints_timeout_s = hints_model, hints_prompt, hints_timeout_s

    @property
    def preset(self) -> Preset:
        return self._preset() if callable(self._preset) else self._preset

    def is_local(self, model: Runnable) -> bool:
        return self.local_model is not None and model.name == f"model:{self.local_model}"

    def prompt(self, model: Runnable | None = None) -> PromptFile:
        """The prompt file of `model` (default: the first model tried): the embedded model may have its own."""
        model = model if model is not None else self.models.runnables[0]
        return self.prompts.get(self.preset.prompt_for(local=self.is_local(model)))

    def read(self, data: Any) -> Read:
        """The guard screens the customer's turns (raises `InputRejected` on a block)."""
        history = screen_chat_input(data, guard=self.guard)
        raw = (data.get("messages") if isinstance(data, dict) else getattr(data, "messages", None)) or []
        turns = [_content(m) for m in raw if _speaker(m) == "user"]
        question = next((str(m.content) for m in reversed(history) if isinstance(m, HumanMessage)), "")
        return Read(history=history, turns=turns, question=question)

    async def aread(self, data: Any) -> Read:
        """`read` for an event loop: the guard's ONNX run (a new turn's) happens in a worker thread first."""
        await aprefetch_chat_input(data, guard=self.guard)
        return self.read(data)

    @staticmethod
    def refuse(verdict: Verdict) -> None:
        if verdict.flagged:
            raise InputRejected(
                "the message was refused by moderation (" + ", ".join(verdict.categories) + "); please rephrase it",
                code="moderation_flagged",
            )

    def condense(self, read: Read) -> Request:
        """The conversation as one search request (conversation.py). A turn about the listings just shown
        (`keeps_shown`: "what would that cost?", "are they insured?", "can any of them come on a saturday?",
        "is the Pontiac one insured?", "tell me more about the second one") searches as the turns before it
        did: the same listings, and the answer says what was asked about them from their values (aspects.py),
        "none of them" included, so the text and the cards are about the same listings. Once answered, such a
        turn stays out of the request: "which has the best reviews?" orders nothing later. A turn that asks for
        listings (`asks_anew`: "ok but any insured ones?", "anyone with better reviews?", "what about in
        Canton?") is a refinement like any other turn: a new search; one that asks for others and nothing
        else ("show me some other options") is the same search, past the listings shown (`Request.skip`)."""
        at, skip = self._keep(read.turns)
        request = self._request([read.turns[i] for i in at])
        it = request.interpreted
        topic = read.turns[at[request.topic_from]:]
        if not request.small_talk and (missing := self._missing(topic)):
            request = replace(request, missing=missing)  # "a drone show for our party": no listing offers it
            if it is not None and it.category is not None and not another_job(
                    topic, [e for e in self._absent_by[2] if e.name in missing]):
                # the category came from what the job is about ("pressure washing the siding": no inspection)
                it = it.model_copy(update={"category": None, "categories": []})
                request = replace(request, interpreted=it)
        if it is None:
            return request
        # a turn left out still tells the job's size ("what would that cost for 40 acres?"), the latest winning
        request = replace(request, sizes=amounts(topic))
        if skip:
            return replace(request, skip=skip)
        # the newest turn left out: it asked about the listings shown, which the same request finds again
        return replace(request, about_shown=True) if at[-1] != len(read.turns) - 1 else request

    def _kept(self, turns: list[str]) -> tuple[list[str], int]:
        """The turns that make the request, and how many pages of listings the newest turns asked past."""
        at, skip = self._keep(turns)
        return [turns[i] for i in at], skip

    def _keep(self, turns: list[str]) -> tuple[list[int], int]:
        """`_kept`, as the turns' positions."""
        at: list[int] = []
        kept: list[str] = []
        skip = 0
        requests: dict[int, Request] = {}  # the request of the kept turns so far (by their number)

        def request() -> Request:
            if len(kept) not in requests:
                requests[len(kept)] = condense(kept, self.engine.parser)
            return requests[len(kept)]

        def showed() -> bool:  # nothing shown yet ("can someone cover that one?" after a city outside the area)
            return _shown(request())

        def nothing_new(t: str) -> bool:  # no place, price or feature, no service but the one shown ("my roof")
            it, now = self.engine.parser.parse(t), request().interpreted
            same = it.category is None or (now is not None and (it.category in now.categories or (
                now.category is not None and medium_of(t, it.category, now.category))))  # "the photos back"
            return same and not (it.place or it.outside_place or it.features or it.max_price or it.insured)

        def outside(t: str) -> bool:  # "can the same outfit do his too, outside adrian": the area decides first
            it = self.engine.parser.parse(t)
            return it.outside_place is not None and it.place is None

        def relaxes(t: str) -> bool:  # "ok doesnt need to be at night", "any day works actually": search again
            now = request().interpreted
            return now is not None and bool(takes_back(t) & {*now.features, *(("insured",) if now.insured else ())})

        def points(t: str) -> bool:  # "who's closest?" of them; not "for the spraying, who's closest" (another need)
            it, now = self.engine.parser.parse(t), request().interpreted
            return self._points(t) and (it.category is None or (now is not None and it.category in now.categories))

        for i, t in enumerate(turns):
            if 0 < i < len(turns) - 1 and is_small_talk(t):
                continue  # "thank you!" then "one more q - do they edit the photos?": still about the listings shown
            if i and asks_more(t) and _adds_nothing(self.engine.parser.parse(t)):
                skip += 1  # "show me other options": the same search, past the listings shown
            elif i == 0 or outside(t) or relaxes(t) or (asks_anew(t) and not points(t)) or not (
                    points(t) or keeps_shown(t) or (is_question(t) and nothing_new(t))) or not showed():
                # a question that asks for nothing new to search ("he's 14, is that ok?") is about them
                start = request().topic_from if kept else 0
                if start and returns_to(t, kept[:start], kept[start:], self.engine.parser):
                    del kept[start:], at[start:]  # "ok back to the roof thing": the detour's turns leave the request
                    requests.clear()
                kept.append(t)
                at.append(i)
                skip = 0
        return at, skip

    def _points(self, turn: str) -> bool:
        """Whether a turn points at one of the listings shown by a superlative ("the one w the best reviews, do
        they teach on weekends"), naming no place or price ("the cheapest one in Canton" asks anew)."""
        if pointed_top(turn) is None:
            return False
        it = self.engine.parser.parse(turn)
        return it.place is None and it.outside_place is None and it.max_price is None

    def _request(self, turns: list[str]) -> Request:
        request = condense(turns, self.engine.parser)
        it = request.interpreted
        if it is None or it.category is None or not it.features:  # no equipment asked: the index is not read
            return request
        moved = elsewhere(request, self._offered())  # a heat camera asked of a category that never has one
        return moved if moved is not None and self._served(moved) else request

    def instead(self, found: Found, read: Read) -> Request | None:
        """When the newest turn asked the listings shown for something none of them has ("can any of them come
        on a saturday?", "do any of them do video tours too?"): the request with that turn as a refinement, to
        show other listings, said as such (`replaced`); None when one of them has it, when the turn points at
        one of them (answered for it), when the turn asked nothing they could lack, and always when
        ASSISTANT_SEARCH_WHEN_NONE_HAS_IT is off (the answer then says none has it, and offers to search)."""
        turns = read.turns
        it = found.request.interpreted
        if (not self.search_when_none_has_it or len(turns) < 2 or not found.listings or found.final is not None
                or it is None or found.request.skip):
            return None
        last = turns[-1]
        if not found.request.about_shown or referred(last, found.listings):  # a refinement, or one pointed at
            return None
        kept, _ = self._kept(turns)
        aspects, features = asked(last)
        services = asked_services(last, it.categories)
        if not ("insured" in aspects or features or services) or not all(
                lacking(aspects, features, [x], services) for x in found.listings):
            return None
        other = self._request([*kept, last])
        return other if other.interpreted is not None and other.interpreted != it else None

    def replaced(self, found: Found, other: Request, docs: Sequence[Document]) -> Found:
        """The listings of `other` (`instead`), with a sentence that says none of those shown had what was
        asked and these are other listings; the listings shown when the search finds none that has it (the
        answer then says so: `searched`)."""
        new = self.found(other, docs, found.question, earlier=found.earlier)
        shown = {x.id for x in found.listings}
        it, last = found.request.interpreted, found.question
        aspects, features = asked(last)
        services = asked_services(last, it.categories) if it is not None else ()
        if new.final is not None or not new.listings or {x.id for x in new.listings} <= shown or all(
                lacking(aspects, features, [x], services) for x in new.listings):
            return replace(found, searched=True)  # no other listing has it either: the shown, and say so
        # only those that have it: one shown before, or another lacking it, would contradict the note
        new.listings = [x for x in new.listings if not lacking(aspects, features, [x], services)]
        new.note = answer.instead_text(found.request, found.listings, found.question)
        new.flags = [*found.flags, *new.flags, "searched again: none of the listings shown had what was asked"]
        return new

    def answered(self, found: Found, read: Read | None = None) -> Found:
        """The answer from the listings, when the embedded model answers first and is not to be asked: with
        listings cited unless `chat.local.answers_with_listings` says so (its text, when it survived the checks,
        was mostly odd), and always for a question about the listings the customer already has ("are they
        insured?", "tell me more about the second one") that their values answer. A paid model is still asked
        (its text goes first, the data's answer after it). An answer the same, word for word, as the one just
        given says so first (`read`: the conversation), so the customer knows the turn was read."""
        done = self._answered(found)
        if read is None or done.final is None or not done.listings or not _repeats(done.final, read.history):
            return done
        return replace(done, final=f"{answer.SAME} {done.final}")

    def _answered(self, found: Found) -> Found:
        if found.final is not None or not found.listings:
            return found
        local = self.is_local(self.models.runnables[0])
        if local and not self.preset.answers_with_listings(local=True):  # chat.local.answers_with_listings
            return replace(found, final=self.fallback_text(found))
        if not found.request.about_shown or not local or not answer.asked_text(
                found.request, found.listings, found.question, searched=found.searched, earlier=found.earlier):
            return found
        return replace(found, final=self.fallback_text(found))

    def _missing(self, turns: list[str]) -> tuple[str, ...]:
        """The services of data/unlisted.yaml the turns ask for and no listing of the index in force mentions
        (the index is read only when the turns name one: a general question never needs it)."""
        if self.unlisted_file is None:
            return ()
        entries = load_unlisted(self.unlisted_file)
        if not named_unlisted(turns, entries):
            return ()
        index = self.engine.index
        if self._absent_by[0] is not index or self._absent_by[1] is not entries:
            self._absent_by = (index, entries, absent(entries, index.listings))
        return named_unlisted(turns, self._absent_by[2])

    def _offered(self) -> dict[str, frozenset[str]]:
        """Each category's features in the index in force (computed again after a reload)."""
        index = self.engine.index
        if self._offered_by[0] is not index:
            self._offered_by = (index, offered_features(index.listings))
        return self._offered_by[1]

    def _served(self, request: Request) -> bool:
        """Whether a listing passes the request's filters and serves its place."""
        it = request.interpreted
        if it is None or it.place is None:
            return True
        county = it.place.county if it.place.kind == "county" else None
        ok, _ = self.engine.index.mask(it, (it.place.lat, it.place.lon), county)
        return bool(ok.any())

    def _wants_hints(self, request: Request) -> bool:
        it = request.interpreted
        return self.hints_model is not None and not request.small_talk and (
            it is None or it.category is None or (it.place is None and it.outside_place is None))

    def _ask_hints(self, turns: list[str], config: RunnableConfig) -> Hints:
        assert self.hints_model is not None
        return ask_llm(model=self.hints_model, prompts=self.prompts, query=llm_query(turns),
                       prompt_name=self.hints_prompt, config=config)

    def refine(self, request: Request, turns: list[str], config: RunnableConfig) -> Request:
        """The request with what the optional LLM step read from the conversation and the words did not;
        an optional step: slow, failing or garbled, it is skipped and the answer goes on without it."""
        if not self._wants_hints(request):
            return request
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            hints = pool.submit(self._ask_hints, turns, config).result(timeout=self.hints_timeout_s)
        except Exception as exc:  # any failure at all: the step is optional
            log.info("assistant LLM step skipped: %s", type(exc).__name__)
            return request
        finally:
            pool.shutdown(wait=False)
        return with_hints(request, hints, self.engine.parser)

    async def arefine(self, request: Request, turns: list[str], config: RunnableConfig) -> Request:
        """`refine` for an event loop."""
        if not self._wants_hints(request):
            return request
        try:
            hints = await asyncio.wait_for(asyncio.to_thread(self._ask_hints, turns, config), self.hints_timeout_s)
        except Exception as exc:  # any failure at all: the step is optional
            log.info("assistant LLM step skipped: %s", type(exc).__name__)
            return request
        return with_hints(request, hints, self.engine.parser)

    def search(self, request: Request) -> tuple[str, dict[str, Any]] | None:
        """The retriever call a request needs (None: nothing to search, or outside the service area)."""
        it = request.interpreted
        if it is None or it.outside_place is not None or (request.missing and it.category is None and it.place is None):
            return None
        limit = _OFFERED if request.broad else max(self.k * (request.skip + 1), _POOL)
        return it.text, {"interpreted": it, "limit": limit}

    def found(self, request: Request, docs: Sequence[Document] | None, question: str = "", *,
              earlier: Sequence[str] = ()) -> Found:
        """What the search gave, and the answer when it needs no model (outside the area, nothing to search or
        found, a place and nothing else); `question` (the newest turn) is what that answer addresses."""
        it = request.interpreted
        if it is not None and it.outside_place is not None:  # decided by code: the model is never asked
            out = it.outside_place
            notice = self.engine.area.outside_notice(out.name, out.lat, out.lon)
            return Found(request, [], False, notice, final=notice)
        if request.missing and (it is None or (it.category is None and it.place is None)):  # nothing to show
            return Found(request, [], None, None, final=f"{unlisted_text(request.missing)} {answer.UNLISTED}")
        if it is None:  # nothing to search: small talk or a general question
            first = self.models.runnables[0]
            if self.preset.answers_without_listings(local=self.is_local(first)):
                return Found(request, [], None, None)
            said = ((answer.ACKNOWLEDGED if earlier else answer.GREETING) if request.small_talk
                    else answer.general_text(question))
            return Found(request, [], None, None, final=said)
        listings = [SearchResult.model_validate(d.metadata) for d in docs or ()]
        if request.broad and it.place is not None:  # a place and nothing else: what its operators offer
            summary = answer.offered_text(it.place.name, listings)
            if request.missing:  # asked for what no listing offers: said first
                summary = f"{unlisted_text(request.missing)} {summary}"
            return Found(request, [], True, None, final=summary)
        listings, flags = self.screen.keep(listings)
        # over the budget for the whole job ($28 per acre for 40 acres is over $500, though 28 is under it): left
        # out as the search's own cap would leave them, unless none comes within it (the answer then says so)
        within = [x for x in listings if not over_budget(x, request.sizes, it.max_price)]
        listings = _ordered(within or listings, request.order, it.features, named_services(it.text, it.categories))
        listings = listings[self.k * request.skip : self.k * (request.skip + 1)]
        in_area = True if it.place is not None else None
        if not listings:
            return Found(request, [], in_area, NO_MATCH, final=answer.none_found_text(request), flags=flags)
        fuzzy = f"Showing results for {it.place.name}." if it.fuzzy_place and it.place else None
        # "a drone light show for our wedding": said first, before the wedding videographers
        note = unlisted_text(request.missing) if request.missing and self._missing([question]) else ""
        return Found(request, listings, in_area, fuzzy, flags=flags, question=question, earlier=tuple(earlier),
                     note=note)

    def wider(self, found: Found) -> tuple[str, dict[str, Any]] | None:
        """When no listing serves the place searched: the same search without the place (its other filters
        kept), to show the nearest that fit the rest. Not when the customer set a radius themselves."""
        it = found.request.interpreted
        if found.listings or found.notice != NO_MATCH or it is None or it.place is None or it.radius_miles:
            return None
        return it.text, {"interpreted": it.model_copy(update={"place": None, "fuzzy_place": False}),
                         "limit": _OFFERED}

    def nearest(self, found: Found, docs: Sequence[Document]) -> Found:
        """The nearest of the wider search's listings to the place (`wider`), as an answer built from them."""
        it = found.request.interpreted
        assert it is not None and it.place is not None
        lat, lon = it.place.lat, it.place.lon
        listings, flags = self.screen.keep([SearchResult.model_validate(d.metadata) for d in docs])
        if not listings:
            return found
        placed = sorted((round(haversine_miles(lat, lon, x.lat, x.lon), 1), x.id, x) for x in listings)
        near = [x.model_copy(update={"distance_miles": miles}) for miles, _, x in placed[: self.k]]
        notice = f"No listing serves {it.place.name}: showing the nearest."
        final = answer.nearest_text(found.request, near)
        if found.request.about_shown:  # "how fast?" of the nearest shown before: answered, not shown again
            final = (answer.asked_text(found.request, near, found.question, earlier=found.earlier)
                     or answer.unanswered_text(near, found.question))
        return Found(found.request, near, True, notice, final=final, flags=[*found.flags, *flags],
                     question=found.question, earlier=found.earlier)

    def turn(self, found: Found, read: Read) -> Turn:
        canary = make_canary()
        values = {"today": self.today().isoformat(), "canary": canary, "question": read.question,
                  "request": answer.request_text(found.request)}
        systems: dict[str, str] = {}  # each prompt read so far -> its own words (for the leak guard)

        def messages(model: Runnable) -> list[BaseMessage]:
            """The messages for `model`: its prompt file is read when it is tried (the embedded model's
            prompt only when the chain gets to it)."""
            local = self.is_local(model)
            if local and not found.listings and not self.preset.answers_without_listings(local=True):
                raise Unsuited(model.name)  # a paid model's fallback: the small model invents without listings
            prompt = self.prompt(model)
            fence = fence_listing_lines if local else _fence_for_prompt
            system, human = prompt.render(listings=fence(found.listings) if found.listings else "(none)", **values)
            # The leak guard compares an answer with the prompt's own words: quoting a listing is no leak.
            systems.setdefault(prompt.name, prompt.render(listings="", **values)[0])
            if human is not None:  # a prompt with its own human turn (the small model's): the question only
                return [SystemMessage(system), HumanMessage(human)]
            return [SystemMessage(system), *read.history]

        rules = claims.load_claims(self.rules_file)
        sources = sources_for(found.listings, found.request, rules=rules, catalog=self.catalog(),
                              counties=self.engine.gazetteer.service_area)
        return Turn(messages=messages, sources=sources, canary=canary, systems=systems)

    def fallback_text(self, found: Found, *, note: bool = True) -> str:
        """The answer built from the data when the model's text is not usable (after `found.note`, unless a
        stream sent the note already)."""
        if found.final is not None:
            return found.final
        if found.listings:
            text = answer.found_text(found.request, found.listings, question=found.question, searched=found.searched,
                                     earlier=found.earlier)
            return f"{found.note} {text}".strip() if found.note and note else text
        return answer.GREETING if found.request.small_talk else answer.general_text(found.question)

    def gate(self, turn: Turn) -> SentenceGate:
        return SentenceGate(turn.sources, turn.canary, turn.leak_ref, _MIN_LEAK_WORDS)

    def review(self, turn: Turn, message: Any, flags: list[str]) -> str:
        """The model's whole answer through the gate: what is left once every unbacked sentence is removed."""
        gate = self.gate(turn)
        clean = gate.take(text_of(message), cut=was_cut(message))
        flags.extend(removed(gate))
        return clean

    def usable(self, found: Found, text: str) -> bool:
        """Whether the model's checked text can be the answer: with listings cited, enough of it to stand
        beside them (else the listings' own answer is better); without, anything left."""
        return bool(text.strip()) and (not found.listings or len(text.split()) >= self.min_words)

    def retry(self, turn: Turn, model: Runnable, found: Found, draft: str, clean: str,
               flags: list[str]) -> list[BaseMessage] | None:
        """The messages of one more attempt, when the check left too little and the model is worth asking."""
        problems = [f[len("removed "):] for f in flags if f.startswith("removed ")]
        if self.usable(found, clean) or not problems or self.is_local(model) or self.max_attempts < 2:
            return None
        follow_up, _ = self.prompts.get("chat_retry").render(problems="\n".join(f"- {p}" for p in problems))
        flags.append("regenerated: the first answer made unsupported claims")
        return [*turn.messages(model), AIMessage(draft or "(empty)"), HumanMessage(follow_up)]

    def settle(self, found: Found, text: str, verdict: Verdict | None, flags: list[str]) -> str:
        """The text to send: the model's when it is usable and not flagged, else the data's."""
        if verdict is not None and verdict.flagged:
            flags.append("moderation: the answer was flagged (" + ", ".join(verdict.categories) + ") and replaced")
            return self.fallback_text(found)
        if not self.usable(found, text):
            if text.strip():
                flags.append("replaced: too little of the model's answer was backed by the listings")
            return self.fallback_text(found)
        # why these are other listings than those shown comes first, before the model speaks of them
        return " ".join(part for part in (found.note, text, self.addendum(found, text)) if part)

    def addendum(self, found: Found, text: str) -> str:
        """What the model's usable text is followed by: the cited listings' own values for what the newest turn
        asked about them (a price question gets every price, whatever the model chose to say)."""
        return answer.asked_text(found.request, found.listings, found.question, said=text, searched=found.searched,
                                 earlier=found.earlier)

    def head(self, found: Found) -> AddableDict:
        return AddableDict(
            listings=[x.model_dump(mode="json") for x in found.listings], in_service_area=found.in_service_area,
            notice=found.notice,
            interpreted=found.request.interpreted.model_dump(mode="json") if found.request.interpreted else None,
        )

    def output(self, found: Found, text: str, flags: list[str]) -> Any:
        if self.view == "text":
            return f"{text}\n\n{answer.cards(found.listings)}" if found.listings else text
        return AssistantOutput(text=text, listings=found.listings, in_service_area=found.in_service_area,
                               notice=found.notice, interpreted=found.request.interpreted,
                               flags=list(dict.fromkeys([*found.flags, *flags])))


def _repeats(text: str, history: Sequence[BaseMessage]) -> bool:
    """Whether `text` is what the assistant said last (its text view may carry the listing cards after it)."""
    said = next((m for m in reversed(history) if isinstance(m, AIMessage)), None)
    return said is not None and " ".join(str(said.content).split()).startswith(" ".join(text.split()))


def _shown(request: Request) -> bool:
    """Whether a request showed listings to ask about: something searched, inside the area."""
    it = request.interpreted
    return it is not None and it.outside_place is None


def _adds_nothing(it: Any) -> bool:
    """Whether a turn's own reading sets nothing to search by: no service, place, price, insurance or feature."""
    return not (it.given() or it.place or it.outside_place or it.features)


def _fence_for_prompt(listings: Sequence[Any]) -> str:
    return fence_listings(listings, fields=_PROMPT_FIELDS)


def removed(gate: SentenceGate) -> list[str]:
    """The flags of what the gate took out."""
    return [f"removed {flag}" for flag in dict.fromkeys(f.flag for f in gate.findings)]


# Gear without which the job cannot be done at all, whatever the service offered: nowhere to land ("it would
# have to be dropped to us"), inside a building. A listing without it is no answer, so it comes after those with
# it even when it names the service ("boat delivery" without a drop, to a boat with no room to land). Time
# features (night, weekend) are not here: the service asked for comes before them.
_CANNOT_DO_WITHOUT = frozenset({"payload_drop", "indoor_flight"})


def _ordered(listings: list[SearchResult], order: str, features: Sequence[str] = (),
             services: Sequence[str] = ()) -> list[SearchResult]:
    """The listings in the order asked for; first those that offer a service named (`services`), then among
    them those that lack fewer of the features asked for ("they need to fly at night", "4k and same day"); before
    all of that, those with the gear the job cannot be done without (`_CANNOT_DO_WITHOUT`). The
    search only weighs these, with the words: a listing without them answers less of what was asked (the
    service first: a night flyer that does no search and rescue is no answer to a missing person)."""
    wanted, named = set(features), set(services)
    needed = wanted & _CANNOT_DO_WITHOUT

    def lacks(x: SearchResult) -> tuple[bool, bool, int]:
        return (bool(needed - set(x.features)), bool(named) and not named & set(x.services),
                len(wanted - set(x.features)))

    by = _ORDER_KEYS.get(order, lambda x: 0)  # relevance: the search's own order (the sort is stable)
    return sorted(listings, key=lambda x: (lacks(x), by(x)))


_ORDER_KEYS: dict[str, Callable[[SearchResult], Any]] = {
    "price": lambda x: x.price_from_usd,
    "rating": lambda x: (-x.rating, -x.review_count),
    "distance": lambda x: x.distance_miles if x.distance_miles is not None else float("inf"),
}


def _speaker(m: Any) -> str:
    role = m.get("role") or m.get("type") if isinstance(m, dict) else (m.role or m.type)
    return "user" if role in ("user", "human") else "assistant"


def _content(m: Any) -> str:
    return str(m.get("content", "") if isinstance(m, dict) else m.content)


def was_cut(message: Any) -> bool:
    """Whether the model stopped at its token limit (OpenAI's and llama.cpp's `finish_reason: length`)."""
    meta = getattr(message, "response_metadata", None) or {}
    return meta.get("finish_reason") == "length"


def text_of(message: Any) -> str:
    """A message's (or a streamed chunk's) text, without markdown bold; spaces kept: chunks are joined."""
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks: keep the text ones
        content = "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content
                          if isinstance(p, str | dict))
    return str(content).replace("**", "")
