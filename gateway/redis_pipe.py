"""One pipelined Redis connection for the gateway's limit scripts: the per-request hot path only.

redis-py's asyncio client costs about 0.2 ms of CPU per command here (connection-pool checkout and health
check, retry wrapper, observability hooks, Python-side packing, a stream reader), more than the rest of an
admission. This connection does only what the two limit scripts need, with hiredis (the C protocol
library redis-py itself uses for parsing) packing commands and parsing replies, as hiredis's own async
clients do: every caller writes its command to one socket and waits for its reply in order (pipelining, so
concurrent admissions share round trips and nothing is checked out). About 0.05 ms per call.

Failure is simple on purpose: any error, timeout or closed socket fails every call waiting on the
connection and closes it; the next call reconnects. Connecting (TCP, TLS, AUTH, SELECT) has the same
timeout as a call. The caller (gateway/limits.py) then decides: fall back
to per-process limits or answer 503. Everything else on Redis (loading scripts, tests reading state) uses
redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

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
    """Sends commands on one connection and returns their replies.

    The URL is read by redis-py's own `redis.connection.parse_url` (what `Redis.from_url` uses, so the
    describe cache and the limits always agree on host, port, database, user, password, socket or TLS):
    `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS: the server's certificate and host
    name verified unless `?ssl_cert_reqs=none`; `ssl_ca_certs`, `ssl_ca_path`, `ssl_certfile`, `ssl_keyfile`,
    `ssl_check_hostname`, `ssl_min_version` as redis-py reads them), `unix://[[user]:password@]/path.sock[?db=N]`.
    Query arguments about redis-py's own pool (timeouts, retries, max_connections...) do not apply here: this
    connection's timeout is `timeout_s`. It speaks RESP2, which every Redis answers.

    Args:
        url: the Redis URL (REDIS_URL).
        timeout_s: the limit on each call, connecting (TCP, TLS, AUTH, SELECT) included.

    Raises:
        ConfigError: a URL redis-py refuses, or a TLS option this connection cannot honour.
    """

    def __init__(self, url: str, *, timeout_s: float) -> None:
        try:
            kwargs = parse_url(url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None
        kind = kwargs.pop("connection_class", None)
        self.unix_path: str | None = None
        if kind is UnixDomainSocketConnection:
            if not kwargs.get("path"):
                raise ConfigError("REDIS_URL: a unix:// URL needs the socket's path")
            self.unix_path = str(kwargs.pop("path"))
        self.host, self.port = str(kwargs.pop("host", "localhost")), int(kwargs.pop("port", 6379))
        self.username: str | None = kwargs.pop("username", None)
        self.password: str | None = kwargs.pop("password", None)
        self.db = int(kwargs.pop("db", 0))
        self.ssl = _ssl_context(kwargs) if kind is SSLConnection else None
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
        attempt = self._connecting
        if attempt is None:  # one connection attempt at a time; the others wait for it
            attempt = self._connecting = asyncio.ensure_future(self._open())
            attempt.add_done_callback(self._attempt_done)
        return await asyncio.shield(attempt)

    def _attempt_done(self, attempt: asyncio.Future[_Protocol]) -> None:
        """Ends an attempt even when every caller waiting for it gave up first (their own timeout)."""
        if self._connecting is attempt:
            self._connecting = None
        if not attempt.cancelled():
            attempt.exception()  # retrieved: a failure nobody waited for is not "never retrieved"

    async def _open(self) -> _Protocol:
        """Connects, authenticates and selects the database, all within `timeout_s`: a server that accepts
        the connection but never answers must not hold every later call on this attempt."""
        loop = asyncio.get_running_loop()
        conn: _Protocol | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if self.unix_path is not None:
                    _, conn = await loop.create_unix_connection(lambda: _Protocol(self), self.unix_path)
                else:
                    _, conn = await loop.create_connection(lambda: _Protocol(self), self.host, self.port,
                                                           ssl=self.ssl)
                if self.password is not None:
                    auth = (self.username, self.password) if self.username else (self.password,)
                    await self._send(conn, ("AUTH", *auth))
                if self.db:
                    await self._send(conn, ("SELECT", self.db))
        except TimeoutError:
            if conn is not None:
                conn.fail(TimeoutError(f"Redis did not answer within {self.timeout_s} s"))
            raise TimeoutError(f"Redis did not accept, authenticate and select within {self.timeout_s} s") from None
        except BaseException as exc:
            if conn is not None:
                conn.fail(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            raise
        self._conn = conn
        return conn


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_TLS_OPTIONS = {"ssl_cert_reqs", "ssl_check_hostname", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
                "ssl_min_version"}


def _ssl_context(kwargs: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context redis-py's SSLConnection builds from the same URL arguments (its defaults: the
    certificate required, the host name checked)."""
    unsupported = sorted(k for k in kwargs if k.startswith("ssl_") and k not in _TLS_OPTIONS)
    if unsupported:
        raise ConfigError(f"REDIS_URL: {', '.join(unsupported)} is not supported by the limits' connection")
    reqs = str(kwargs.get("ssl_cert_reqs", "required")).lower()
    if reqs not in _CERT_REQS:
        raise ConfigError(f"REDIS_URL: ssl_cert_reqs must be none, optional or required, not {reqs!r}")
    context = ssl.create_default_context()
    context.check_hostname = bool(kwargs.get("ssl_check_hostname", True)) and _CERT_REQS[reqs] != ssl.CERT_NONE
    context.verify_mode = _CERT_REQS[reqs]
    if kwargs.get("ssl_keyfile") and not kwargs.get("ssl_certfile"):
        raise ConfigError("REDIS_URL: ssl_keyfile needs ssl_certfile")
    if kwargs.get("ssl_certfile"):
        context.load_cert_chain(certfile=kwargs["ssl_certfile"], keyfile=kwargs.get("ssl_keyfile"))
    if kwargs.get("ssl_ca_certs") or kwargs.get("ssl_ca_path"):
        context.load_verify_locations(cafile=kwargs.get("ssl_ca_certs"), capath=kwargs.get("ssl_ca_path"))
    if kwargs.get("ssl_min_version") is not None:
        context.minimum_version = ssl.TLSVersion(kwargs["ssl_min_version"])
    return context


def script_sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by their SHA-1
