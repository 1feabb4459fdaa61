"""A real local HTTP server that speaks OpenAI's chat-completions API and fails on command.

Each model name gets a script: a queue of behaviours used one per request, then a default. Every request
is recorded (model, stream flag, headers, body), so tests can count upstream calls.

    fake = FakeOpenAI().start()
    fake.script("gpt-4o-mini", Fail(429, retry_after=1), Reply("hi"))
    ChatOpenAI(base_url=fake.url, ...)

`/v1/moderations` answers too (calls recorded under the moderation model's name): nothing is flagged unless
`fake.flag("fragment", "violence")` says so; `fake.script("omni-moderation-latest", Fail(500))` fails it
(`Garbage()`: a body that is not JSON).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Cut", "Fail", "FakeOpenAI", "Garbage", "Hang", "Reply", "Reset"]


@dataclass
class Reply:
    """A successful answer; streamed in `chunks` pieces when the client asks for a stream."""

    text: str = "Hello from the fake model."
    prompt_tokens: int = 12
    completion_tokens: int | None = None  # default: one per word
    cached_tokens: int = 0
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 4
    usage: bool = True
    model: str | None = None  # the name reported back (default: the one asked for; llama.cpp reports a path)


@dataclass
class Fail:
    status: int = 500
    retry_after: float | None = None
    message: str = "upstream failure"


@dataclass
class Hang:
    seconds: float = 30.0


@dataclass
class Garbage:
    """HTTP 200 whose body is not JSON."""


@dataclass
class Reset:
    """The connection is reset without an answer."""


@dataclass
class Cut:
    """A stream that sends `after` chunks, then the connection drops."""

    after: int = 2
    text: str = "This answer will be cut off before it ends."


Behaviour = Reply | Fail | Hang | Garbage | Reset | Cut

_MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)


@dataclass
class Call:
    model: str
    stream: bool
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeOpenAI:
    def __init__(self, default: Behaviour | None = None) -> None:
        self.default: Behaviour = default or Reply()
        self.defaults: dict[str, Behaviour] = {}
        self.scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self.calls: list[Call] = []
        self.moderation_flags: dict[str, list[str]] = {}  # text fragment ("*": any) -> categories flagged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    # --- control ---
    def script(self, model: str, *behaviours: Behaviour) -> FakeOpenAI:
        with self._lock:
            self.scripts[model].extend(behaviours)
        return self

    def always(self, model: str, behaviour: Behaviour) -> FakeOpenAI:
        with self._lock:
            self.defaults[model] = behaviour
        return self

    def reset(self) -> None:
        with self._lock:
            self.scripts.clear()
            self.defaults.clear()
            self.calls.clear()
            self.moderation_flags.clear()

    def flag(self, fragment: str = "*", *categories: str) -> FakeOpenAI:
        """`/v1/moderations` flags any input containing `fragment` (case-insensitive; "*": every input)."""
        with self._lock:
            self.moderation_flags[fragment.lower()] = list(categories or ("harassment",))
        return self

    def count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if model is None or c.model == model)

    def _next(self, model: str) -> Behaviour:
        with self._lock:
            queue = self.scripts.get(model)
            if queue:
                return queue.popleft()
            return self.defaults.get(model, self.default)

    # --- lifecycle ---
    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = {}
        model = str(body.get("model", ""))
        stream = bool(body.get("stream"))
        if self.path.endswith("/moderations"):
            self._moderate(model, body)
            return
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        with self.owner._lock:
            self.owner.calls.append(Call(model, stream, {k.lower(): v for k, v in self.headers.items()}, body))
        b = self.owner._next(model)
        if isinstance(b, Fail):
            headers = {"retry-after": str(b.retry_after)} if b.retry_after is not None else {}
            auth = self.headers.get("Authorization", "")
            # Real providers echo part of a bad key; this fake echoes all of it to prove we never pass it on.
            msg = f"{b.message} (key {auth})" if b.status == 401 else b.message
            self._json(b.status, {"error": {"message": msg, "type": "fake", "code": str(b.status)}}, headers)
        elif isinstance(b, Hang):
            self.owner._stop.wait(b.seconds)
            self._json(500, {"error": {"message": "hung"}})
        elif isinstance(b, Garbage):
            self._raw(200, b"this is {not json", "application/json")
        elif isinstance(b, Reset):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif isinstance(b, Cut):
            self._stream(model, Reply(b.text, chunks=max(b.after + 2, 4)), cut_after=b.after)
        elif stream:
            self._stream(model, b)
        else:
            self._complete(model, b)

    # --- answers ---
    def _moderate(self, model: str, body: dict[str, Any]) -> None:
        """OpenAI's moderation answer; a scripted `Fail` for the moderation model fails it."""
        with self.owner._lock:
            self.owner.calls.append(Call(model, False, {k.lower(): v for k, v in self.headers.items()}, body))
            rules = dict(self.owner.moderation_flags)
        b = self.owner._next(model)
        if isinstance(b, Fail):
            headers = {"retry-after": str(b.retry_after)} if b.retry_after is not None else {}
            self._json(b.status, {"error": {"message": b.message, "type": "fake", "code": str(b.status)}}, headers)
            return
        if isinstance(b, Garbage):
            self._raw(200, b"this is {not json", "application/json")
            return
        texts = body.get("input") or []
        results = []
        for text in [texts] if isinstance(texts, str) else texts:
            hit = {c for frag, cats in rules.items() if frag == "*" or frag in str(text).lower() for c in cats}
            cats = {c: c in hit for c in _MODERATION_CATEGORIES}
            results.append({"flagged": bool(hit), "categories": cats,
                            "category_scores": {c: 0.99 if on else 0.001 for c, on in cats.items()},
                            "category_applied_input_types": {c: ["text"] for c in cats}})
        self._json(200, {"id": "modr-fake", "model": model, "results": results})

    def _usage(self, r: Reply) -> dict[str, Any]:
        out = r.completion_tokens if r.completion_tokens is not None else len(r.text.split())
        return {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": out,
            "total_tokens": r.prompt_tokens + out,
            "prompt_tokens_details": {"cached_tokens": r.cached_tokens},
        }

    def _complete(self, model: str, r: Reply) -> None:
        time.sleep(r.first_token_delay)
        body: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": r.model or model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": r.text}}],
        }
        if r.usage:
            body["usage"] = self._usage(r)
        self._json(200, body)

    def _stream(self, model: str, r: Reply, cut_after: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        words = r.text.split(" ")
        n = max(1, min(r.chunks, len(words)))
        pieces = [" ".join(words[i * len(words) // n : (i + 1) * len(words) // n]) for i in range(n)]
        pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
        time.sleep(r.first_token_delay)
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": r.model or model}
        try:
            for i, piece in enumerate(pieces):
                if cut_after is not None and i >= cut_after:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                self._event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                time.sleep(r.chunk_delay)
            self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if r.usage:
                self._event({**base, "choices": [], "usage": self._usage(r)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
