"""OpenAI's moderation endpoint (`omni-moderation-latest`, honouring OPENAI_BASE_URL): through the official
client from sync code, and from the event loop with one plain aiohttp POST (the SDK's request machinery cost
~1 ms of CPU per call there, ~5x the HTTP itself: `bench/moderation_cost.py`). A failed call falls back to the
local check, said in the verdict's `source`; a circuit breaker stops calling an endpoint that keeps failing."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import openai

from chains.breaker import CircuitBreaker
from chains.moderation.local import LocalModerator
from chains.moderation.verdict import LOCAL_UNAVAILABLE, Verdict, combine

__all__ = ["OpenAIModerator"]

log = logging.getLogger("skymarket.moderation")

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})  # what the OpenAI SDK retries, too


class _Unanswered(Exception):
    """The endpoint answered with an error status, or with a body that is not its answer."""


@dataclass
class OpenAIModerator:
    """The OpenAI moderation endpoint; the local check when it fails."""

    api_key: str
    base_url: str | None
    model: str
    timeout_s: float
    max_retries: int
    fallback: LocalModerator
    breaker: CircuitBreaker | None = None  # open after repeated failures: the local check answers at once
    name: str = "openai"
    _client: openai.OpenAI | None = field(default=None, repr=False)
    # One aiohttp session per event loop (a session's connections belong to the loop that opened them).
    _sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = field(
        default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/") + "/moderations"

    @cached_property
    def proxy(self) -> str | None:
        """The proxy the environment names for the endpoint (HTTPS_PROXY, NO_PROXY...), as the SDK's client
        reads it: once. (aiohttp's `trust_env` reads the environment again on every request: ~0.5 ms.)"""
        parts = urlsplit(self.url)
        bypass = parts.hostname is None or bool(proxy_bypass(parts.hostname))
        return None if bypass else getproxies().get(parts.scheme)

    def _kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.base_url, "timeout": self.timeout_s,
                "max_retries": self.max_retries}

    def _verdicts(self, body: Any, texts: list[str]) -> list[Verdict]:
        # The raw JSON, not the SDK's typed objects: building those cost ~30 ms of CPU per call here.
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(texts):
            raise _Unanswered("the moderation answer does not have one result per input")
        out = []
        for r in results:
            cats = (r.get("categories") or {}) if isinstance(r, dict) else {}
            names = tuple(name for name, on in cats.items() if on)
            out.append(Verdict(bool(r.get("flagged")) if isinstance(r, dict) else False, names, "openai"))
        return out

    def _local(self, texts: list[str]) -> list[Verdict]:
        return [Verdict(v.flagged, v.categories, LOCAL_UNAVAILABLE) for v in self.fallback.check_each(texts)]

    def _failed(self, exc: BaseException, texts: list[str]) -> list[Verdict]:
        if self.breaker is not None:
            self.breaker.failure()
        log.warning("moderation call failed (%s); using the local check", type(exc).__name__)
        return self._local(texts)

    def _answered(self, verdicts: list[Verdict]) -> list[Verdict]:
        if self.breaker is not None:
            self.breaker.success()
        return verdicts

    def _open(self) -> bool:
        """While the endpoint keeps failing (its breaker open), no call is made: a failing endpoint would
        otherwise cost every request its failed calls (two per chat answer) and a warning each."""
        return self.breaker is not None and not self.breaker.allow()

    def check(self, texts: list[str]) -> Verdict:
        return combine(self.check_each(texts), "openai")

    async def acheck(self, texts: list[str]) -> Verdict:
        return combine(await self.acheck_each(texts), "openai")

    def check_each(self, texts: list[str]) -> list[Verdict]:
        if not texts:
            return []
        if self._open():
            return self._local(texts)
        if self._client is None:
            self._client = openai.OpenAI(**self._kwargs())
        try:
            raw = self._client.moderations.with_raw_response.create(model=self.model, input=texts)
            verdicts = self._verdicts(raw.http_response.json(), texts)
        except (openai.OpenAIError, _Unanswered, ValueError) as exc:
            return self._failed(exc, texts)
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()  # not the endpoint's failure: free a half-open probe's slot
            raise
        return self._answered(verdicts)

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        if not texts:
            return []
        if self._open():
            return self._local(texts)
        try:
            verdicts = self._verdicts(await self._apost(texts), texts)
        except (TimeoutError, aiohttp.ClientError, _Unanswered, ValueError) as exc:
            return self._failed(exc, texts)
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()  # not the endpoint's failure: free a half-open probe's slot
            raise
        return self._answered(verdicts)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        held = self._sessions.get(id(loop))
        if held is None or held[0] is not loop or held[1].closed:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                            headers={"Authorization": f"Bearer {self.api_key}"})
            self._sessions[id(loop)] = held = (loop, session)
        return held[1]

    async def _apost(self, texts: list[str]) -> Any:
        """POST /moderations; retried as the SDK retries (connection errors, 408, 409, 429, 5xx), with its
        backoff (0.5 s doubling, jittered, at most 8 s; a shorter Retry-After is honoured)."""
        url, proxy = self.url, self.proxy
        payload = {"model": self.model, "input": texts}
        attempt = 0
        while True:
            wait: float | None = None
            try:
                async with self._session().post(url, json=payload, proxy=proxy) as r:
                    if r.status < 400:
                        return await r.json(content_type=None)
                    if r.status not in _RETRY_STATUSES or attempt >= self.max_retries:
                        raise _Unanswered(f"HTTP {r.status}")
                    wait = _retry_after(r.headers.get("retry-after"))
            except (TimeoutError, aiohttp.ClientConnectionError):
                if attempt >= self.max_retries:
                    raise
            await asyncio.sleep(wait if wait is not None else min(0.5 * 2**attempt, 8.0) * random.uniform(0.75, 1))
            attempt += 1

    async def aclose(self) -> None:
        """Closes this event loop's session (the app's lifespan calls it on the serving loop)."""
        held = self._sessions.pop(id(asyncio.get_running_loop()), None)
        if held is not None:
            await held[1].close()


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 60 else None
