"""Offline token counting: quicktok's bundled encodings give known token ids, and the same counts as tiktoken
(built here from the same ranks, as the gateway did before) on a corpus of listings, guard patterns and the
Big List of Naughty Strings; the estimate before warm-up; the short-string cache."""

from __future__ import annotations

import socket
import struct
from importlib import resources
from pathlib import Path

import pytest
import tiktoken

from gateway import tokens

ROOT = Path(__file__).resolve().parents[2]


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
    with pytest.raises(KeyError):
        tokens.load_encoding("p50k_base")


# tiktoken_ext.openai_public's patterns and special tokens (tiktoken 0.14): the reference the gateway used to
# build itself from quicktok's rank files (`u32 count`, then per token `u16 length, bytes, u32 rank`).
_PATTERNS = {
    "cl100k_base": (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
                    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""", "cl100k.vocab"),
    "o200k_base": ("|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+""",
    ]), "o200k.vocab"),
}


def _tiktoken_reference(name: str) -> tiktoken.Encoding:
    pattern, filename = _PATTERNS[name]
    data = resources.files("quicktok").joinpath("data", filename).read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    ranks, pos = {}, 4
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, pos)
        token = data[pos + 2:pos + 2 + length]
        (rank,) = struct.unpack_from("<I", data, pos + 2 + length)
        ranks[token], pos = rank, pos + 6 + length
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


def _corpus() -> list[str]:
    texts = (ROOT / "tests" / "data" / "blns.txt").read_text(encoding="utf-8").splitlines()
    texts += (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    texts += (ROOT / "bench" / "corpora" / "benign_marketplace.txt").read_text(encoding="utf-8").splitlines()
    texts += [(ROOT / "data" / "guard" / "patterns.yaml").read_text(encoding="utf-8"), "<|endoftext|> as text"]
    return [t for t in texts if t]


@pytest.mark.parametrize(("model", "name"), [("gpt-4o-mini", "o200k_base"), ("gpt-3.5-turbo", "cl100k_base")])
def test_counts_as_tiktoken_does(model: str, name: str) -> None:
    tokens.warm_up((model,))
    reference = _tiktoken_reference(name)
    corpus = _corpus()
    assert len(corpus) > 900
    differ = [t[:60] for t in corpus if tokens.count_tokens(t, model=model) != len(reference.encode_ordinary(t))]
    assert differ == []


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
