"""The assistant: a customer's conversation -> an answer grounded in the listings, at /assistant and /chat.

    conversation.py  the whole conversation as one search request (deterministic)
    listings.py      listings screened by the guard before they enter a prompt
    grounding.py     the answer's claims checked against the cited listings (the shared chains/claims)
    answer.py        answers and cards built from the listings alone
    schema.py        AssistantOutput
    steps.py         the steps: read, search, found, turn (prompt per model), review, retry, settle, output
    stream.py        one stream's state
    chain.py         the runnable: read -> condense -> retrieve -> prompt -> model -> ground

`build_assistant_chain(view="object")` is /assistant (text, listings, in_service_area, notice, interpreted);
`view="text"` is /chat: the same answer as a string, the cited listings as cards after the text.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from langchain_core.runnables import Runnable

from chains.assistant.chain import AssistantChain
from chains.assistant.schema import AssistantOutput
from chains.assistant.steps import Steps, View
from chains.chat_input import make_chat_input
from chains.claims import Catalog
from chains.guard import GuardConfig
from chains.moderation import Moderator, build_moderator
from chains.prompting import PromptStore
from retrieval.engine import SearchEngine
from retrieval.retriever import ListingRetriever
from settings import Preset, Settings

__all__ = ["AssistantChain", "AssistantOutput", "IndexCatalog", "View", "build_assistant_chain"]


class IndexCatalog:
    """The names the listings and the gazetteer know (`chains.claims.Catalog`), rebuilt when the index reloads.

    Args:
        engine: the search engine; until its index has loaded, there is no catalogue (None).
    """

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine
        self._built: tuple[int, Catalog] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Catalog | None:
        if not self.engine.loaded:  # never load the index for a catalogue
            return None
        index = self.engine.index
        built = self._built
        if built is None or built[0] != index.version:
            with self._lock:
                g = self.engine.gazetteer
                places = [p.name for p in g.places] + [o.name for o in g.outside]
                built = (index.version, Catalog.from_listings(index.listings, places=places))
                self._built = built
        return built[1]


def build_assistant_chain(
    *,
    settings: Settings,
    model: Runnable,
    engine: SearchEngine,
    prompts: PromptStore,
    view: View = "object",
    moderator: Moderator | None = None,
    catalog: Callable[[], Catalog | None] | None = None,
    hints_model: Runnable | None = None,
    today: Callable[[], dt.date] = dt.date.today,
    evaluate_prompt: bool = False,
) -> AssistantChain:
    """Builds the assistant runnable.

    Args:
        settings: the service's settings (the chat preset, ASSISTANT_*, CHAT_* limits, guard, claims file).
        model: the chat model with its fallbacks (`chains.models.build_chat_model(use_case="chat", ...)`).
        engine: the search engine the retriever asks.
        prompts: the prompt store; the preset's prompts are read on every call (edits apply at once).
        view: "object" for /assistant, "text" for /chat.
        moderator: checks the customer's turns and the answer; `build_moderator(settings)` when None.
        catalog: the names the data knows; an `IndexCatalog` of `engine` when None.
        hints_model: the model of the optional LLM step that reads the conversation (the `search` use case's,
            built when ASSISTANT_LLM_CONDENSE is on and a key is set); None: the words alone decide.
        today: the date shown to the model (a seam for tests).
        evaluate_prompt: the model is asked whenever listings are cited, whatever the preset's
            `answers_with_listings` says (`skymarket prompts eval`: the prompt is what is measured).
    """

    def preset() -> Preset:
        chat = settings.preset("chat")
        if evaluate_prompt and chat.local is not None and not chat.local.answers_with_listings:
            return chat.model_copy(update={"local": chat.local.model_copy(update={"answers_with_listings": True})})
        return chat

    local = settings.local_model_name if settings.local_model_enabled or not settings.has_openai else None
    steps = Steps(
        model=model, retriever=ListingRetriever(engine=engine, k=settings.assistant_listings), prompts=prompts,
        preset=preset, guard=GuardConfig.from_settings(settings),
        moderator=moderator or build_moderator(settings), rules_file=settings.describe_claims_file,
        catalog=catalog or IndexCatalog(engine), view=view, local_model=local, today=today,
        k=settings.assistant_listings, min_words=settings.assistant_min_words,
        max_attempts=settings.assistant_max_attempts, hints_model=hints_model,
        hints_prompt=settings.preset("search").prompt, hints_timeout_s=settings.assistant_llm_timeout_s,
        search_when_none_has_it=settings.assistant_search_when_none_has_it,
        unlisted_file=settings.assistant_unlisted_file,
    )
    chain = AssistantChain(
        steps=steps, input_type=make_chat_input(max_messages=settings.chat_max_messages,
                                                max_chars=settings.chat_max_message_chars),
    )
    return chain

