"""Hostile request bodies against every POST route of the real app, served by uvicorn, on ONE keep-alive
connection: JSON nested 10,000 deep (in `input`, in a text field, in `config`, in `kwargs`), invalid UTF-8,
lone surrogates, non-finite numbers, broken JSON. Each gets a 4xx with a JSON body, never a 5xx, the server
keeps the connection open, and the valid request sent after it on the same connection succeeds.

The routes are read from the app itself, so a route added later (e.g. /assistant) is swept too: it only
needs a valid input in `VALID` (the test fails, naming it, until it has one).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route

from server import create_app
from settings import Settings
from tests.conftest import LiveServer

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJ = '{"a":' * 10_000 + "1" + "}" * 10_000

# A valid input per feature route: the request sent after each hostile one must succeed with it.
VALID: dict[str, Any] = {
    "chat": {"messages": [{"role": "user", "content": "Which drone services can I book in Troy?"}]},
    "assistant": {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]},
    "search": {"query": "roof inspection near Troy", "limit": 3},
    "guard": {"text": "What does a roof inspection cost?", "source": "chat"},
    "describe": {"title": "Roof inspections", "category": "inspection", "city": "Troy",
                 "services": ["roof inspection"], "notes": "Fast turnaround."},
}
# The text field of each route's input, where a nested value or a bad string is put.
TEXT_FIELD = {"chat": None, "assistant": None, "search": "query", "guard": "text", "describe": "notes"}


def with_text(route: str, raw: str) -> str:
    """The route's valid input (JSON text) with `raw` (JSON text) as the value of its text field."""
    field = TEXT_FIELD.get(route)
    if field is None:  # chat, assistant: the message content
        return '{"messages": [{"role": "user", "content": ' + raw + "}]}"
    inp = dict(VALID[route])
    inp[field] = "__X__"
    return json.dumps(inp).replace('"__X__"', raw)


def hostile_bodies(route: str, batch: bool) -> list[tuple[str, bytes]]:
    """(name, body) pairs for one endpoint; batch endpoints take `inputs`, the others `input`."""
    valid = json.dumps(VALID[route])

    def wrap(inp: str, extra: str = "") -> bytes:
        inner = '{"inputs": [' + inp + "]" + extra + "}" if batch else '{"input": ' + inp + extra + "}"
        return inner.encode("utf-8")

    return [
        ("deep array as input", wrap(DEEP)),
        ("deep object as input", wrap(DEEP_OBJ)),
        ("deep array in the text field", wrap(with_text(route, DEEP))),
        ("deep array in config", wrap(valid, ', "config": {"configurable": ' + DEEP + "}")),
        ("deep object as config", wrap(valid, ', "config": ' + DEEP_OBJ)),
        ("deep array in kwargs", wrap(valid, ', "kwargs": ' + DEEP)),
        ("brackets inside a string", wrap(with_text(route, json.dumps("[" * 10_000)))),
        ("invalid UTF-8 in the text", wrap(with_text(route, '"a@@b"')).replace(b"@@", b"\xff\xfe")),
        ("invalid UTF-8 bytes", b'{"input": "\xc3\x28 \xa0\xa1"}'),
        ("UTF-8 encoded surrogate", wrap(with_text(route, '"a@@b"')).replace(b"@@", b"\xed\xa0\x80")),
        ("truncated UTF-8 sequence", wrap(with_text(route, '"a@@"')).replace(b"@@", b"\xe2\x82")),
        ("lone high surrogate", wrap(with_text(route, '"\\ud800"'))),
        ("lone low surrogate", wrap(with_text(route, '"a\\udc00b"'))),
        ("surrogates reversed", wrap(with_text(route, '"\\udc00\\ud800"'))),
        ("lone surrogate in a key", wrap(valid, ', "config": {"\\ud800": 1}')),
        ("NaN", wrap(with_text(route, "NaN"))),
        ("Infinity", wrap(with_text(route, "-Infinity"))),
        ("overflowing number", wrap(with_text(route, "1e999"))),
        ("5,000-digit integer", wrap(with_text(route, "1" * 5000))),
        ("NaN as the limit", wrap(valid[:-1] + ', "limit": NaN, "max_words": NaN, "lat": NaN}')),
        ("truncated JSON", wrap(valid)[:-5]),
        ("not JSON", b"this is not json"),
        ("empty body", b""),
        ("JSON null", b"null"),
        ("top-level array", b"[1, 2, 3]"),
    ]


