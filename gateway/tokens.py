"""Offline token counting for the gateway's reservations, with quicktok's bundled encodings.

tiktoken fetches its BPE rank files from the internet on first use; this service must run offline. The
`quicktok-v1` package ships the same encodings (cl100k_base, o200k_base, derived from tiktoken's, MIT) and
counts exactly as tiktoken's `encode_ordinary` does (tests/gateway/test_tokens.py compares them on a corpus),
through its public `quicktok.get_encoding(name)`. An encoding takes about half a second to load, so
`warm_up()` loads them in a thread at start-up; until then, or if the data cannot be read (logged once),
counting estimates one token per 3 characters rather than blocking or failing a request.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

__all__ = ["count_messages", "count_tokens", "encoding_for_model", "load_encoding", "warm_up"]

log = logging.getLogger("skymarket.gateway.tokens")

ENCODINGS = ("cl100k_base", "o200k_base")
# OpenAI's chat format adds a few tokens per message and per reply (their cookbook's counting recipe).
_PER_MESSAGE = 4
_PER_REPLY = 3
_lock = threading.Lock()


def load_encoding(name: str) -> Any:
    """The bundled encoding `name`, loaded without network access (quicktok caches it per process).

    Args:
        name: "cl100k_base" or "o200k_base".

    Raises:
        KeyError: unknown encoding name.
        OSError, RuntimeError: the bundled data is missing or malformed.
    """
    if name not in ENCODINGS:
        raise KeyError(name)
    import quicktok

    return quicktok.get_encoding(name)


def encoding_for_model(model: str) -> str:
    """The encoding name of an OpenAI model (o200k for the 4o/4.1/o-series and newer, cl100k before)."""
    m = model.lower().rsplit("/", 1)[-1]
    if m.startswith(("gpt-3.5", "gpt-4-", "text-embedding")) or m == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


_ready: dict[str, Any] = {}
_failed = False


def warm_up(models: tuple[str, ...] = ("gpt-4o-mini",)) -> None:
    """Loads the encodings of `models` (about 0.5 s each); call it from a thread at start-up."""
    global _failed
    for model in models:
        name = encoding_for_model(model)
        if name in _ready or _failed:
            continue
        with _lock:
            try:
                _ready[name] = load_encoding(name)
            except (OSError, RuntimeError, ValueError, ImportError) as exc:
                _failed = True
                log.error("token data unavailable (%s): estimating 1 token per 3 characters", type(exc).__name__)


def count_tokens(text: str, *, model: str = "gpt-4o-mini") -> int:
    """Tokens in `text` for `model`; special-token text counts as ordinary text (tiktoken's `encode_ordinary`).

    Never blocks on loading: until `warm_up` has loaded the encoding (or if the data is missing), this
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
        return int(enc.count(text))
    return (len(text) + 2) // 3


_SHORT = 32  # roles, names, short labels: the same few strings in every request, counted once


def _count_short(text: str, encoding: str) -> int:
    enc = _ready.get(encoding)
    if enc is None:
        return (len(text) + 2) // 3  # not cached: the real count replaces it once the encoding is loaded
    return _count_short_cached(text, encoding)


@lru_cache(maxsize=4096)
def _count_short_cached(text: str, encoding: str) -> int:
    return int(_ready[encoding].count(text))


def count_messages(contents: list[str], *, model: str = "gpt-4o-mini") -> int:
    """Prompt tokens of a chat request: each message's text plus OpenAI's per-message framing."""
    return sum(count_tokens(c, model=model) + _PER_MESSAGE for c in contents) + _PER_REPLY
