"""Moderation of what customers and operators send and what the models write (/describe, the assistant):
OpenAI's endpoint with a key, an honest local check without.

    build_moderator(settings) -> OpenAIModerator  (DESCRIBE_MODERATION=auto with a key, or =openai)
                               -> LocalModerator   (auto without a key, or =local; data/moderation.yaml)
                               -> NoModerator      (=off)

    verdict.py  Verdict, combine, the Moderator protocol, NoModerator
    local.py    LocalModerator: data/moderation.yaml
    remote.py   OpenAIModerator: the endpoint; the local check when a call fails, so a provider outage
                never lets text through unchecked
    memo.py     Memo: verdicts kept per text (a conversation's earlier turns, a stream's pre-check and the
                chain's own check cost no new call; only the texts not seen yet are sent, in one request)
"""

from __future__ import annotations

from chains.breaker import BreakerRegistry
from chains.moderation.local import LocalModerator, parse_rules
from chains.moderation.memo import Memo
from chains.moderation.remote import OpenAIModerator
from chains.moderation.verdict import LOCAL_UNAVAILABLE, Moderator, NoModerator, Verdict, combine
from errors import ConfigError
from settings import Settings

__all__ = [
    "LOCAL_UNAVAILABLE", "LocalModerator", "Memo", "Moderator", "NoModerator", "OpenAIModerator", "Verdict",
    "build_moderator", "combine", "parse_rules",
]


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
