"""Listings are operator text: screened by the guard (source `listing`) before any of them enters a prompt.

The ingest screens every listing too and quarantines what it flags; this is the second door, for what
reaches a model today (a listing edited since, a rule added since). Verdicts are kept per listing version,
so a listing is screened once; new ones are screened together (`screen_many`: one embedding run). A listing
the guard flags or blocks is not cited: its words never reach the model, and the flags say so.

This door scores each field whole, not sentence window by window as the ingest does: windows cost one
embedding run each (a 700-character description: ~19), which a customer would wait for the first time a
listing is cited in a process; the ingest, run once per change, is where they are paid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chains.guard import GuardConfig, screen_many
from retrieval.lru import LRUCache

__all__ = ["ListingScreen"]

_ORDER = {"allow": 0, "flag": 1, "block": 2}


def _fields(listing: Any) -> list[str]:
    """The listing's own words, field by field (each within the guard's length limit, as ingest validates)."""
    return [listing.title, ", ".join(listing.services), listing.description]


class ListingScreen:
    """The guard's verdict on each listing's own words (title, services, description), cached.

    Args:
        guard: the guard's configuration.
        size: how many verdicts to keep.
    """

    def __init__(self, guard: GuardConfig, size: int = 4096) -> None:
        self.guard = replace(guard, window_sources=guard.window_sources - {"listing"})  # whole fields (above)
        self.verdicts: LRUCache[tuple[str, str], str] = LRUCache(size)

    @staticmethod
    def _key(listing: Any) -> tuple[str, str]:
        digest = hashlib.blake2b("\x00".join(_fields(listing)).encode("utf-8"), digest_size=12).hexdigest()
        return listing.id, digest

    def actions(self, listings: Sequence[Any]) -> list[str]:
        """allow, flag or block for each listing (the worst of its fields)."""
        keys = [self._key(x) for x in listings]
        found = {k: v for k in keys if (v := self.verdicts.get(k)) is not None}
        todo = [(k, x) for k, x in zip(keys, listings, strict=True) if k not in found]
        if todo:
            verdicts = iter(screen_many([t for _, x in todo for t in _fields(x)], source="listing", config=self.guard))
            for k, x in todo:
                found[k] = max((next(verdicts).action for _ in _fields(x)), key=_ORDER.__getitem__)
                self.verdicts.put(k, found[k])
        return [found[k] for k in keys]

    def keep(self, listings: Sequence[Any]) -> tuple[list[Any], list[str]]:
        """The listings the guard lets into a prompt, and a flag for each one it held back."""
        kept, flags = [], []
        for x, action in zip(listings, self.actions(listings), strict=True):
            if action == "allow":
                kept.append(x)
            else:
                flags.append(f"withheld listing {x.id}: its text reads as instructions to the assistant")
        return kept, flags
