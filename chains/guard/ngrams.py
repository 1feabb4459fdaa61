"""The learned layer's second view of a text: hashed word and character n-grams (numpy only, no model).

The MiniLM embedding says what a text is about; it is weak on a jailbreak whose wording it has not met in
a family it was trained on. Surface features (words, word pairs, character 3- and 5-grams) see what the
embedding smooths away: the imperative shape "ignore ... instructions", "you are now", "from now on", role
markers, odd spacing. Each n-gram is hashed into `2 ** bits` buckets by a fixed function (no Python `hash()`,
which is salted per process), so training and serving agree in every process; values are 1 + log(count),
each view (words, characters) scaled to sum to 1. The learned layer turns each view into one number, the
weighted mean of its n-grams' log odds of attack against benign (naive Bayes, `learned.py`).

Only the first `MAX_CHARS` characters count (the embedding reads about as much: 256 tokens), which bounds the
cost: ~0.1 ms for a chat turn, well under a millisecond at the limit.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

__all__ = ["BITS", "MAX_CHARS", "View", "views"]

BITS = 16  # 65,536 buckets
MAX_CHARS = 1500
_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the high bits
_PRIME = np.uint64(1_000_003)
_CHAR_NS = (3, 5)


def _bucket(h: np.ndarray, salt: int, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        mixed = (h ^ np.uint64(salt)) * _MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int64)


View = tuple[np.ndarray, np.ndarray]  # (bucket indices, values summing to 1)


def _tf(idx: np.ndarray) -> View:
    """Unique buckets with 1 + log(count), scaled to sum to 1 (a score over them is a weighted mean)."""
    if idx.size == 0:
        return idx, np.zeros(0, dtype=np.float32)
    uniq, counts = np.unique(idx, return_counts=True)
    vals = 1.0 + np.log(counts.astype(np.float64))
    vals /= vals.sum()
    return uniq, vals.astype(np.float32)


def views(text: str, bits: int = BITS) -> tuple[View, View]:
    """The word view (words and word pairs) and the character view (3- and 5-grams) of a text.

    Args:
        text: the normalised text (`embedding_text()`), lower-cased here.
        bits: the buckets are `2 ** bits`.
    """
    low = _SPACE.sub(" ", text[:MAX_CHARS].lower()).strip()
    words = _WORD.findall(low)
    if words:
        w = np.array([zlib.crc32(t.encode("utf-8", "surrogatepass")) for t in words], dtype=np.uint64)
        with np.errstate(over="ignore"):
            pairs = w[:-1] * _PRIME + w[1:] + np.uint64(1 << 40)
        word_idx = np.concatenate([_bucket(w, 1, bits), _bucket(pairs, 2, bits)])
    else:
        word_idx = np.zeros(0, dtype=np.int64)
    cps = np.frombuffer(f" {low} ".encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    char_parts = []
    for n in _CHAR_NS:
        if cps.size < n:
            continue
        h = np.zeros(cps.size - n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(n):
                h = h * _PRIME + cps[k : cps.size - n + 1 + k]
        char_parts.append(_bucket(h, 10 + n, bits))
    char_idx = np.concatenate(char_parts) if char_parts else np.zeros(0, dtype=np.int64)
    return _tf(word_idx), _tf(char_idx)
