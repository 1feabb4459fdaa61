"""Listings are operator text: screened by the guard (source `listing`) before any of them enters a prompt.

The ingest screens every listing too; this is the second door, for what reaches a model today (a listing
edited since, a rule added since). Verdicts are kept per listing version, so a listing is screened once.
A listing the guard flags or blocks is not cited: its words never reach the model, and the flags say so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from chains.guard import GuardConfig, screen
from retrieval.lru import LRUCache

__all__ = ["ListingScreen"]


class ListingScreen:
    """The guard's verdict on each listing's own words (title, services, description), cached.

    Args:
        guard: the guard's configuration.
        size: how many verdicts to keep.
    """

    def __init__(self, guard: GuardConfig, size: int = 4096) -> None:
        self.guard = guard
        self.verdicts: LRUCache[tuple[str, str], str] = LRUCache(size)

    def action(self, listing: Any) -> str:
        """allow, flag or block for one listing."""
        text = "\n".join([listing.title, ", ".join(listing.services), listing.description])
        key = (listing.id, hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest())
        known = self.verdicts.get(key)
        if known is None:
            known = screen(text, source="listing", config=self.guard).action
            self.verdicts.put(key, known)
        return known

    def keep(self, listings: Sequence[Any]) -> tuple[list[Any], list[str]]:
        """The listings the guard lets into a prompt, and a flag for each one it held back."""
        kept, flags = [], []
        for x in listings:
            if self.action(x) == "allow":
                kept.append(x)
            else:
                flags.append(f"withheld listing {x.id}: its text reads as instructions to the assistant")
        return kept, flags
