"""The guard's types: the `/guard` contract (`GuardInput` -> `GuardOutput`) and its tunables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chains.schemas import InputModel

__all__ = ["Action", "GuardConfig", "GuardInput", "GuardOutput", "Source"]

Source = Literal["chat", "search", "describe", "listing"]
Action = Literal["allow", "flag", "block"]


class GuardInput(InputModel):
    """Text to screen and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="untrusted text: a chat message, search query, describe input or listing")
    source: Source = Field(default="chat", description="where the text comes from")


class GuardOutput(BaseModel):
    """The verdict on one text."""

    text: str = Field(description="sanitized text: normalised, invisible characters removed, PII redacted")
    action: Action = Field(description="allow, flag (let through fenced as data, audited) or block (refuse)")
    score: float = Field(ge=0.0, le=1.0, description="how likely the text is an injection or jailbreak")
    reasons: list[str] = Field(default_factory=list, description="stable ids of the rules that fired")
    redactions: list[str] = Field(default_factory=list, description="kinds of PII redacted, one per match")


@dataclass(frozen=True)
class GuardConfig:
    """The guard's tunables; `from_settings()` reads them from the one `Settings` object."""

    max_chars: int = 4000
    redact_pii: bool = True
    flag_at: float = 0.5
    block_at: float = 0.9
    max_combining: int = 2

    @classmethod
    def from_settings(cls, settings: Any) -> GuardConfig:
        """Builds the config from `Settings` (its `guard_*` fields).

        Args:
            settings: a `settings.Settings`, or a `GuardConfig` (returned as is).
        """
        if isinstance(settings, GuardConfig):
            return settings
        return cls(
            max_chars=settings.guard_max_chars,
            redact_pii=settings.guard_redact_pii,
            flag_at=getattr(settings, "guard_flag_score", cls.flag_at),
            block_at=getattr(settings, "guard_block_score", cls.block_at),
            max_combining=getattr(settings, "guard_max_combining", cls.max_combining),
        )