HARMLESS = {"brackets inside a string"}  # valid JSON, only odd: 200 or a 4xx from the route's own checks


def post_routes(app: Any) -> list[tuple[str, str]]:
    """(route name, path) of every POST endpoint the app serves, config-hash variants included."""
    out = []
    for r in app.routes:
        if isinstance(r, Route) and "POST" in (r.methods or ()):
            route = r.path.strip("/").split("/")[0]
            if route in VALID or route not in ("usage", "metrics", "dashboard"):
                out.append((route, r.path.replace("{config_hash}", "N4XyA")))  # LZString of "{}"
    return sorted(set(out))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, list[tuple[str, str]]]]:
    from tests.conftest import FAKE_KEY, make_settings
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    d = tmp_path_factory.mktemp("hostile")
    settings: Settings = make_settings(
        openai_api_key=FAKE_KEY, openai_base_url=fake.url, local_model_enabled=True, local_model_url=fake.url,
        ai_request_timeout=5000, ai_max_retries=0, usage_db_file=d / "usage.db", audit_file=d / "audit.jsonl",
        usage_spool_dir=d / "spool", ai_rate_limit_rpm=100_000, ai_rate_limit_tpm=100_000_000,
        gateway_global_rpm=100_000, gateway_global_tpm=100_000_000, gateway_search_global_rpm=100_000,
        gateway_guard_global_rpm=100_000,
    )
    app = create_app(settings)
    with LiveServer(app) as server:
        deadline = time.monotonic() + 120
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while time.monotonic() < deadline:  # the search index loads in the background
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                break
            time.sleep(0.2)
        conn.close()
        yield server, post_routes(app)
    fake.stop()


def send(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    """One request on the connection; a connection the server dropped is status 0 (and is opened again)."""
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    except (ConnectionError, http.client.HTTPException) as exc:
        conn.close()
        return 0, repr(exc).encode()


def test_every_route_is_swept(live: tuple[LiveServer, list[tuple[str, str]]]) -> None:
    routes = {route for route, _ in live[1]}
    missing = routes - set(VALID)
    assert not missing, f"add a valid input for {sorted(missing)} to VALID so the sweep covers it"
    assert {"chat", "search", "guard", "describe"} <= routes


def test_hostile_bodies_get_4xx_and_leave_the_connection_usable(
        live: tuple[LiveServer, list[tuple[str, str]]]) -> None:
    server, routes = live
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.connect()
    sock = conn.sock
    failures: list[str] = []
    sent = 0
    for route, path in routes:
        endpoint = path.rsplit("/", 1)[-1]
        batch = endpoint == "batch"
        valid = json.dumps({"inputs": [VALID[route]]} if batch else {"input": VALID[route]}).encode()
        for name, body in hostile_bodies(route, batch):
            status, payload = send(conn, path, body)
            sent += 1
            if not 400 <= status < 500 and not (name in HARMLESS and status == 200):
                failures.append(f"{path} {name}: {status} {payload[:160]!r}")
            else:
                try:
                    json.loads(payload)
                except ValueError:
                    failures.append(f"{path} {name}: {status} with a body that is not JSON: {payload[:160]!r}")
            status, payload = send(conn, path, valid)
            if status != 200:
                failures.append(f"{path} valid after {name}: {status} {payload[:160]!r}")
            if conn.sock is not sock:
                failures.append(f"{path} {name}: the server closed the keep-alive connection")
                sock = conn.sock
    conn.close()
    assert sent > 200
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
