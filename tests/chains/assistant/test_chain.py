"""The assistant chain on the shipped index (no HTTP): it cites what the search finds, keeps only backed text,
answers from the listings when the model's text fails, decides the service area before any model, carries a
request across turns, streams the listings before the text, shows its retrieval as a retriever run, gives the
embedded model its own prompt, falls back across models, and never cites a listing that addresses the model."""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage

import chains.chat_input as chat_input
from chains.assistant import AssistantChain
from chains.assistant.answer import SAME, found_text, price_of
from chains.assistant.aspects import miles
from chains.assistant.conversation import condense
from chains.assistant.schema import AssistantOutput
from errors import InputRejected
from gateway import context
from gateway.context import RequestContext
from retrieval.engine import SearchEngine
from tests.chains.assistant.conftest import POISON, Scripted
from tests.conftest import ROOT

ASK = {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]}
CHICAGO = {"messages": [{"role": "user", "content": "I need a drone photographer for a wedding in Chicago"}]}
Build = Callable[..., AssistantChain]


def _expected(engine: SearchEngine, *turns: str) -> list[Any]:
    """What the search itself returns for the conversation, best first."""
    it = condense(list(turns), engine.parser).interpreted
    assert it is not None
    return [h.listing for h in engine.search(it.text, interpreted=it, limit=3).hits]


def _backed_answer(engine: SearchEngine) -> str:
    top = _expected(engine, ASK["messages"][0]["content"])[0]
    return f"{top.operator} inspects roofs for Troy customers, {price_of(top)}."


def test_cites_what_the_search_finds_and_keeps_a_backed_answer(build: Build, shipped_engine: SearchEngine) -> None:
    answer = _backed_answer(shipped_engine)
    out = build(Scripted(reply=answer)).invoke(ASK)
    assert [x.id for x in out.listings] == [x.id for x in _expected(shipped_engine, ASK["messages"][0]["content"])]
    assert out.text == answer and out.flags == [] and out.notice is None
    assert out.in_service_area is True and out.interpreted is not None and out.interpreted.place is not None
    assert out.interpreted.place.name == "Troy" and out.interpreted.category == "inspection"
    assert all(x.score > 0 and x.distance_miles is not None for x in out.listings)


def test_invented_facts_never_reach_the_customer(build: Build, shipped_engine: SearchEngine) -> None:
    model = Scripted(reply="SkyHigh Drones can inspect your roof for $99 and they are night certified. "
                           "Call 313-555-0199 to book.")
    out = build(model).invoke(ASK)
    for invented in ("SkyHigh", "$99", "313", "night"):
        assert invented not in out.text
    cited = {f"${x.price_from_usd:,.0f}" for x in out.listings}
    assert set(re.findall(r"\$[\d,]+", out.text)) <= cited
    assert out.text == found_text(condense([ASK["messages"][0]["content"]], shipped_engine.parser), out.listings)
    assert any(f.startswith("removed price") for f in out.flags) and "regenerated" in " ".join(out.flags)
    assert len(model.seen) == 2  # a paid model is asked once more before the listings' answer replaces it


def test_the_text_view_is_the_answer_then_cards(build: Build, shipped_engine: SearchEngine) -> None:
    answer = _backed_answer(shipped_engine)
    out = build(Scripted(reply=answer), view="text").invoke(ASK)
    assert isinstance(out, str) and out.startswith(answer + "\n\n1. ")
    for x in _expected(shipped_engine, ASK["messages"][0]["content"]):
        line = next(line for line in out.splitlines() if x.id in line)
        assert x.title in line and x.city in line and price_of(x) in line and f"rated {x.rating:g}" in line


def test_out_of_area_is_decided_by_code_before_any_model(build: Build) -> None:
    model = Scripted()
    out = build(model).invoke(CHICAGO)
    assert out.in_service_area is False and out.listings == [] and model.seen == []
    assert out.notice == out.text and "Detroit Metro" in out.text and "Chicago" in out.text


def test_a_question_about_the_listings_shown_that_moves_outside_the_area_gets_the_area_answer(build: Build) -> None:
    first = "ndvi map of my corn in dundee"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    assert shown.listings and shown.in_service_area is True
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "my cousin has 300 acres outside adrian, can the same outfit do his too"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert out.listings == [] and out.in_service_area is False and "Adrian" in out.text
    convo[-1]["content"] = "is the Dundee one insured?"  # a place inside the area: still about them
    kept = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in kept.listings] == [x.id for x in shown.listings]


def test_small_talk_cites_nothing(build: Build) -> None:
    model = Scripted(reply="Hi! What drone service do you need, and where?")
    out = build(model).invoke({"messages": [{"role": "user", "content": "hello"}]})
    assert out.listings == [] and out.interpreted is None and out.in_service_area is None
    assert out.text == "Hi! What drone service do you need, and where?" and len(model.seen) == 1


def test_a_question_that_searches_nothing_does_not_need_the_index(build: Build, tmp_path: Any) -> None:
    """An empty index (before `make index`) fails only the turns that search: a general question is answered."""
    from retrieval.embeddings import MiniLMEmbeddings
    from retrieval.engine import build_search_engine
    from retrieval.store import build_vectorstore
    from tests.conftest import make_settings

    settings = make_settings(chroma_path=tmp_path / "chroma", chroma_collection="empty")
    embeddings = MiniLMEmbeddings()
    store = build_vectorstore(settings=settings, embeddings=embeddings)
    empty = build_search_engine(settings=settings, embeddings=embeddings, store=store)
    model = Scripted(reply="You can list it from your account page.")
    ask = {"messages": [{"role": "user", "content": "How do I list a drone for sale?"}]}
    out = build(model, engine=empty).invoke(ask)
    assert out.listings == [] and out.text == "You can list it from your account page." and len(model.seen) == 1


