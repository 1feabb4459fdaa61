"""A small, fast OpenAI-compatible upstream with a fixed latency, for the overhead bench (not a test fake).

    python -m bench.upstream --port 18100      # http://127.0.0.1:18100/v1

`POST /v1/chat/completions`, any model:
- stream: the first token 50 ms after the request, then 9 more chunks 5 ms apart, then (when
  `stream_options.include_usage`) the usage chunk and `[DONE]` 5 ms later: 100 ms in all;
- otherwise the whole body after 100 ms, usage included.
Delays are scheduled against absolute deadlines from the request's arrival, so they do not drift.
`--scale F` multiplies every delay (0.1: the whole answer after 10 ms).
`GET /stats` returns the number of completions served. A raw asyncio server (uvloop when installed):
tests/fake_openai.py is a thread per connection, too slow at 64 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

__all__ = ["CHUNK_GAP_S", "FIRST_TOKEN_S", "TOKENS", "TOTAL_S", "main", "serve"]

FIRST_TOKEN_S = 0.050
CHUNK_GAP_S = 0.005
# A plain answer of 10 tokens, two sentences: /chat (the assistant) checks each sentence before it sends it, and
# finds nothing to remove here (placeholder tokens such as "Tok1" read as unknown proper names: it asked again).
TOKENS = ["Happy ", "to ", "help. ", "Compare ", "operators ", "by ", "price ", "and ", "rating ", "here."]
TOTAL_S = FIRST_TOKEN_S + CHUNK_GAP_S * len(TOKENS)  # 100 ms
_USAGE = {"prompt_tokens": 20, "completion_tokens": len(TOKENS), "total_tokens": 20 + len(TOKENS)}
_served = 0
_scale = 1.0  # --scale: every delay multiplied


def _head(status: str, ctype: str, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\nconnection: keep-alive\r\n{extra}\r\n").encode()


def _json(status: str, body: Any) -> bytes:
    data = json.dumps(body).encode()
    return _head(status, "application/json", f"content-length: {len(data)}\r\n") + data


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(obj: Any) -> bytes:
    return _chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")


async def _sleep_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)


async def _complete(req: dict[str, Any], t0: float, writer: asyncio.StreamWriter) -> None:
    global _served
    model = str(req.get("model", "bench"))
    base = {"id": "chatcmpl-bench", "created": int(time.time()), "model": model}
    if not req.get("stream"):
        await _sleep_until(t0 + TOTAL_S * _scale)
        body = {**base, "object": "chat.completion", "usage": _USAGE, "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "".join(TOKENS).strip()}}]}
        writer.write(_json("200 OK", body))
        _served += 1
        return
    writer.write(_head("200 OK", "text/event-stream", "transfer-encoding: chunked\r\n"))
    chunk = {**base, "object": "chat.completion.chunk"}
    for i, tok in enumerate(TOKENS):
        await _sleep_until(t0 + (FIRST_TOKEN_S + i * CHUNK_GAP_S) * _scale)
        delta = {"role": "assistant", "content": tok} if i == 0 else {"content": tok}
        last = i == len(TOKENS) - 1
        writer.write(_event({**chunk, "choices": [
            {"index": 0, "delta": delta, "finish_reason": "stop" if last else None}]}))
        await writer.drain()
    await _sleep_until(t0 + TOTAL_S * _scale)
    if (req.get("stream_options") or {}).get("include_usage"):
        writer.write(_event({**chunk, "choices": [], "usage": _USAGE}))
    writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    _served += 1


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            t0 = time.monotonic()
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path == "/stats":
                writer.write(_json("200 OK", {"served": _served}))
            elif method == "POST" and path.endswith("/chat/completions"):
                await _complete(json.loads(body or b"{}"), t0, writer)
            elif method == "POST" and path.endswith("/moderations"):  # the assistant moderates input and output
                req = json.loads(body or b"{}")
                n = len(req["input"]) if isinstance(req.get("input"), list) else 1
                writer.write(_json("200 OK", {"id": "modr-bench", "model": req.get("model", "bench"), "results": [
                    {"flagged": False, "categories": {}, "category_scores": {}} for _ in range(n)]}))
            else:
                writer.write(_json("404 Not Found", {"error": {"message": f"no route {path}"}}))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def serve(port: int) -> None:
    """Serves on 127.0.0.1:`port` until cancelled."""
    server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every delay (default 1: 100 ms answers)")
    args = parser.parse_args()
    global _scale
    _scale = args.scale
    try:
        import uvloop

        uvloop.run(serve(args.port))
    except ImportError:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
