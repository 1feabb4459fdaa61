"""The guard's types: the `/guard` contract (`GuardInput` -> `GuardOutput`) and its tunables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chains.schemas import InputModel

__all__ = ["Action", "GuardConfig", "GuardInput", "GuardOutput", "Source", "make_guard_input"]

Source = Literal["chat", "search", "describe", "listing"]
Action = Literal["allow", "flag", "block"]


class GuardInput(InputModel):
    """Text to screen and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="untrusted text: a chat message, search query, describe input or listing")
    source: Source = Field(default="chat", description="where the text comes from")


def make_guard_input(max_chars: int) -> type[GuardInput]:
    """The `/guard` input with the configured length limit on `text` (a 422 naming it, before any screening).

    Args:
        max_chars: the longest text accepted (`GUARD_MAX_CHARS`).
    """

    def within_limit(text: str) -> str:
        # Not `max_length`: with a constraint pydantic refuses lone surrogates, which the guard strips instead.
        if len(text) > max_chars:
            raise ValueError(f"the text is {len(text)} characters long; the limit is {max_chars}")
        return text

    class LimitedGuardInput(GuardInput):
        model_config = ConfigDict(extra="forbid", title="GuardInput")

        text: Annotated[str, AfterValidator(within_limit)] = Field(
            json_schema_extra={"maxLength": max_chars},
            description=f"untrusted text (at most {max_chars} characters): a chat message, search query, "
            "describe input or listing",
        )

    return LimitedGuardInput


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
    learned: bool = True  # the learned layer (chains/guard/learned.py) beside the rules
    # Sources for which screen() embeds the text itself when no embedding is passed. A search query is
    # screened by the rules alone unless the caller passes the query's embedding (which the search computes).
    embed_sources: frozenset[str] = frozenset({"chat", "describe", "listing"})
    # Sources whose texts the learned layer also scores by sentence window (the max over the text and its
    # windows: chains/guard/windows.py): data, where an instruction hides in a longer document. A chat turn
    # is scored whole (one ONNX run, or none when its embedding is passed in); each window costs a run.
    window_sources: frozenset[str] = frozenset({"describe", "listing"})

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
            learned=getattr(settings, "guard_learned", cls.learned),
        )
