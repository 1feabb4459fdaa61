"""`X-Prompt-Version` on every response of a prompt-driven route, so a person comparing outputs (in the
playground or with curl) knows which prompt file produced them.

LangServe's `invoke` response has no room for it (its `metadata` is the run id only); the chain's own run
metadata (`prompt`, `prompt_version`, chains/chat.py) does show in `stream_log` and `stream_events`, which
the playgrounds read. The header covers every endpoint, streams included: it is read when the request
starts, the same moment the chain reads its prompt file (an edit takes effect on the next request).

    X-Prompt-Version: chat@3f2a9c0d1e2b
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chains.prompting import PromptStore
from errors import PromptError
from settings import Settings

__all__ = ["HEADER", "PromptVersionHeader", "live_prompt_routes", "prompt_routes"]

HEADER = "X-Prompt-Version"


def prompt_routes(settings: Settings) -> dict[str, str]:
    """Route prefix -> the prompt file its chain's first model reads (from the presets: without a key the
    embedded model answers, with the chat preset's own `local:` prompt); search only with its LLM step on."""
    chat = settings.preset("chat").prompt_for(local=not settings.has_openai)
    routes = {"/chat/": chat, "/assistant/": chat, "/describe/": settings.preset("describe").prompt}
    if settings.search_llm_parser:
        routes["/search/"] = settings.preset("search").prompt
    return routes


def live_prompt_routes(settings: Settings) -> Callable[[], dict[str, str]]:
    """`prompt_routes` of the presets in force (worked out again only after an edit of the presets file)."""
    last: list[Any] = [None, {}]

    def routes() -> dict[str, str]:
        presets = settings.presets
        if presets is not last[0]:
            last[:] = [presets, prompt_routes(settings)]
        out: dict[str, str] = last[1]
        return out

    return routes


class PromptVersionHeader:
    """Pure ASGI middleware (streams pass through untouched) adding `X-Prompt-Version: <name>@<hash>`."""

    def __init__(self, app: ASGIApp, *, prompts: PromptStore,
                 routes: dict[str, str] | Callable[[], dict[str, str]]) -> None:
        """Args:
        app: the wrapped application.
        prompts: the app's prompt store (a stat per request; a parse only after an edit).
        routes: `prompt_routes(settings)`, or `live_prompt_routes(settings)` to follow preset edits.
        """
        self.app = app
        self.prompts = prompts
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        routes = self.routes() if callable(self.routes) else self.routes
        name = next((n for prefix, n in routes.items() if path.startswith(prefix)), None)
        if name is None:
            await self.app(scope, receive, send)
            return
        try:
            value = f"{name}@{self.prompts.get(name).version}"
        except PromptError:  # a broken prompt file fails the request itself, with its own clear error
            value = f"{name}@invalid"

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = value
            await send(message)

        await self.app(scope, receive, send_with_header)
