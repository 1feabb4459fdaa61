"""Verdicts remembered per text, so a text is never sent twice in a row and only unseen texts are sent."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from chains.moderation.verdict import LOCAL_UNAVAILABLE, Moderator, Verdict, combine

__all__ = ["Memo"]


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

    def _lookup(self, texts: list[str]) -> tuple[list[Verdict | None], list[str]]:
        """Each text's remembered verdict (None: not seen), and the unseen texts, each once."""
        keys = [self._key(t) for t in texts]
        with self._lock:
            known = [self._seen.get(k) for k in keys]
            for k, v in zip(keys, known, strict=True):
                if v is not None:
                    self._seen.move_to_end(k)
        missing = list(dict.fromkeys(t for t, v in zip(texts, known, strict=True) if v is None))
        return known, missing

    def _store(self, texts: list[str], known: list[Verdict | None], missing: list[str],
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
        known, missing = self._lookup(texts)
        fresh = self.inner.check_each(missing) if missing else []
        return self._store(texts, known, missing, fresh)

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        known, missing = self._lookup(texts)
        fresh = await self.inner.acheck_each(missing) if missing else []
        return self._store(texts, known, missing, fresh)

    def check(self, texts: list[str]) -> Verdict:
        return combine(self.check_each(texts), self.name)

    async def acheck(self, texts: list[str]) -> Verdict:
        return combine(await self.acheck_each(texts), self.name)

    async def aclose(self) -> None:
        await self.inner.aclose()