@pytest.mark.parametrize("text", ["hello", "what can you do?", "are your pilots licensed?"])
async def test_the_embedded_model_is_not_asked_when_nothing_is_cited(build: Build, text: str) -> None:
    local = Scripted(reply="I'm a professional drone pilot and this site lets you upload your drones.", seen=[])
    local.name = "model:smollm2-135m-instruct"
    ask = {"messages": [{"role": "user", "content": text}]}
    out = build(local).invoke(ask)
    assert out.listings == [] and local.seen == [] and "upload" not in out.text
    assert "Detroit Metro" in out.text  # the assistant's own words: what it does and where
    assert (await build(local).ainvoke(ask)).text == out.text
    streamed = "".join([c.get("text") or "" async for c in build(local).astream(ask)])
    assert streamed == out.text and local.seen == []
    paid = Scripted(reply="Hi! Tell me what you need and where.", seen=[])  # an OpenAI model answers freely
    assert build(paid).invoke(ask).text == "Hi! Tell me what you need and where." and len(paid.seen) == 1


@pytest.mark.parametrize(
    ("turns", "category", "place", "cap"),
    [(["I need a roof inspection", "I'm in Livonia"], "inspection", "Livonia", None),
     (["mapping in Lapeer?", "cheaper ones, under $300?"], "mapping_surveying", "Lapeer", 300.0)],
)
def test_a_request_carries_across_turns(build: Build, turns: list[str], category: str, place: str,
                                        cap: float | None) -> None:
    messages: list[dict[str, str]] = []
    for t in turns:
        messages += [{"role": "user", "content": t}, {"role": "assistant", "content": "Here you go."}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": messages[:-1]})
    assert out.listings and out.in_service_area is True
    assert out.interpreted is not None and out.interpreted.place and out.interpreted.place.name == place
    for x in out.listings:
        assert x.category == category and x.distance_miles is not None
        assert x.distance_miles <= x.service_radius_miles or x.county == out.interpreted.place.county
        assert cap is None or x.price_from_usd <= cap
    if cap is not None:  # "cheaper ones": cheapest first
        assert [x.price_from_usd for x in out.listings] == sorted(x.price_from_usd for x in out.listings)


def _ask(build: Build, *turns: str) -> AssistantOutput:
    messages: list[dict[str, str]] = []
    for t in turns:
        messages += [{"role": "user", "content": t}, {"role": "assistant", "content": "Here you go."}]
    return build(Scripted(reply="Okay.")).invoke({"messages": messages[:-1]})  # type: ignore[no-any-return]


def test_equipment_asked_later_brings_the_listings_that_have_it_first(build: Build,
                                                                       shipped_engine: SearchEngine) -> None:
    out = _ask(build, "we need the cell tower on our property looked at, near Milford",
               "can it be a 24/7 crew, and on the weekend")
    it = out.interpreted
    wanted = {"emergency_callout", "weekend_availability"}
    assert it is not None and set(it.features) == wanted
    missing = [len(wanted - set(x.features)) for x in out.listings]
    assert len(missing) == 3 and missing == sorted(missing)
    assert all("cell tower inspection" in x.services for x in out.listings)
    # the search alone weighs the features with the words: its first three lack more of them
    alone = [h.listing for h in shipped_engine.search(it.text, limit=3, interpreted=it).hits]
    assert sum(missing) < sum(len(wanted - set(x.features)) for x in alone)


def test_a_single_request_cites_those_offering_the_named_service_first(build: Build,
                                                                        shipped_engine: SearchEngine) -> None:
    out = _ask(build, "my kid wants fpv lessons, we live in Port Huron")
    it = out.interpreted
    assert it is not None and len(out.listings) == 3
    assert all("fpv lessons" in x.services for x in out.listings)
    # the search alone ranks a trainer who teaches no fpv among its first three
    alone = [h.listing for h in shipped_engine.search(it.text, limit=3, interpreted=it).hits]
    assert any("fpv lessons" not in x.services for x in alone)


def test_asking_for_better_reviewed_ones_searches_again_by_rating(build: Build) -> None:
    first = _ask(build, "chimney inspection in Farmington")
    better = _ask(build, "chimney inspection in Farmington", "anyone with better reviews than those?")
    ratings = [x.rating for x in better.listings]
    assert better.listings and ratings == sorted(ratings, reverse=True)
    assert sum(ratings) / len(ratings) > sum(x.rating for x in first.listings) / len(first.listings)
    assert {x.id for x in better.listings} != {x.id for x in first.listings}


def test_the_service_asked_for_comes_before_the_equipment(build: Build) -> None:
    out = _ask(build, "my grandpa with alzheimers walked off from the farmhouse near Romeo",
               "they would have to fly after dark and find him by his heat")
    assert out.interpreted is not None and {"night_ops", "thermal_camera"} <= set(out.interpreted.features)
    assert out.listings and all("search and rescue" in x.services for x in out.listings)


def test_gear_the_job_cannot_be_done_without_comes_before_the_service_named(build: Build) -> None:
    out = _ask(build, "can someone get a box of fishing tackle out to our pontoon, we're on the water off "
               "St. Clair Shores", "there is nowhere to set a drone down on it")
    assert out.interpreted is not None and "payload_drop" in out.interpreted.features
    has = ["payload_drop" in x.features for x in out.listings]
    assert len(has) == 3 and has[0] and has == sorted(has, reverse=True)


def test_a_camera_the_category_never_has_is_asked_of_the_category_that_has_it(build: Build) -> None:
    out = _ask(build, "got a beef herd on 300 acres outside Imlay City", "need them spotted at night by their heat")
    assert out.interpreted is not None and out.interpreted.category == "thermal_imaging"
    assert out.listings and "livestock and wildlife counts" in out.listings[0].services
    assert all("thermal_camera" in x.features for x in out.listings)


async def test_the_embedded_model_is_not_asked_what_the_shown_listings_answer(build: Build) -> None:
    first = "need a drone to check the shingles on my roof in livonia"
    local = Scripted(reply="They are the best with a 100% rating.", seen=[])
    local.name = "model:smollm2-135m-instruct"
    shown = build(local).invoke({"messages": [{"role": "user", "content": first}]})
    asked = len(local.seen)
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "are any of them insured?"}]
    out = build(local).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings] and len(local.seen) == asked
    assert "insured" in out.text and "100%" not in out.text
    streamed = "".join([c.get("text") or "" async for c in build(local).astream({"messages": convo})])
    assert streamed == out.text and len(local.seen) == asked
    paid = Scripted(reply="Happy to help with that.", seen=[])  # a paid model is still asked
    build(paid).invoke({"messages": convo})
    assert paid.seen  # asked (and once more: its reply names no listing)


