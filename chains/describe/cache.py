"""The describe cache: exact match on a key, with a TTL. SQLite file by default, Redis when REDIS_URL is set.

The key (`cache_key()`) hashes the canonical input with everything that shapes the answer: the prompt files'
versions, the claim rules' version, the models and their parameters. Editing a prompt therefore changes
the key, and old entries are simply never read again (they expire by TTL). Values are `DescribeOutput`
JSON. Nothing connects at construction: the SQLite file is opened and the Redis client used on first use.

With DATA_ENCRYPTION_KEY set, values are stored as Fernet tokens (`SealedCache` around either store). An entry
no configured key opens (a dropped key, plain text from before the key) is a miss, logged once, and is
overwritten by the fresh answer. `rewrite()` serves `skymarket data rotate-key` (gateway/rekey.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from errors import DataKeyError
from gateway.crypto import Cipher, build_cipher, is_token
from settings import Settings

__all__ = ["DescribeCache", "NoCache", "RedisCache", "SQLiteCache", "SealedCache", "build_cache", "build_store",
           "cache_key"]

# `rewrite()`'s argument: a stored value -> its new value, or None to delete the entry.
Rewrite = Callable[[str], str | None]

log = logging.getLogger("skymarket.describe.cache")

_SCHEMA = 1  # bump when the stored value's shape changes


def cache_key(*, canonical_input: dict[str, Any], parts: dict[str, Any]) -> str:
    """A stable hex key for an input and what shapes its answer.

    Args:
        canonical_input: the canonical input (`schema.canonical(...).model_dump()`); compared case-insensitively.
        parts: prompt versions, rules version, models, parameters.
    """
    # Letter case never changes what a description may claim: "Gutter check" and "gutter check" are one request.
    facts = json.dumps(canonical_input, sort_keys=True, ensure_ascii=False).casefold()
    blob = json.dumps({"schema": _SCHEMA, "input": facts, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class DescribeCache(Protocol):
    name: str

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...

    async def aget(self, key: str) -> str | None: ...

    async def aput(self, key: str, value: str) -> None: ...


class _Async:
    """Async access through a worker thread (both stores are fast, local and blocking)."""

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def put(self, key: str, value: str) -> None:
        raise NotImplementedError

    async def aget(self, key: str) -> str | None:
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, value: str) -> None:
        await asyncio.to_thread(self.put, key, value)


class NoCache(_Async):
    """DESCRIBE_CACHE_ENABLED=false."""

    name = "off"

    def get(self, key: str) -> str | None:
        return None

    def put(self, key: str, value: str) -> None:
        return None


class SQLiteCache(_Async):
    """One table in a SQLite file (WAL); expired rows are skipped on read and purged now and then on write."""

    name = "sqlite"

    def __init__(self, path: Path, *, ttl_s: int, clock: Any = time.time) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self.clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS describe_cache "
                         "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL)")
            conn.commit()
            self._conn = conn
        return self._conn

    def get(self, key: str) -> str | None:
        try:
            with self._lock:
                row = self._db().execute("SELECT value, expires_at FROM describe_cache WHERE key = ?",
                                         (key,)).fetchone()
        except (sqlite3.Error, OSError) as exc:  # a cache fault is a miss, never a failed request
            log.warning("describe cache read failed: %s", exc)
            return None
        if row is None or row[1] <= self.clock():
            return None
        return str(row[0])

    def put(self, key: str, value: str) -> None:
        now = self.clock()
        try:
            with self._lock:
                db = self._db()
                db.execute("INSERT OR REPLACE INTO describe_cache (key, value, expires_at) VALUES (?, ?, ?)",
                           (key, value, now + self.ttl_s))
                self._writes += 1
                if self._writes % 200 == 0:
                    db.execute("DELETE FROM describe_cache WHERE expires_at <= ?", (now,))
                db.commit()
        except (sqlite3.Error, OSError) as exc:
            log.warning("describe cache write failed: %s", exc)

    def rewrite(self, transform: Rewrite, *, dry_run: bool = False) -> int:
        """Passes every live entry through `transform` in one transaction (all or nothing); expired entries are
        deleted, then the file is vacuumed. Returns the number of live entries read."""
        with self._lock:
            db = self._db()
            try:
                db.execute("DELETE FROM describe_cache WHERE expires_at <= ?", (self.clock(),))
                rows = db.execute("SELECT key, value FROM describe_cache").fetchall()
                for key, value in rows:
                    new = transform(str(value))
                    if new is None:
                        db.execute("DELETE FROM describe_cache WHERE key = ?", (key,))
                    elif new != value:
                        db.execute("UPDATE describe_cache SET value = ? WHERE key = ?", (new, key))
                if dry_run:
                    db.rollback()
                    return len(rows)
                db.commit()
            except BaseException:
                db.rollback()
                raise
            # The old values linger in free pages and the WAL until overwritten: rebuild the file, empty the WAL,
            # so no plain text (or text under a dropped key) stays on disk.
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return len(rows)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisCache(_Async):
    """`SET key value EX ttl` under a prefix; Redis expires entries itself."""

    name = "redis"

    def __init__(self, url: str, *, ttl_s: int, prefix: str = "skymarket:describe:") -> None:
        import redis  # imported here: only this store needs it

        self._errors = redis.RedisError
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)  # connects lazily

    def get(self, key: str) -> str | None:
        try:
            value = self._client.get(self.prefix + key)
        except self._errors as exc:  # a cache fault is a miss, never a failed request
            log.warning("describe cache read failed: %s", type(exc).__name__)
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else value  # type: ignore[return-value]

    def put(self, key: str, value: str) -> None:
        try:
            self._client.set(self.prefix + key, value, ex=self.ttl_s)
        except self._errors as exc:
            log.warning("describe cache write failed: %s", type(exc).__name__)

    def rewrite(self, transform: Rewrite, *, dry_run: bool = False) -> int:
        """Passes every entry under the prefix through `transform`, entry by entry, keeping each one's TTL.
        Returns the number of entries read."""
        n = 0
        for name in self._client.scan_iter(match=self.prefix + "*", count=500):
            value = self._client.get(name)
            if value is None:  # expired meanwhile
                continue
            n += 1
            old = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            new = transform(old)
            if dry_run or new == old:
                continue
            if new is None:
                self._client.delete(name)
            else:
                self._client.set(name, new, keepttl=True, xx=True)
        return n


class SealedCache(_Async):
    """Encrypts values on the way in, decrypts them on the way out. A value no key opens is a miss."""

    def __init__(self, inner: SQLiteCache | RedisCache, cipher: Cipher) -> None:
        self.inner = inner
        self.cipher = cipher
        self.name = inner.name
        self._warned = False

    def get(self, key: str) -> str | None:
        value = self.inner.get(key)
        if value is None:
            return None
        try:
            return self.cipher.decrypt(value)
        except DataKeyError as exc:  # a miss, never a failed request; said once, not once per request
            if not self._warned:
                self._warned = True
                what = exc.message if is_token(value) else "an entry is in plain text (stored before the key)"
                log.warning("describe cache: %s; such entries are misses until rewritten or "
                            "`skymarket data rotate-key` runs", what)
            return None

    def put(self, key: str, value: str) -> None:
        self.inner.put(key, self.cipher.encrypt(value))  # encryption never fails: no plain-text fallback


def build_cache(settings: Settings) -> DescribeCache:
    """Redis when REDIS_URL is set, else the SQLite file DESCRIBE_CACHE_PATH; NoCache when disabled.

    Encrypted (`SealedCache`) when DATA_ENCRYPTION_KEY or DATA_ENCRYPTION_KEY_FILE is set.

    Args:
        settings: DESCRIBE_CACHE_ENABLED, DESCRIBE_CACHE_TTL_S, DESCRIBE_CACHE_PATH, REDIS_URL, the data keys.
    """
    if not settings.describe_cache_enabled:
        return NoCache()
    return _sealed(build_store(settings), build_cipher(settings))


def build_store(settings: Settings) -> SQLiteCache | RedisCache:
    """The store itself, without encryption (what `skymarket data rotate-key` rewrites)."""
    if settings.redis_url:
        return RedisCache(settings.redis_url, ttl_s=settings.describe_cache_ttl_s)
    return SQLiteCache(settings.describe_cache_path, ttl_s=settings.describe_cache_ttl_s)


def _sealed(store: SQLiteCache | RedisCache, cipher: Cipher | None) -> DescribeCache:
    return store if cipher is None else SealedCache(store, cipher)
