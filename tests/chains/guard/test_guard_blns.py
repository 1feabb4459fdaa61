"""The Big List of Naughty Strings (vendored in tests/data, MIT) through `screen()` and the `/guard` route:
no crash, no 5xx, a valid verdict for every string, and sanitized text that is valid, encodable UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langserve import add_routes

from chains.guard import GuardOutput, build_guard_chain, screen
from tests.conftest import make_settings

BLNS = Path(__file__).resolve().parents[2] / "data" / "blns.txt"


def naughty_strings() -> list[str]:
    lines = BLNS.read_text(encoding="utf-8").split("\n")
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_the_list_is_there() -> None:
    assert len(naughty_strings()) > 450


def test_screen_survives_every_string() -> None:
    for s in [*naughty_strings(), "\ud800 lone surrogate", "\x00" * 10, "", " "]:
        v = screen(s, source="listing")
        assert isinstance(v, GuardOutput) and v.action in ("allow", "flag", "block")
        v.text.encode("utf-8")  # no lone surrogates or other unencodable leftovers


def test_route_survives_every_string() -> None:
    app = FastAPI()
    add_routes(app, build_guard_chain(settings=make_settings()), path="/guard")
    strings = naughty_strings()
    with TestClient(app, raise_server_exceptions=False) as client:
        for i in range(0, len(strings), 50):
            chunk = strings[i : i + 50]
            r = client.post("/guard/batch", json={"inputs": [{"text": s, "source": "chat"} for s in chunk]})
            assert r.status_code == 200, (r.status_code, chunk)
            assert len(r.json()["output"]) == len(chunk)
        for s in strings[:: max(1, len(strings) // 60)]:
            r = client.post("/guard/invoke", json={"input": {"text": s}})
            assert r.status_code == 200, (r.status_code, s)


@pytest.mark.parametrize(
    "body", [b"{", b'{"input": {"text": 5}}', b'{"input": "x"}', b'{"input": {"text": "\\ud800"}}']
)
def test_route_bad_bodies_are_4xx_not_5xx(body: bytes) -> None:
    app = FastAPI()
    add_routes(app, build_guard_chain(settings=make_settings()), path="/guard")
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/guard/invoke", content=body, headers={"content-type": "application/json"})
        assert r.status_code < 500, r.text