def test_a_question_about_the_shown_listings_keeps_them_and_is_answered(build: Build) -> None:
    first = ("our upstairs is freezing every winter, we think heat escapes through the attic somewhere, "
             "could a drone see where? house is in Wyandotte")
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "ballpark, what would that run me?"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]  # the same ones, not a new search
    for x in out.listings:  # "Okay." is too short to stand: the answer from the data says each price
        assert f"${x.price_from_usd:,.0f} per {x.price_unit} ({x.title})" in out.text
    # the customer has these listings already: the answer is what they asked, not the search's lead again
    assert shown.text.startswith("Here are ") and not out.text.startswith("Here are ")
    # A yes/no question over them names a feature: still about them; the text and the cards are the same ones.
    convo[-1]["content"] = "ok, and any of them able to do it on a sunday?"
    weekend = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in weekend.listings] == [x.id for x in shown.listings]
    assert "weekend availability" in weekend.text
    assert weekend.interpreted is not None and "weekend_availability" not in weekend.interpreted.features
    convo[-1]["content"] = "ok but got any ones that work sundays?"  # asks for listings: a refinement
    refined = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert refined.interpreted is not None and "weekend_availability" in refined.interpreted.features


async def test_what_none_of_the_shown_has_is_said_then_other_listings_are_shown_as_such(build: Build) -> None:
    first = "my daughter's wedding in Saline needs filming"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    assert shown.listings and not any("live_stream" in x.features for x in shown.listings)  # else this proves nothing
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "could any of those guys stream it live?"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert {x.id for x in out.listings} - {x.id for x in shown.listings}  # others, that do
    assert any("live_stream" in x.features for x in out.listings)
    assert "None of the 3 listings shown before lists live streaming, so here are other listings instead" in out.text
    assert any(f.startswith("searched again") for f in out.flags)
    # A model's text about the new listings comes after the sentence that says why they are new, streamed alike.
    streams = next(x for x in out.listings if "live_stream" in x.features)
    said = Scripted(reply=f"{streams.title} lists live streaming, {price_of(streams)}.")
    worded = build(said).invoke({"messages": convo})
    assert worded.text.startswith("None of the 3 listings shown before lists live streaming")
    assert f"{streams.title} lists live streaming" in worded.text
    streamed = "".join([c.get("text") or "" async for c in build(said).astream({"messages": convo})])
    assert streamed == worded.text
    kept = build(Scripted(reply="Okay."), assistant_search_when_none_has_it=False).invoke({"messages": convo})
    assert [x.id for x in kept.listings] == [x.id for x in shown.listings]  # off: the shown, and an offer
    assert "None of the 3 lists live streaming" in kept.text and "say so and I'll look for listings" in kept.text
    # When no other listing has it either, the shown stay and the answer says so.
    chimney = "need the chimney on our old house checked out, we're in Ferndale"
    night = [{"role": "user", "content": chimney}, {"role": "assistant", "content": "..."},
             {"role": "user", "content": "could any of those guys fly at night?"}]
    before = build(Scripted(reply="Okay.")).invoke({"messages": night[:1]})
    after = build(Scripted(reply="Okay.")).invoke({"messages": night})
    assert [x.id for x in after.listings] == [x.id for x in before.listings]
    assert "None of the 3 lists night flights. No other listing I found lists it either." in after.text


def test_one_listing_pointed_at_is_answered_for_and_other_options_are_the_next_ones(build: Build) -> None:
    first = "need the chimney on our old house checked out, we're in Ferndale"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    assert len(shown.listings) == 3
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "the 2nd one, do they carry insurance"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]
    second = shown.listings[1]
    assert f"About {second.title}: it {'is insured' if second.insured else 'does not say'}" in out.text
    convo[-1]["content"] = "could you show me some other options"
    more = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert more.listings and not {x.id for x in more.listings} & {x.id for x in shown.listings}
    assert more.interpreted == shown.interpreted  # the same search, past the listings shown


