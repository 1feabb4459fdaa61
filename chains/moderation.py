"""Moderation of what customers and operators send and what the models write (/describe, the assistant):
OpenAI's endpoint with a key, an honest local check without.

    build_moderator(settings) -> OpenAIModerator  (DESCRIBE_MODERATION=auto with a key, or =openai)
                               -> LocalModerator   (auto without a key, or =local; data/moderation.yaml)
                               -> NoModerator      (=off)

`OpenAIModerator` calls `omni-moderation-latest` (honouring OPENAI_BASE_URL): through the official client
from sync code, and from the event loop with one plain aiohttp POST (the SDK's request machinery cost ~1 ms
of CPU per call there, ~5x the HTTP itself: `bench/moderation_cost.py`). When a call fails it falls back to
the local check and says so in the verdict's `source`, so a provider outage never lets text through
unchecked. Verdicts are memoised per text: a conversation's earlier turns, a stream's pre-check and the
chain's own check cost no new call; only the texts not seen yet are sent, in one request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import openai
import yaml

from chains.breaker import BreakerRegistry, CircuitBreaker
from chains.guard.fold import fold
from chains.guard.normalize import normalize
from errors import ConfigError
from livefiles import live_file
from settings import Settings

__all__ = [
    "LocalModerator", "Memo", "Moderator", "NoModerator", "OpenAIModerator", "Verdict", "build_moderator", "combine",
]

log = logging.getLogger("skymarket.moderation")

LOCAL_UNAVAILABLE = "local (OpenAI moderation unavailable)"


@dataclass(frozen=True)
class Verdict:
    """Whether texts are flagged, in which categories, and which check said so."""

    flagged: bool
    categories: tuple[str, ...] = ()
    source: str = "local"


def combine(verdicts: Sequence[Verdict], source: str = "local") -> Verdict:
    """One verdict for several texts: flagged if any is, every category once; the source says the local check
    stood in for the provider if it did for any text (`source` when there is no verdict)."""
    cats = tuple(dict.fromkeys(c for v in verdicts for c in v.categories))
    sources = [v.source for v in verdicts]
    chosen = LOCAL_UNAVAILABLE if LOCAL_UNAVAILABLE in sources else (sources[0] if sources else source)
    return Verdict(any(v.flagged for v in verdicts), cats, chosen)


class Moderator(Protocol):
    name: str

    def check(self, texts: list[str]) -> Verdict: ...

    async def acheck(self, texts: list[str]) -> Verdict: ...

    def check_each(self, texts: list[str]) -> list[Verdict]: ...

    async def acheck_each(self, texts: list[str]) -> list[Verdict]: ...

    async def aclose(self) -> None: ...


class NoModerator:
    """Moderation switched off (DESCRIBE_MODERATION=off): every text passes."""

    name = "off"

    def check(self, texts: list[str]) -> Verdict:
        return Verdict(False, (), "off")

    async def acheck(self, texts: list[str]) -> Verdict:
        return self.check(texts)

    def check_each(self, texts: list[str]) -> list[Verdict]:
        return [Verdict(False, (), "off") for _ in texts]

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        return self.check_each(texts)

    async def aclose(self) -> None:
        return None


class LocalModerator:
    """Regex categories from `data/moderation.yaml` (its header says what they cover and what they miss)."""

    name = "local"

    def __init__(self, rules_file: Path) -> None:
        self.rules_file = rules_file
        try:
            self.rules  # noqa: B018 -- the first read: a bad file is a start-time error
        except OSError as exc:
            raise ConfigError(f"cannot load moderation rules {rules_file}: {exc}") from None

    @property
    def rules(self) -> dict[str, list[re.Pattern[str]]]:
        """The categories' patterns in force: the file is re-read after an edit; a bad edit keeps the last good."""
        return live_file(self.rules_file, lambda text: parse_rules(text, self.rules_file), kind="moderation").get()

    def check(self, texts: list[str]) -> Verdict:
        return combine(self.check_each(texts))

    async def acheck(self, texts: list[str]) -> Verdict:
        return self.check(texts)

    def check_each(self, texts: list[str]) -> list[Verdict]:
        rules = self.rules
        out: list[Verdict] = []
        for text in texts:
            folded = fold(normalize(text).text)
            cats = tuple(c for c, patterns in rules.items() if any(p.search(folded) for p in patterns))
            out.append(Verdict(bool(cats), cats, "local"))
        return out

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        return self.check_each(texts)

    async def aclose(self) -> None:
        return None


