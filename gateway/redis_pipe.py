"""One pipelined Redis connection for the gateway's limit scripts: the per-request hot path only.

redis-py's asyncio client costs about 0.2 ms of CPU per command here (connection-pool checkout and health
check, retry wrapper, observability hooks, Python-side packing, a stream reader), more than the rest of an
admission. This connection does only what the two limit scripts need, with hiredis (the C protocol
library redis-py itself uses for parsing) packing commands and parsing replies, as hiredis's own async
clients do: every caller writes its command to one socket and waits for its reply in order (pipelining, so
concurrent admissions share round trips and nothing is checked out). About 0.05 ms per call.

Failure is simple on purpose: any error, timeout or closed socket fails every call waiting on the
connection and closes it; the next call reconnects. The caller (gateway/limits.py) then decides: fall back
to per-process limits or answer 503. Everything else on Redis (loading scripts, tests reading state) uses
redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlparse

import hiredis

from errors import ConfigError

__all__ = ["RedisPipe", "RedisReplyError", "script_sha"]


class RedisReplyError(Exception):
    """Redis answered with an error (a script failing, a wrong type, ...)."""


class _Protocol(asyncio.Protocol):
    def __init__(self, pipe: RedisPipe) -> None:
        self.pipe = pipe
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if future.done():  # its caller gave up (timeout): the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(RedisReplyError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}"))

    def fail(self, exc: Exception) -> None:
        self.pipe.forget(self)
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class RedisPipe:
    """Sends commands on one connection and returns their replies; `redis://[:password@]host:port/db` URLs.

    Args:
        url: the Redis URL (REDIS_URL), as redis-py reads it: `redis://[[user]:password@]host[:port][/db]`,
            `rediss://...` (TLS, the server's certificate verified; `?ssl_cert_reqs=none` to skip that) or
            `unix://[[user]:password@]/path.sock[?db=N]`.
        timeout_s: connect and reply timeout of each call.

    Raises:
        ConfigError: a URL of another scheme, or a database that is not a number.
    """

    def __init__(self, url: str, *, timeout_s: float) -> None:
        parts = urlparse(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"REDIS_URL: expected redis://, rediss:// or unix://, not {parts.scheme or '?'}://")
        query = parse_qs(parts.query)
        self.unix_path = parts.path if parts.scheme == "unix" else None
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "rediss":
            self.ssl = ssl.create_default_context()
            if query.get("ssl_cert_reqs", [""])[0].lower() == "none":
                self.ssl.check_hostname, self.ssl.verify_mode = False, ssl.CERT_NONE
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        db = query.get("db", [""])[0] or ("" if self.unix_path else parts.path.strip("/")) or "0"
        if not db.isdigit():
            raise ConfigError(f"REDIS_URL: the database must be a number, not {db!r}")
        self.db = int(db)
        self.timeout_s = timeout_s
        self._conn: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def call(self, *args: Any) -> Any:
        """One command; raises RedisReplyError (Redis said no), or ConnectionError / TimeoutError."""
        conn = self._conn
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = conn or await self._connect()
                return await self._send(conn, args)
        except TimeoutError:
            if conn is not None:  # a Redis that stopped answering: drop the connection and what waits on it
                conn.fail(TimeoutError(f"Redis did not answer within {self.timeout_s} s"))
            raise

    async def eval_script(self, script: str, sha: str, keys: list[Any], args: list[Any]) -> Any:
        """EVALSHA, or EVAL (which also caches it) when this Redis does not have the script yet."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.call("EVAL", script, len(keys), *keys, *args)

    def forget(self, conn: _Protocol) -> None:
        if self._conn is conn:
            self._conn = None

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.fail(ConnectionError("closed"))

    def _send(self, conn: _Protocol, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if conn.transport is None or conn.transport.is_closing():
            raise ConnectionError("Redis connection closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        conn.waiting.append(future)
        conn.transport.write(hiredis.pack_command(args))
        return future

    async def _connect(self) -> _Protocol:
        if self._connecting is None:  # one connection attempt at a time; the others wait for it
            self._connecting = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        conn: _Protocol
        if self.unix_path is not None:
            _, conn = await loop.create_unix_connection(lambda: _Protocol(self), self.unix_path)
        else:
            _, conn = await loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=self.ssl)
        try:
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                await self._send(conn, ("AUTH", *auth))
            if self.db:
                await self._send(conn, ("SELECT", self.db))
        except BaseException as exc:
            conn.fail(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            raise
        self._conn = conn
        return conn


def script_sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by their SHA-1