async def test_a_backed_model_answer_is_followed_by_what_was_asked(build: Build, shipped_engine: SearchEngine) -> None:
    answer = _backed_answer(shipped_engine)  # backed, but it says nothing of distances
    convo = {"messages": [*ASK["messages"], {"role": "assistant", "content": answer},
                          {"role": "user", "content": "how far away are those from me?"}]}
    out = build(Scripted(reply=answer)).invoke(convo)
    assert out.text.startswith(answer + " ") and out.flags == []
    for x in out.listings:
        assert f"{x.title} is based in {x.city}, {miles(x.distance_miles)} from Troy" in out.text
    streamed = "".join([c.get("text", "") async for c in build(FakeListChatModel(responses=[answer])).astream(convo)])
    assert streamed == out.text
    priced = {"messages": [*convo["messages"][:2], {"role": "user", "content": "what's the price on the first one?"}]}
    top = build(Scripted(reply=answer)).invoke(priced)  # about the first one: its price, the same listings
    assert [x.id for x in top.listings] == [x.id for x in out.listings]
    assert f"${top.listings[0].price_from_usd:,.0f} per {top.listings[0].price_unit}" in top.text
    third = {"messages": [*convo["messages"][:2], {"role": "user", "content": "what's the price on the third one?"}]}
    other = build(Scripted(reply=answer)).invoke(third)  # the model gave the first one's: the third's is added
    x = other.listings[2]
    assert f"${x.price_from_usd:,.0f} per {x.price_unit} ({x.title}" in other.text


def test_which_of_them_is_first_is_said_from_their_values_and_a_wrong_pick_is_removed(
    build: Build, shipped_engine: SearchEngine,
) -> None:
    answer = _backed_answer(shipped_engine)
    convo = {"messages": [*ASK["messages"], {"role": "assistant", "content": answer},
                          {"role": "user", "content": "which of those has the best reviews?"}]}
    shown = _expected(shipped_engine, ASK["messages"][0]["content"])
    rated = [x for x in shown if x.review_count]
    best = max(x.rating for x in rated)
    wrong = next(x for x in rated if x.rating < best)  # the shipped data has one: else the test proves nothing
    out = build(Scripted(reply=f"{wrong.operator} has the best reviews. {answer}")).invoke(convo)
    assert [x.id for x in out.listings] == [x.id for x in shown]  # the same ones, not a new search
    assert wrong.operator + " has the best reviews" not in out.text
    assert any(f.startswith("removed rank_rating") for f in out.flags)
    tops = [x.title for x in rated if x.rating == best]
    assert f"Of these 3, {tops[0]}" in out.text and f"{best:g}" in out.text
    # Answered, the question orders nothing later: the next one is still about the same three.
    later = {"messages": [*convo["messages"], {"role": "assistant", "content": out.text},
                          {"role": "user", "content": "and which one is cheapest?"}]}
    cheap = build(Scripted(reply="Okay.")).invoke(later)
    assert [x.id for x in cheap.listings] == [x.id for x in shown]
    low = min(x.price_from_usd for x in shown)
    assert "has the lowest starting price" in cheap.text or "have the lowest starting price" in cheap.text
    assert f"${low:,.0f}" in cheap.text


def test_when_nothing_serves_the_place_the_nearest_are_shown_as_such(build: Build) -> None:
    # Drone deliveries fly a few miles: none of the shipped ones lists Algonac, on the St. Clair River.
    model = Scripted(reply="Sure, SkyHigh Drones delivers there.")
    out = build(model).invoke({"messages": [{"role": "user", "content": "can a drone deliver a package in Algonac?"}]})
    assert model.seen == []  # an answer built from the data: the model could not tell serving from near
    assert out.listings and out.in_service_area is True and out.notice is not None and "Algonac" in out.notice
    miles = [x.distance_miles for x in out.listings]
    assert all(m is not None for m in miles) and miles == sorted(miles)  # type: ignore[type-var]
    assert all(x.category == "delivery" and x.distance_miles > x.service_radius_miles for x in out.listings)
    assert out.text.startswith("No delivery listing lists Algonac in its service area.")
    assert all(x.title in out.text for x in out.listings)
    # A radius the customer set is theirs: nothing is widened past it.
    near = build(model).invoke({"messages": [{"role": "user", "content": "drone delivery within 5 miles of Algonac"}]})
    assert near.listings == [] and near.text.startswith("I found no")


async def test_a_stream_sends_the_listings_before_the_text(build: Build, shipped_engine: SearchEngine) -> None:
    answer = _backed_answer(shipped_engine)
    chunks = [c async for c in build(FakeListChatModel(responses=[answer])).astream(ASK)]
    assert "listings" in chunks[0] and "text" not in chunks[0] and len(chunks[0]["listings"]) == 3
    assert "".join(c.get("text", "") for c in chunks) == answer and chunks[-1]["flags"] == []
    text_chunks = [c async for c in build(FakeListChatModel(responses=[answer]), view="text").astream(ASK)]
    assert all(isinstance(c, str) for c in text_chunks) and "".join(text_chunks).startswith(answer + "\n\n1. ")


