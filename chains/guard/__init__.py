"""The guard: input sanitizer and prompt-injection defence, plus the output-side canary check.

Input side: `screen()` (pure function; pass `embedding=` when the text's MiniLM query vector is at hand)
-> `GuardOutput`; `screen_many()` for a few listings at once (source "listing"); `build_guard_chain()` for
the `/guard` route; `guard_text()` / `guard_messages()` / `build_guard_step()` for chains (raise
`InputRejected` on block, fence flagged text with `fence()`). Output side: `make_canary()`,
`check_output()`, `build_leak_guard()`.
"""

from chains.guard.canary import REFUSAL, LeakVerdict, check_output, make_canary, redact_leak
from chains.guard.leak import build_leak_guard
from chains.guard.learned import warm as warm_learned
from chains.guard.models import GuardConfig, GuardInput, GuardOutput
from chains.guard.runnable import (
    Guarded,
    build_guard_chain,
    build_guard_step,
    fence,
    guard_messages,
    guard_text,
    text_precheck,
    worst,
)
from chains.guard.screen import aprefetch_learned, prefetch_learned, screen, screen_many

__all__ = [
    "REFUSAL",
    "GuardConfig",
    "GuardInput",
    "GuardOutput",
    "Guarded",
    "LeakVerdict",
    "aprefetch_learned",
    "build_guard_chain",
    "build_guard_step",
    "build_leak_guard",
    "check_output",
    "fence",
    "guard_messages",
    "guard_text",
    "make_canary",
    "prefetch_learned",
    "redact_leak",
    "screen",
    "screen_many",
    "text_precheck",
    "warm_learned",
    "worst",
]
