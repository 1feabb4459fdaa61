"""Offline token counting for the gateway's reservations: tiktoken encodings built from bundled ranks.

tiktoken fetches its BPE rank files from the internet on first use; this service must run offline. The
`quicktok-v1` package ships the same ranks (cl100k_base, o200k_base, derived from tiktoken, MIT) in a
small binary format: `u32 count`, then per token `u16 length, bytes, u32 rank`. We parse them and build
`tiktoken.Encoding` directly with tiktoken's own regex patterns and special tokens, so no cache folder and
no environment variable is involved. The encodings are built by `warm_up()` in a thread at start-up;
until then, or if the data cannot be read (logged once), counting estimates one token per 3 characters
rather than blocking or failing a request.
"""

from __future__ import annotations

import logging
import struct
import threading
from functools import lru_cache
from importlib import resources

import tiktoken

__all__ = ["count_messages", "count_tokens", "encoding_for_model", "load_encoding", "warm_up"]

log = logging.getLogger("skymarket.gateway.tokens")

# tiktoken_ext.openai_public's patterns and special tokens (tiktoken 0.14), copied because its constructors
# call load_tiktoken_bpe, which downloads.
_CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
               r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    # name: (quicktok data file, pattern, special tokens)
    "cl100k_base": ("cl100k.vocab", _CL100K_PAT, {
        "<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276,
    }),
    "o200k_base": ("o200k.vocab", _O200K_PAT, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}
# OpenAI's chat format adds a few tokens per message and per reply (their cookbook's counting recipe).
_PER_MESSAGE = 4
_PER_REPLY = 3
_lock = threading.Lock()


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    (count,) = struct.unpack_from("<I", data, 0)
    ranks: dict[bytes, int] = {}
    pos = 4
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, pos)
        pos += 2
        token = data[pos:pos + length]
        pos += length
        (rank,) = struct.unpack_from("<I", data, pos)
        pos += 4
        ranks[token] = rank
    if pos != len(data):
        raise ValueError("trailing bytes: not a quicktok vocab file")
    return ranks


@lru_cache(maxsize=4)
def load_encoding(name: str) -> tiktoken.Encoding:
    """Builds a tiktoken encoding from the bundled ranks, without network access.

    Args:
        name: "cl100k_base" or "o200k_base".

    Raises:
        KeyError: unknown encoding name.
        OSError, ValueError: the bundled data is missing or malformed.
    """
    filename, pattern, special = _ENCODINGS[name]
    data = resources.files("quicktok").joinpath("data", filename).read_bytes()
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=_parse_ranks(data),
                             special_tokens=special)


def encoding_for_model(model: str) -> str:
    """The encoding name of an OpenAI model (o200k for the 4o/4.1/o-series and newer, cl100k before)."""
    m = model.lower().rsplit("/", 1)[-1]
    if m.startswith(("gpt-3.5", "gpt-4-", "text-embedding")) or m == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


_ready: dict[str, tiktoken.Encoding] = {}
_failed = False


def warm_up(models: tuple[str, ...] = ("gpt-4o-mini",)) -> None:
    """Builds the encodings of `models` (about 0.5 s each); call it from a thread at start-up."""
    global _failed
    for model in models:
        name = encoding_for_model(model)
        if name in _ready or _failed:
            continue
        with _lock:
            try:
                _ready[name] = load_encoding(name)
            except (OSError, ValueError, ModuleNotFoundError) as exc:
                _failed = True
                log.error("token data unavailable (%s): estimating 1 token per 3 characters", type(exc).__name__)


def count_tokens(text: str, *, model: str = "gpt-4o-mini") -> int:
    """Tokens in `text` for `model`; special-token text counts as ordinary text.

    Never blocks on loading: until `warm_up` has built the encoding (or if the data is missing), this
    returns an estimate of one token per 3 characters, on the high side of English text on purpose.

    Args:
        text: the text to count.
        model: the model whose tokenizer to use (unknown names use o200k_base).
    """
    if not text:
        return 0
    if len(text) <= _SHORT:
        return _count_short(text, encoding_for_model(model))
    enc = _ready.get(encoding_for_model(model))
    if enc is not None:
        return len(enc.encode_ordinary(text))
    return (len(text) + 2) // 3


_SHORT = 32  # roles, names, short labels: the same few strings in every request, counted once


def _count_short(text: str, encoding: str) -> int:
    enc = _ready.get(encoding)
    if enc is None:
        return (len(text) + 2) // 3  # not cached: the real count replaces it once the encoding is built
    return _count_short_cached(text, encoding)


@lru_cache(maxsize=4096)
def _count_short_cached(text: str, encoding: str) -> int:
    return len(_ready[encoding].encode_ordinary(text))


def count_messages(contents: list[str], *, model: str = "gpt-4o-mini") -> int:
    """Prompt tokens of a chat request: each message's text plus OpenAI's per-message framing."""
    return sum(count_tokens(c, model=model) + _PER_MESSAGE for c in contents) + _PER_REPLY