class Runs(BaseCallbackHandler):
    """Records the runs it sees: (kind, name, run id, parent id, metadata)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, UUID, UUID | None, dict[str, Any]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       metadata: dict[str, Any] | None = None, **kw: Any) -> None:
        self.seen.append(("chain", str(kw.get("name")), run_id, parent_run_id, metadata or {}))

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                           **kw: Any) -> None:
        self.seen.append(("retriever", str(kw.get("name")), run_id, parent_run_id, {}))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kw: Any) -> None:
        self.seen.append(("model", str(kw.get("name")), run_id, parent_run_id, {}))


def test_one_run_with_the_retriever_then_the_model_inside(build: Build, shipped_engine: SearchEngine) -> None:
    runs = Runs()  # a callback handler (the usage meter is one) sees the model run; streamers do not
    build(Scripted(reply=_backed_answer(shipped_engine))).invoke(ASK, {"callbacks": [runs]})
    [root] = [r for r in runs.seen if r[3] is None]
    assert root[0] == "chain" and root[1] == "assistant" and root[4]["prompt"] == "chat"
    assert [r[0] for r in runs.seen if r[3] == root[2]] == ["retriever", "model"]


async def test_stream_events_show_the_listings_and_never_the_unchecked_draft(
    build: Build, shipped_engine: SearchEngine,
) -> None:
    invented = "SkyHigh Drones does it for $9."
    chain = build(FakeListChatModel(responses=[invented + " " + _backed_answer(shipped_engine)]))
    events = [e async for e in chain.astream_events(ASK, version="v2")]
    kinds = [e["event"] for e in events]
    assert "on_retriever_end" in kinds and not [k for k in kinds if k.startswith("on_chat_model")]
    assert invented not in str(events)  # the model's draft is not streamed; only the checked answer is
    streamed = "".join(e["data"]["chunk"].get("text", "") for e in events if e["event"] == "on_chain_stream")
    assert streamed == _backed_answer(shipped_engine)
    docs = next(e for e in events if e["event"] == "on_retriever_end")["data"]["output"]
    expected = [x.id for x in _expected(shipped_engine, ASK["messages"][0]["content"])]
    # the retriever brings a pool to choose the cited from; this ask's first three are the search's own
    assert [d.metadata["id"] for d in docs][: len(expected)] == expected
    assert all("price_from_usd" in d.metadata for d in docs)


def _writing(tmp_path: Any) -> Any:
    """A presets file where the embedded model writes when listings are cited (the shipped one: it does not)."""
    shipped = (ROOT / "data" / "presets.yaml").read_text()
    assert "answers_with_listings: false" in shipped
    path = tmp_path / "presets.yaml"
    path.write_text(shipped.replace("answers_with_listings: false", "answers_with_listings: true"))
    return path


async def test_the_embedded_model_is_not_asked_when_listings_are_cited(build: Build, shipped_engine: SearchEngine,
                                                                       tmp_path: Any) -> None:
    local = Scripted(reply="The customer referred to Troy. We can arrange a video call.", seen=[])
    local.name = "model:smollm2-135m-instruct"
    out = build(local).invoke(ASK)
    assert local.seen == [] and out.listings  # the listings' own answer, no model run
    assert out.text == found_text(condense([ASK["messages"][0]["content"]], shipped_engine.parser), out.listings,
                                  ASK["messages"][0]["content"])
    assert "".join([c.get("text") or "" async for c in build(local).astream(ASK)]) == out.text
    build(local, presets_file=_writing(tmp_path)).invoke(ASK)  # switched on: asked
    assert len(local.seen) == 1


def test_the_embedded_model_reads_its_own_short_prompt(build: Build, shipped_engine: SearchEngine,
                                                       tmp_path: Any) -> None:
    local = Scripted(reply="Okay.", seen=[])
    local.name = "model:smollm2-135m-instruct"
    build(local, presets_file=_writing(tmp_path)).invoke(ASK)
    [messages] = local.seen
    assert isinstance(messages[0], SystemMessage) and "recommends listing 1" in str(messages[0].content)
    assert messages[1:] == [HumanMessage("Customer: Who can inspect my roof in Troy?")]
    paid = Scripted(reply="Okay.", seen=[])
    assert build(paid).prompt_name == "chat"
    build(paid).invoke(ASK)
    system = str(paid.seen[0][0].content)
    assert "<listings note=" in system and "Customer:" not in str(paid.seen[0][-1].content)


class Down(FakeListChatModel):
    """A model that fails with `error` before answering (and counts its calls)."""

    error: type[Exception] = ValueError
    calls: int = 0

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        raise self.error("provider down")

    def _stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        raise self.error("provider down")
        yield  # a generator

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        raise self.error("provider down")
        yield  # an async generator


async def test_fallbacks_answer_on_every_path_and_only_for_the_listed_errors(
    build: Build, shipped_engine: SearchEngine,
) -> None:
    answer = _backed_answer(shipped_engine)
    down = Down(responses=["never"])
    chain = build(down.with_fallbacks([FakeListChatModel(responses=[answer] * 4)], exceptions_to_handle=(ValueError,)))
    assert chain.invoke(ASK).text == answer and (await chain.ainvoke(ASK)).text == answer
    assert "".join(c.get("text", "") for c in chain.stream(ASK)) == answer
    assert "".join([c.get("text", "") async for c in chain.astream(ASK)]) == answer
    assert down.calls == 4
    other = Down(responses=["never"], error=TypeError)
    chain = build(other.with_fallbacks([FakeListChatModel(responses=[answer])], exceptions_to_handle=(ValueError,)))
    with pytest.raises(TypeError):
        await chain.ainvoke(ASK)
    with pytest.raises(TypeError):
        _ = [p async for p in chain.astream(ASK)]


async def test_a_paid_models_fallback_never_answers_a_turn_without_listings(build: Build) -> None:
    """The embedded model backs up the paid one; with no listing to answer from it invents, so a question
    like "what is this site?" while the paid model is down gets the answer written for it, not the small
    model's; a question with listings still reaches it."""
    from chains.assistant.answer import GENERAL

    local = Scripted(reply="Our drones cost $5 and we fly to the Moon.", seen=[])
    local.name = "model:smollm2-135m-instruct"
    down = Down(responses=["never"])
    chain = build(down.with_fallbacks([local], exceptions_to_handle=(ValueError,)))
    general = {"messages": [{"role": "user", "content": "what exactly is this website for?"}]}
    out = await chain.ainvoke(general)
    assert out.text == GENERAL and out.listings == [] and local.seen == []
    assert any(f.startswith("answered without a model") for f in out.flags)
    assert chain.invoke(general).text == GENERAL
    assert "".join(c.get("text", "") for c in chain.stream(general)) == GENERAL
    assert "".join([c.get("text", "") async for c in chain.astream(general)]) == GENERAL
    text_chain = build(down.with_fallbacks([local], exceptions_to_handle=(ValueError,)), view="text")
    assert "".join([c async for c in text_chain.astream(general)]) == GENERAL
    assert local.seen == [] and down.calls == 5
    await chain.ainvoke(ASK)  # listings to answer from: the embedded model takes over (as the paid one's fallback)
    assert len(local.seen) == 1


