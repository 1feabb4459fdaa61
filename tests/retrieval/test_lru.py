"""The LRU map behind the search caches: bounded, least recently used out first, size 0 keeps nothing."""

from __future__ import annotations

from retrieval.lru import LRUCache


def test_bounded_and_least_recently_used_goes_first() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and (cache.hits, cache.misses) == (3, 1)


def test_size_zero_keeps_nothing_and_clear_empties() -> None:
    off: LRUCache[str, int] = LRUCache(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    on: LRUCache[str, int] = LRUCache(4)
    on.put("a", 1)
    on.clear()
    assert on.get("a") is None
