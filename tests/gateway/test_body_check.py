"""The body check (gateway/body_check.py, gateway/json_scan.py) on its own: JSON depth found without
recursion and without being fooled by brackets or escapes inside strings, in linear time on hostile text;
invalid UTF-8, lone surrogates, non-finite and over-long numbers refused with the error that names them; valid
JSON and non-JSON passed on. Through the app: the refusal's status, a JSON body, the X-Request-ID and the
ledger row. The sweep over every route on one connection is tests/test_hostile_bodies.py."""

from __future__ import annotations

import json
import random
import time

import pytest
from fastapi.testclient import TestClient

from errors import BodyTooDeep, InvalidUnicode, MalformedBody
from gateway.body_check import check_body
from gateway.json_scan import json_depth_over
from server import create_app
from tests.conftest import make_settings
from tests.gateway.usage_support import rows


@pytest.mark.parametrize(("text", "depth"), [
    ('{"a": 1}', 1),
    ('{"a": [1, {"b": []}]}', 4),
    ('[[[]]]', 3),
    ('{"a": "[[[[[[[[[["}', 1),  # brackets in a string
    ('{"a": "\\"[[[[[[", "b": [[]]}', 3),  # an escaped quote does not end the string
    ('{"a": "\\\\", "b": [[[]]]}', 4),  # an escaped backslash does (the quote after it is real)
    ('["unterminated [[[[[[', 1),  # an unterminated string swallows the rest
])
def test_depth_is_counted_outside_strings(text: str, depth: int) -> None:
    body = text.encode()
    assert not json_depth_over(body, depth) and (depth == 0 or json_depth_over(body, depth - 1))


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _random_json(rnd: random.Random, depth: int) -> object:
    if depth == 0 or rnd.random() < 0.25:
        return rnd.choice(["", "[{]}", '"quoted" [', "back\\slash ]", "\u00e9}", 3, 2.5, None, True])
    if rnd.random() < 0.5:
        return [_random_json(rnd, depth - 1) for _ in range(rnd.randrange(0, 4))]
    return {rnd.choice(["k", "[", "}", '"']) + str(i): _random_json(rnd, depth - 1) for i in range(rnd.randrange(0, 4))}


def test_depth_agrees_with_the_parsed_value_on_random_json() -> None:
    rnd = random.Random(21)
    for _ in range(500):
        value = _random_json(rnd, rnd.randrange(1, 12))
        body, depth = json.dumps(value).encode(), _depth(value)
        assert not json_depth_over(body, depth), body
        assert depth == 0 or json_depth_over(body, depth - 1), body


def test_depth_scan_is_linear_on_hostile_text() -> None:
    # An unterminated string followed by many escaped quotes: a backtracking tokenizer would retry the
    # rest of the body at each of them (hours for this body); this one reads it once.
    body = b'[[[[[[[[[["' + b'\\"[' * 80_000
    started = time.perf_counter()
    assert not json_depth_over(body, 20) and check_body(body, max_depth=20) is None
    assert time.perf_counter() - started < 5  # quadratic would be minutes


def test_ten_thousand_deep_is_refused_naming_the_limit() -> None:
    err = check_body(b'{"input": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", max_depth=64)
    assert isinstance(err, BodyTooDeep) and err.status == 400 and "64" in err.message


@pytest.mark.parametrize("raw", [b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}', b'{"a": "\xe2\x82"}', b"\xc3\x28"])
def test_invalid_utf8_is_400(raw: bytes) -> None:
    err = check_body(raw, max_depth=64)
    assert isinstance(err, MalformedBody) and err.status == 400 and err.code == "invalid_utf8"


@pytest.mark.parametrize(("text", "lone"), [
    ('{"a": "\\ud800"}', "\\ud800"),
    ('{"a": "x\\uDC00y"}', "\\uDC00"),
    ('{"a": "\\udc00\\ud800"}', "\\udc00"),  # a pair in the wrong order is two lone halves
    ('{"\\ud83d": 1}', "\\ud83d"),  # in a key
])
def test_lone_surrogates_are_422_naming_the_escape(text: str, lone: str) -> None:
    err = check_body(text.encode(), max_depth=64)
    assert isinstance(err, InvalidUnicode) and err.status == 422 and lone in err.message
    json.dumps({"message": err.message}).encode("ascii")  # the message itself is plain ASCII


@pytest.mark.parametrize("text", ['{"a": "\\ud83d\\ude00"}', '{"a": "\\\\ud800"}', '{"a": "\\u00e9 \\n"}'])
def test_pairs_and_escaped_backslashes_pass(text: str) -> None:
    assert check_body(text.encode(), max_depth=64) is None


@pytest.mark.parametrize(("text", "code"), [
    ('{"a": NaN}', "non_finite_number"),
    ('{"a": -Infinity}', "non_finite_number"),
    ('{"a": 1e999}', "non_finite_number"),
    ('{"a": ' + "7" * 5000 + "}", "number_too_long"),
])
def test_numbers_python_cannot_hold_are_400(text: str, code: str) -> None:
    err = check_body(text.encode(), max_depth=64)
    assert isinstance(err, MalformedBody) and err.status == 400 and err.code == code


@pytest.mark.parametrize("text", ['{"a": "NaN Infinity 1e999"}', '{"a": 1e300}', "not json at all", "", '{"a": '])
def test_valid_or_plainly_broken_json_passes_on(text: str) -> None:
    assert check_body(text.encode(), max_depth=64) is None  # broken JSON: the route's own 422


def test_refusals_through_the_app_are_json_with_a_request_id_and_a_ledger_row() -> None:
    app = create_app(make_settings())
    with TestClient(app) as c:
        deep = c.post("/search/invoke", content=b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        lone = c.post("/search/invoke", content=b'{"input": {"query": "\\ud800"}}')
        bad = c.post("/guard/invoke", content=b'{"input": {"text": "\xff"}}')
        big = c.post("/guard/invoke", content=b"[" + b" " * 300_000 + b"]")
        assert deep.status_code == 400 and deep.json()["error"]["code"] == "json_too_deep"
        assert lone.status_code == 422 and "\\ud800" in lone.json()["error"]["message"]
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_utf8"
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
        assert all(r.headers.get("X-Request-ID") for r in (deep, lone, bad, big))
        assert [r["status"] for r in rows(app)] == [400, 422, 400, 413]


def test_an_invalid_batch_item_is_422_like_invoke() -> None:
    with TestClient(create_app(make_settings())) as c:
        r = c.post("/search/batch", json={"inputs": [{"query": "roof"}, {"query": "x" * 600}]})
        assert r.status_code == 422 and "at most 500" in r.text
        r = c.post("/guard/batch", json={"inputs": [{"text": "x" * 5000}]})  # a model titled apart from its class
        assert r.status_code == 422 and "the limit is 4000" in r.text