def test_a_listing_that_addresses_the_model_is_never_cited(build: Build, poisoned_engine: SearchEngine) -> None:
    model = Scripted(reply="Okay.", seen=[])
    out = build(model, engine=poisoned_engine).invoke(ASK)
    poisoned = poisoned_engine.poisoned_id  # type: ignore[attr-defined]
    assert out.listings and poisoned not in [x.id for x in out.listings]
    assert any(poisoned in f and "withheld" in f for f in out.flags)
    assert "wire transfer" not in str(model.seen) and POISON[:40] not in str(model.seen)


def test_moderation_refuses_the_input_and_replaces_a_flagged_answer(build: Build, shipped_engine: SearchEngine) -> None:
    model = Scripted(reply="Okay.", seen=[])
    with pytest.raises(InputRejected) as refused:
        build(model).invoke({"messages": [{"role": "user", "content": "Can a drone drop drugs into the prison?"}]})
    assert refused.value.code == "moderation_flagged" and model.seen == []
    top = _expected(shipped_engine, ASK["messages"][0]["content"])[0]
    nasty = Scripted(reply=f"{top.operator} will find you and kill you.")
    out = build(nasty).invoke(ASK)
    assert "kill" not in out.text and any(f.startswith("moderation:") for f in out.flags)


async def test_a_stream_screens_the_turns_once_per_request(
    build: Build, shipped_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = chat_input.guard_messages

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(chat_input, "guard_messages", counting)
    chain = build(FakeListChatModel(responses=[_backed_answer(shipped_engine)] * 3))

    async def request(body: dict[str, Any]) -> None:
        """As server.py runs a stream: in the request's context, the pre-check, then the chain."""
        token = context.bind(RequestContext(request_id="req-00000001", route="assistant", endpoint="stream"))
        try:
            await chain.aprecheck(body)
            _ = [p async for p in chain.astream(body)]
        finally:
            context.reset(token)

    await asyncio.create_task(request(ASK), context=contextvars.copy_context())
    assert len(calls) == 1
    await chain.ainvoke(ASK)
    assert len(calls) == 2  # without a request context nothing is reused


def test_the_optional_llm_step_adds_what_the_words_missed(build: Build, shipped_engine: SearchEngine) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    hints = '{"category": "agriculture", "place": null, "max_price": null, "features": []}'
    turns = {"messages": [{"role": "user", "content": "my alpacas need counting, can someone help?"},
                          {"role": "assistant", "content": "Where?"},
                          {"role": "user", "content": "near Almont"}]}
    without = build(Scripted(reply="Okay.")).invoke(turns)
    assert without.interpreted is not None and without.interpreted.category is None  # the words alone: a place
    helper = GenericFakeChatModel(messages=iter([AIMessage(hints)]))
    chain = build(Scripted(reply="Okay."))
    chain.steps.hints_model = helper
    out = chain.invoke(turns)
    assert out.interpreted is not None and out.interpreted.llm and out.interpreted.category == "agriculture"
    assert out.listings and all(x.category == "agriculture" for x in out.listings)
    chain.steps.hints_model = GenericFakeChatModel(messages=iter([AIMessage("not json")]))
    assert chain.invoke(turns).interpreted.llm is False  # a failing step is skipped  # type: ignore[union-attr]


def test_a_job_size_asked_of_the_shown_listings_prices_the_job_and_holds_for_a_budget(build: Build) -> None:
    first = "hi, I run a small vineyard near Romeo and want to see which rows are stressed"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    acre = [x for x in shown.listings if x.price_unit == "acre"]
    assert acre  # else this proves nothing
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "how much would that cost for 40 acres?"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]
    assert out.text.startswith("For 40 acres:")  # what the job comes to, not the unit prices alone
    for x in acre:
        assert f"{x.title} from about ${x.price_from_usd * 40:,.0f} (${x.price_from_usd:,.0f} per acre)" in out.text
    # The size was said in a turn about the listings shown, not a search turn: a budget later still uses it.
    budget = min(x.price_from_usd for x in acre) * 40 + 50
    convo += [{"role": "assistant", "content": out.text},
              {"role": "user", "content": f"and if my budget is {budget:g}?"}]
    capped = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert f"For 40 acres, within your ${budget:,.0f}:" in capped.text
    over = [x for x in capped.listings if x.price_unit == "acre" and x.price_from_usd * 40 > budget]
    assert capped.listings and not over  # one comes within the budget for the job: those over it are left out



