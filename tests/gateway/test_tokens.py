"""Offline token counting: tiktoken encodings built from the bundled ranks match known token ids."""

from __future__ import annotations

import socket

import pytest

from gateway import tokens


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("token counting tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_known_ids() -> None:
    cl = tokens.load_encoding("cl100k_base")
    o2 = tokens.load_encoding("o200k_base")
    assert cl.encode("hello world") == [15339, 1917]
    assert cl.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert o2.encode("hello world") == [24912, 2375]
    assert cl.decode(cl.encode("Drone roof inspection in Troy, MI ✈️")) == "Drone roof inspection in Troy, MI ✈️"


def test_count_after_warm_up() -> None:
    tokens.warm_up(("gpt-4o-mini", "gpt-3.5-turbo"))
    assert tokens.count_tokens("hello world", model="gpt-4o-mini") == 2
    assert tokens.count_tokens("tiktoken is great!", model="gpt-3.5-turbo") == 6
    assert tokens.count_tokens("") == 0
    assert tokens.count_messages(["hello world"], model="gpt-4o-mini") == 2 + 4 + 3


def test_model_to_encoding() -> None:
    assert tokens.encoding_for_model("gpt-3.5-turbo") == "cl100k_base"
    assert tokens.encoding_for_model("gpt-4") == "cl100k_base"
    assert tokens.encoding_for_model("gpt-4o-mini") == "o200k_base"
    assert tokens.encoding_for_model("some-future-model") == "o200k_base"


def test_estimate_before_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_ready", {})
    assert tokens.count_tokens("x" * 30) == 10  # 1 per 3 characters: on the high side, never blocking


def test_short_strings_are_counted_once_and_the_same() -> None:
    tokens.warm_up(("gpt-4o-mini",))
    enc = tokens.load_encoding("o200k_base")
    for text in ("user", "assistant", "Roof inspection in Troy?", "x" * 32):
        assert tokens.count_tokens(text) == len(enc.encode_ordinary(text))
        assert tokens.count_tokens(text) == len(enc.encode_ordinary(text))  # the cached answer
    assert tokens.count_tokens("y" * 33) == len(enc.encode_ordinary("y" * 33))
