"""The overhead bench's load generator: one process, commanded by JSON lines on stdin, one JSON line back.

    python -m bench.loadgen                              # raw HTTP/1.1 keep-alive client (targets b, c, d)
    python -m bench.loadgen --direct URL                 # ChatOpenAI called directly (target a)

A command: `{"port", "path", "body", "headers", "stream", "concurrency", "duration", "max_requests"}`
(`port`/`path`/`body`/`headers` are ignored with `--direct`), and optionally `rate`, and `unique`: every
`#N#` in the body becomes the request's own number, so no two requests are the same (nothing served from a
cache, nothing merged in a batch). Each of `concurrency`
clients sends requests back to back on its own connection until `duration` seconds or `max_requests` in all;
with `rate` (requests/s in all), each client first pauses a random time (exponential, mean
concurrency/rate), so together they offer that rate instead of saturating the server. The answer:
latencies and times to the first token (`marker` seen in the body; the first non-empty chunk with
`--direct`), in ms; ok/error counts; wall time; and this process's CPU seconds over the phase (getrusage),
so a reader can check that the load generator was not the bottleneck. Raw asyncio streams on uvloop, no
HTTP library: httpx costs more CPU per request than the servers under test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["MARKER", "main"]

MARKER = b"Happy"  # the upstream's first token (bench/upstream.py)
_TIMEOUT_S = 30.0

Result = tuple[float, float | None]  # (latency s, time to first token s or None)
Call = Callable[[], Awaitable[Result]]


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _read_response(reader: asyncio.StreamReader, t0: float) -> tuple[int, float | None, bool]:
    """Reads one response; returns (status, first-token time, keep-alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:] if ln)}
    keep = headers.get(b"connection", b"keep-alive").lower() != b"close"
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
        return status, (time.perf_counter() - t0) if MARKER in body else None, keep
    if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
        await reader.read()  # close-delimited
        return status, None, False
    ttft, tail = None, b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return status, ttft, keep
        if ttft is None:
            if MARKER in tail + data:
                ttft = time.perf_counter() - t0
            tail = data[:-2][-len(MARKER):]


_numbers = itertools.count()  # `unique` bodies: one number per request, across the process's clients


class _HttpClient:
    """One keep-alive connection; reconnects after a close or an error."""

    def __init__(self, port: int, request: bytes | Callable[[], bytes]) -> None:
        self.port, self.request = port, request
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self) -> Result:
        if self.conn is None:
            self.conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.conn
        t0 = time.perf_counter()
        writer.write(self.request if isinstance(self.request, bytes) else self.request())
        try:
            status, ttft, keep = await _read_response(reader, t0)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        return time.perf_counter() - t0, ttft

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


def _http_request(cmd: dict[str, Any]) -> bytes | Callable[[], bytes]:
    """The request's bytes; with `unique`, a function that makes each request's, numbered."""
    template = json.dumps(cmd["body"])
    if cmd.get("unique"):
        return lambda: _encode(cmd, template.replace("#N#", str(next(_numbers))))
    return _encode(cmd, template)


def _encode(cmd: dict[str, Any], body_json: str) -> bytes:
    body = body_json.encode()
    headers = {"host": f"127.0.0.1:{cmd['port']}", "content-type": "application/json",
               "content-length": str(len(body)), **cmd.get("headers", {})}
    head = f"POST {cmd['path']} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


def _direct_call(model: Any, stream: bool, system: str | None = None) -> Call:
    from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

    messages: list[BaseMessage] = [HumanMessage("How do I list a drone for sale?")]
    if system:
        messages.insert(0, SystemMessage(system))

    async def call() -> Result:
        t0 = time.perf_counter()
        if not stream:
            await model.ainvoke(messages)
            return time.perf_counter() - t0, None
        ttft = None
        async for chunk in model.astream(messages):
            if ttft is None and chunk.content:
                ttft = time.perf_counter() - t0
        return time.perf_counter() - t0, ttft

    return call


async def run_phase(cmd: dict[str, Any], direct_model: Any = None,
                    connections: list[Any] | None = None) -> dict[str, Any]:
    """Runs one phase of load and returns its figures.

    `connections` (HTTP only): a list this phase's clients take their connections from and leave them in, so
    consecutive phases reuse them (no connection set-up inside a phase's latencies); else each phase opens
    its own and closes them."""
    n, duration, limit = int(cmd["concurrency"]), float(cmd["duration"]), int(cmd["max_requests"])
    rate = float(cmd.get("rate") or 0)
    rng = random.Random(7)
    lat: list[float] = []
    ttft: list[float] = []
    errors: list[str] = []
    started = 0
    cpu0, t0 = _cpu(), time.perf_counter()
    end = t0 + duration

    async def client(i: int) -> None:
        nonlocal started
        http = None
        if direct_model is None:
            if connections is not None and i < len(connections):
                http = connections[i]
                http.request = _http_request(cmd)
            else:
                http = _HttpClient(int(cmd["port"]), _http_request(cmd))
                if connections is not None:
                    connections.append(http)
        call = _direct_call(direct_model, bool(cmd["stream"]), cmd.get("system")) if http is None else http.call
        try:
            while time.perf_counter() < end and started < limit:
                started += 1
                if rate:
                    await asyncio.sleep(rng.expovariate(rate / n))
                try:
                    latency, first = await asyncio.wait_for(call(), _TIMEOUT_S)
                except Exception as exc:  # counted and sampled; the phase goes on
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                lat.append(latency * 1000)
                if first is not None:
                    ttft.append(first * 1000)
        finally:
            if http is not None and connections is None:
                http.close()

    await asyncio.gather(*(client(i) for i in range(n)))
    wall = time.perf_counter() - t0
    return {"lat_ms": lat, "ttft_ms": ttft, "ok": len(lat), "errors": len(errors), "error_sample": errors[:3],
            "wall_s": wall, "cpu_s": _cpu() - cpu0}


async def _serve(direct_url: str | None) -> None:
    model = None
    if direct_url is not None:
        from bench.bare_app import build_model

        model = build_model(direct_url)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            return
        result = await run_phase(json.loads(line), model)
        print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="the overhead bench's load generator")
    parser.add_argument("--direct", metavar="BASE_URL", help="call ChatOpenAI at this /v1 URL instead of HTTP")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_serve(args.direct))
    except ImportError:
        asyncio.run(_serve(args.direct))


if __name__ == "__main__":
    main()
