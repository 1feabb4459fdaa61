"""What every moderator answers (`Verdict`, one per text or `combine`d for several), the `Moderator` protocol,
and the moderator that lets everything through (DESCRIBE_MODERATION=off)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["LOCAL_UNAVAILABLE", "Moderator", "NoModerator", "Verdict", "combine"]

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
