"""Moderation of what customers and operators send and what the models write (/describe, the assistant):
OpenAI's endpoint with a key, an honest local check without.

    build_moderator(settings) -> OpenAIModerator  (DESCRIBE_MODERATION=auto with a key, or =openai)
                               -> LocalModerator   (auto without a key, or =local; data/moderation.yaml)
                               -> NoModerator      (=off)

`OpenAIModerator` calls `omni-moderation-latest` through the official client (honouring OPENAI_BASE_URL);
when that call fails it falls back to the local check and says so in the verdict's `source`, so a provider
outage never lets text through unchecked. Verdicts are memoised per text (a stream's pre-check and the
chain's own check then cost one call).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import openai
import yaml

from chains.breaker import BreakerRegistry, CircuitBreaker
from chains.guard.fold import fold
from chains.guard.normalize import normalize
from errors import ConfigError
from livefiles import live_file
from settings import Settings

__all__ = ["LocalModerator", "Memo", "Moderator", "NoModerator", "OpenAIModerator", "Verdict", "build_moderator"]

log = logging.getLogger("skymarket.moderation")

LOCAL_UNAVAILABLE = "local (OpenAI moderation unavailable)"


@dataclass(frozen=True)
class Verdict:
    """Whether texts are flagged, in which categories, and which check said so."""

    flagged: bool
    categories: tuple[str, ...] = ()
    source: str = "local"


class Moderator(Protocol):
    name: str

    def check(self, texts: list[str]) -> Verdict: ...

    async def acheck(self, texts: list[str]) -> Verdict: ...


class NoModerator:
    """Moderation switched off (DESCRIBE_MODERATION=off): every text passes."""

    name = "off"

    def check(self, texts: list[str]) -> Verdict:
        return Verdict(False, (), "off")

    async def acheck(self, texts: list[str]) -> Verdict:
        return self.check(texts)


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
        cats: list[str] = []
        for text in texts:
            folded = fold(normalize(text).text)
            cats.extend(c for c, patterns in self.rules.items() if any(p.search(folded) for p in patterns))
        unique = tuple(dict.fromkeys(cats))
        return Verdict(bool(unique), unique, "local")

    async def acheck(self, texts: list[str]) -> Verdict:
        return self.check(texts)


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
    _aclients: dict[int, openai.AsyncOpenAI] = field(default_factory=dict, repr=False)

    def _kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.base_url, "timeout": self.timeout_s,
                "max_retries": self.max_retries}

    def _verdict(self, raw: Any) -> Verdict:
        # The raw JSON, not the SDK's typed objects: building those cost ~30 ms of CPU per call here.
        results = raw.http_response.json().get("results") or []
        cats = [name for r in results for name, on in (r.get("categories") or {}).items() if on]
        flagged = any(r.get("flagged") for r in results)
        return Verdict(flagged, tuple(dict.fromkeys(cats)), "openai")

    def _local(self, texts: list[str]) -> Verdict:
        v = self.fallback.check(texts)
        return Verdict(v.flagged, v.categories, LOCAL_UNAVAILABLE)

    def _failed(self, exc: BaseException, texts: list[str]) -> Verdict:
        if self.breaker is not None:
            self.breaker.failure()
        log.warning("moderation call failed (%s); using the local check", type(exc).__name__)
        return self._local(texts)

    def _answered(self, verdict: Verdict) -> Verdict:
        if self.breaker is not None:
            self.breaker.success()
        return verdict

    def _open(self) -> bool:
        """While the endpoint keeps failing (its breaker open), no call is made: a failing endpoint would
        otherwise cost every request its failed calls (two per chat answer) and a warning each."""
        return self.breaker is not None and not self.breaker.allow()

    def check(self, texts: list[str]) -> Verdict:
        if self._open():
            return self._local(texts)
        if self._client is None:
            self._client = openai.OpenAI(**self._kwargs())
        try:
            verdict = self._verdict(self._client.moderations.with_raw_response.create(model=self.model, input=texts))
        except openai.OpenAIError as exc:
            return self._failed(exc, texts)
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()  # not the endpoint's failure: free a half-open probe's slot
            raise
        return self._answered(verdict)

    async def acheck(self, texts: list[str]) -> Verdict:
        if self._open():
            return self._local(texts)
        # An async client's connections belong to one event loop: one client per loop.
        loop = id(asyncio.get_running_loop())
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = openai.AsyncOpenAI(**self._kwargs())
        try:
            verdict = self._verdict(await client.moderations.with_raw_response.create(model=self.model, input=texts))
        except openai.OpenAIError as exc:
            return self._failed(exc, texts)
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()  # not the endpoint's failure: free a half-open probe's slot
            raise
        return self._answered(verdict)


class Memo:
    """Remembers the last `size` verdicts by text, so the same texts are never sent twice in a row."""

    def __init__(self, inner: Moderator, size: int = 2048) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._seen: OrderedDict[str, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(texts: list[str]) -> str:
        return hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()

    def _get(self, key: str) -> Verdict | None:
        with self._lock:
            v = self._seen.get(key)
            if v is not None:
                self._seen.move_to_end(key)
            return v

    def _put(self, key: str, v: Verdict) -> Verdict:
        if v.source == LOCAL_UNAVAILABLE:
            return v  # ask the provider again next time
        with self._lock:
            self._seen[key] = v
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return v

    def check(self, texts: list[str]) -> Verdict:
        key = self._key(texts)
        return self._get(key) or self._put(key, self.inner.check(texts))

    async def acheck(self, texts: list[str]) -> Verdict:
        key = self._key(texts)
        return self._get(key) or self._put(key, await self.inner.acheck(texts))


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