def parse_rules(text: str, path: Path) -> dict[str, list[re.Pattern[str]]]:
    """Validates `data/moderation.yaml`'s text: `categories: {name: [regex, ...]}`."""
    try:
        raw = yaml.safe_load(text) or {}
        return {
            str(cat): [re.compile(p, re.IGNORECASE) for p in patterns]
            for cat, patterns in (raw.get("categories") or {}).items()
        }
    except (yaml.YAMLError, re.error, AttributeError, TypeError) as exc:
        raise ConfigError(f"cannot load moderation rules {path}: {exc}") from None


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
    _proxy: tuple[str | None] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/") + "/moderations"

    def proxy(self) -> str | None:
        """The proxy the environment names for the endpoint (HTTPS_PROXY, NO_PROXY...), as the SDK's client
        reads it: once. (aiohttp's `trust_env` reads the environment again on every request: ~0.5 ms.)"""
        if self._proxy is None:
            parts = urlsplit(self.url)
            bypass = parts.hostname is None or bool(proxy_bypass(parts.hostname))
            self._proxy = (None if bypass else getproxies().get(parts.scheme),)
        return self._proxy[0]

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
        url, proxy = self.url, self.proxy()
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


class Memo:
    """Remembers the last `size` verdicts per text: a text seen before (a conversation's earlier turns, a
    stream's pre-check) costs no new call, and only the unseen texts of a check are sent, in one call."""

    def __init__(self, inner: Moderator, size: int = 4096) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._seen: OrderedDict[str, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _lookup(self, texts: list[str]) -> tuple[list[str], list[Verdict | None], list[str]]:
        keys = [self._key(t) for t in texts]
        with self._lock:
            known = [self._seen.get(k) for k in keys]
            for k, v in zip(keys, known, strict=True):
                if v is not None:
                    self._seen.move_to_end(k)
        missing = list(dict.fromkeys(t for t, v in zip(texts, known, strict=True) if v is None))
        return keys, known, missing

    def _store(self, texts: list[str], keys: list[str], known: list[Verdict | None], missing: list[str],
               fresh: list[Verdict]) -> list[Verdict]:
        got = dict(zip(missing, fresh, strict=True))
        with self._lock:
            for text, v in got.items():
                if v.source != LOCAL_UNAVAILABLE:  # ask the provider again next time
                    self._seen[self._key(text)] = v
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return [v if v is not None else got[t] for t, v in zip(texts, known, strict=True)]

    def check_each(self, texts: list[str]) -> list[Verdict]:
        keys, known, missing = self._lookup(texts)
        fresh = self.inner.check_each(missing) if missing else []
        return self._store(texts, keys, known, missing, fresh)

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        keys, known, missing = self._lookup(texts)
        fresh = await self.inner.acheck_each(missing) if missing else []
        return self._store(texts, keys, known, missing, fresh)

    def check(self, texts: list[str]) -> Verdict:
        return combine(self.check_each(texts), self.name)

    async def acheck(self, texts: list[str]) -> Verdict:
        return combine(await self.acheck_each(texts), self.name)

    async def aclose(self) -> None:
        await self.inner.aclose()


def build_moderator(settings: Settings, *, breakers: BreakerRegistry | None = None) -> Moderator:
    """The moderator the settings ask for (nothing connects here).

    Args:
        settings: DESCRIBE_MODERATION, MODERATION_MODEL, MODERATION_RULES_FILE, the OpenAI key and base URL.
        breakers: the app's circuit breakers: the endpoint gets one, named `moderation:<model>` (in /readyz).

    Raises:
        ConfigError: DESCRIBE_MODERATION=openai without a key, or unreadable local rules.
    """
    mode = settings.describe_moderation
    if mode == "off":
        return NoModerator()
    local = LocalModerator(settings.moderation_rules_file)
    if mode == "local" or (mode == "auto" and settings.openai_api_key is None):
        return Memo(local)
    if settings.openai_api_key is None:
        raise ConfigError("DESCRIBE_MODERATION=openai needs OPENAI_API_KEY")
    return Memo(OpenAIModerator(
        api_key=settings.openai_api_key.get_secret_value(), base_url=settings.openai_base_url,
        model=settings.moderation_model, timeout_s=settings.request_timeout_s,
        max_retries=settings.ai_max_retries, fallback=local,
        breaker=breakers.get(f"moderation:{settings.moderation_model}") if breakers is not None else None,
    ))