def test_a_question_the_listings_shown_do_not_answer_keeps_them_and_says_so(build: Build) -> None:
    first = "my kid wants to learn to fly drones, any classes near Plymouth?"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    assert shown.listings
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "he's 14, is that ok?"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]  # the turn searched nothing new
    assert out.text.startswith("Their listings do not say, so ask the operators")  # not the search's lead again
    convo[-1]["content"] = "what's the difference between them?"
    compared = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in compared.listings] == [x.id for x in shown.listings]
    for x in compared.listings:  # each one's own details, side by side
        assert f"{x.title}" in compared.text and f"from ${x.price_from_usd:,.0f} per {x.price_unit}" in compared.text
        assert f"serves within {x.service_radius_miles:g} miles" in compared.text


async def test_a_service_no_listing_offers_is_said_and_not_answered_with_other_listings(
        build: Build, tmp_path: Any) -> None:
    model = Scripted(reply="Sure, we do light shows for $99!")
    party = {"messages": [{"role": "user", "content": "need a drone show for our company party in Dearborn"}]}
    out = build(model).invoke(party)
    assert out.listings == [] and not model.seen  # decided from the data: nothing cited, no model asked
    assert out.text.startswith("No listing on SkyMarket offers drone light shows. Operators that serve Dearborn offer")
    # what the job is about names a category, but no job a listing does is asked: still nothing cited
    for about in ("we want a drone light show for our wedding in Novi",  # a wedding: videography
                  "can a drone pressure wash the siding on our office in Troy? the lift quotes are insane",  # facades
                  "the geese at our pond in Sterling Heights are everywhere, can a drone chase them off"):  # wildlife
        asked = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": about}]})
        assert asked.listings == [] and asked.text.startswith("No listing on SkyMarket offers"), about
        assert "Operators that serve" in asked.text
    # a job a listing does, asked as well (a video of it): said first, then the listings of what they can have
    wedding = {"messages": [{"role": "user", "content": "a light show for our wedding in Novi, and a video of it"}]}
    said = build(Scripted(reply="Okay.")).invoke(wedding)
    assert said.listings and all(x.category == "videography" for x in said.listings)
    assert said.text.startswith("No listing on SkyMarket offers drone light shows. Here are 3 videography listings")
    streamed = "".join([c.get("text") or "" async for c in build(Scripted(reply="Okay.")).astream(wedding)])
    assert streamed == said.text
    # asked of the listings shown: they stay, and that no listing offers it is the whole answer
    first = "need a wedding videographer in Novi"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    also = build(Scripted(reply="Okay.")).invoke({"messages": [
        {"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
        {"role": "user", "content": "can they also do a light show?"}]})
    assert [x.id for x in also.listings] == [x.id for x in shown.listings]
    assert also.text == "No listing on SkyMarket offers drone light shows."
    filmed = {"messages": [{"role": "user", "content": "film the drone light show at our festival in Wyandotte"}]}
    assert "No listing" not in build(Scripted(reply="Okay.")).invoke(filmed).text  # the show is the subject
    # An entry some listing mentions is not used: the shipped listings mention light displays (night flights).
    own = tmp_path / "unlisted.yaml"
    own.write_text("- name: light displays\n  pattern: '\\blight displays?\\b'\n")
    ask = {"messages": [{"role": "user", "content": "who could do light displays at night in Dearborn?"}]}
    assert "No listing" not in build(Scripted(reply="Okay."), assistant_unlisted_file=own).invoke(ask).text


def test_a_listing_pointed_at_by_a_superlative_with_a_question_is_answered_for_it(build: Build) -> None:
    first = "any drone instructors around brighton? my son is 16 and wants to learn fpv"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": first}]})
    assert len(shown.listings) == 3
    convo = [{"role": "user", "content": first}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "the one w the best reviews, do they teach on weekends"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]  # pointed at, not searched again
    best = max(shown.listings, key=lambda x: (x.rating, x.review_count))
    assert out.text.startswith(f"About {best.title}") and "weekend availability" in out.text
    # a question with its service's own word ("my roof") and a "?" mid-turn asks nothing new: about them too
    roof = "solar panel inspection on my house in south lyon, output dropped a lot this summer"
    shown = build(Scripted(reply="Okay.")).invoke({"messages": [{"role": "user", "content": roof}]})
    convo = [{"role": "user", "content": roof}, {"role": "assistant", "content": shown.text},
             {"role": "user", "content": "will somebody have to climb up there? my roof is really steep"}]
    out = build(Scripted(reply="Okay.")).invoke({"messages": convo})
    assert [x.id for x in out.listings] == [x.id for x in shown.listings]
    assert out.text.startswith("Their listings do not")


def test_thanks_after_a_request_is_acknowledged_not_greeted(build: Build) -> None:
    from chains.assistant.answer import ACKNOWLEDGED, GREETING

    local = Scripted(reply="Sure!", seen=[])
    local.name = "model:smollm2-135m-instruct"
    assert build(local).invoke({"messages": [{"role": "user", "content": "hello"}]}).text == GREETING
    for closing in ("thanks, that's all", "ok cool"):  # the first read as a search before, the second greeted
        convo = [*ASK["messages"], {"role": "assistant", "content": "Here are 3 inspection listings..."},
                 {"role": "user", "content": closing}]
        out = build(local).invoke({"messages": convo})
        assert out.text == ACKNOWLEDGED and out.listings == []
    assert local.seen == []


def _converse(build: Build, *turns: str) -> Any:
    """Each turn sent with the answers before it, as a client keeps the conversation; the last answer."""
    convo: list[dict[str, str]] = []
    out = None
    for turn in turns:
        convo.append({"role": "user", "content": turn})
        out = build(Scripted(reply="Okay.")).invoke({"messages": list(convo)})
        convo.append({"role": "assistant", "content": out.text})
    return out


def test_back_to_the_first_need_after_a_detour_searches_it_again_with_what_was_said_of_it(build: Build) -> None:
    out = _converse(build, "event security by drone for a street festival in Ferndale",
                    "totally separate thing, do any of u deliver food? like tacos",
                    "jk. ok the festival, we need someone who can fly at night")
    assert out.listings and all(x.category == "public_safety" for x in out.listings)
    assert out.interpreted.place.name == "Ferndale" and "night_ops" in out.interpreted.features
    sprayed = _converse(build, "need crop spraying on about 80 acres of soybeans near imlay city",
                        "also my wife wants a video of the farm for our anniversary, any videographers out here?",
                        "nice. ok but for the spraying, who's closest to me")
    assert sprayed.listings and all(x.category == "agriculture" for x in sprayed.listings)
    assert "For 80 acres" in sprayed.text  # the first need's size holds again


def test_which_to_pick_and_how_to_call_them_are_answered_from_the_listings(build: Build) -> None:
    shown = _converse(build, "roof inspection in Troy")
    pick = _converse(build, "roof inspection in Troy", "which one would you pick?")
    assert [x.id for x in pick.listings] == [x.id for x in shown.listings]
    assert " is the highest rated (" in pick.text or " is the closest to Troy (" in pick.text
    assert pick.text.endswith(f"{shown.listings[0].title} is the best match for what you asked.")
    call = _converse(build, "roof inspection in Troy", "phone number?")
    assert [x.id for x in call.listings] == [x.id for x in shown.listings]
    assert call.text.startswith("SkyMarket does not show operators' phone numbers")
    unit = _converse(build, "roof inspection in Troy", "is that per hour or for the whole thing?")
    assert all(f"per {x.price_unit}" in unit.text for x in unit.listings)


def test_questions_after_thanks_or_of_the_nearest_are_answered_about_the_listings_shown(build: Build) -> None:
    shown = _converse(build, "need real estate drone photos in Plymouth")
    later = _converse(build, "need real estate drone photos in Plymouth", "thank you!",
                      "actually one more q - do they edit the photos too?")
    assert [x.id for x in later.listings] == [x.id for x in shown.listings]  # no new search after the thanks
    assert not later.text.startswith("Here are")
    first = "can a drone deliver a part to my job site in Lapeer? its like 3 lbs"
    nearest = _converse(build, first)
    assert nearest.text.startswith("No delivery listing lists Lapeer")
    fast = _converse(build, first, "how fast")
    assert [x.id for x in fast.listings] == [x.id for x in nearest.listings]
    assert not fast.text.startswith("No delivery listing lists Lapeer")  # answered, not the same text again


def test_how_soon_is_quoted_from_their_own_descriptions(build: Build) -> None:
    out = _converse(build, "solar panel inspection in Ann Arbor", "how long until I get the report")
    quoted = [x for x in out.listings if f"{x.title} writes: " in out.text]
    assert quoted  # at least one of them says how soon
    for x in quoted:  # the sentence quoted is the listing's own
        said = out.text.split(f"{x.title} writes: \"", 1)[1].split("\"", 1)[0]
        assert said in x.description



def test_other_listings_shown_instead_all_have_what_was_asked(build: Build) -> None:
    first = "I'm with a township fire department in Monroe County. Looking for drone support with thermal for search"
    shown = _converse(build, first)
    assert shown.listings and not all("emergency_callout" in x.features for x in shown.listings)
    out = _converse(build, first, "are they available 24/7?")
    assert out.text.startswith("None of the 3 listings shown before lists emergency call-outs")
    assert out.listings and all("emergency_callout" in x.features for x in out.listings)
    assert not {x.id for x in out.listings} & {x.id for x in shown.listings}
    assert "say so and I'll look for listings" not in out.text


def test_a_question_naming_the_medium_of_the_service_shown_keeps_the_listings(build: Build) -> None:
    shown = _converse(build, "real estate photos in Troy")
    back = _converse(build, "real estate photos in Troy", "how long until I get the photos back")
    assert [x.id for x in back.listings] == [x.id for x in shown.listings]
    assert not back.text.startswith("Here are")  # the question's answer, not the list again


def test_an_answer_the_same_as_the_last_says_so(build: Build) -> None:
    local = Scripted(reply="Okay.", seen=[])  # the default setup: the embedded model first, the data answers
    local.name = "model:smollm2-135m-instruct"
    chain = build(local)
    first = {"messages": [{"role": "user", "content": "roof inspection in Troy"}]}
    shown = chain.invoke(first)
    again = chain.invoke({"messages": [*first["messages"], {"role": "assistant", "content": shown.text},
                                       {"role": "user", "content": "roof inspection in Troy please"}]})
    assert again.text == f"{SAME} {shown.text}"
    assert [x.id for x in again.listings] == [x.id for x in shown.listings]


def test_a_feature_taken_back_searches_again_without_it(build: Build) -> None:
    first = "do u have anyone w a thermal drone that can fly at night? want a heat loss scan of my house in livonia"
    shown = _converse(build, first)
    out = _converse(build, first, "the energy guy said it just needs to be cold. so ok doesnt need to be at night")
    assert out.interpreted is not None and "night_ops" not in out.interpreted.features
    assert out.text.startswith("Here are")  # a new search, not an answer about the listings shown
    assert [x.id for x in out.listings] != [x.id for x in shown.listings]
