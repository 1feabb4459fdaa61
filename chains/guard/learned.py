"""The learned layer: logistic regression over the MiniLM embedding of the text, beside the rules.

The model (`data/guard/learned.json`: 384 weights, a bias and two thresholds) is trained by
`bench/guard_train.py` from the public corpora in `bench/guard_sources.py`, seeded and rounded so a re-run
writes the same bytes; its sha256 is pinned here and checked when it is loaded (a different file is a
configuration error, not a silent change of behaviour). A model file may also carry an n-gram view (guard3:
for the word and the character n-grams of `chains/guard/ngrams.py`, a table of log odds of attack per hashed
bucket and the weight of the view's score, a text's weighted mean log odds); it is read when present, but the
shipped model has none: on the development families the embedding alone did better (`bench/guard_learn.py`
TWO_VIEW). Nothing is loaded at import time: the model on the first `load_model()`, the embedding model on
the first text that needs embedding.

For data sources (`GuardConfig.window_sources`: listings, describe input) the probability is the max over
the text and its sentence windows (`chains/guard/windows.py`), each window embedded like a text, so an
instruction inside a longer document is not averaged away (guard4; the model is fitted with benign texts'
windows as negatives: `bench/guard_bags.py` `neg-data`); a chat turn is scored whole.

The probability becomes a weight for the noisy-OR score (`weight()`): nothing below `t_low`; from `t_low`
up to `t_flag` it grows to the flag threshold, so a probability at `t_flag` flags on its own and one in
between flags only together with a rule; above `t_flag` it grows to `MAX_WEIGHT` (below the block
threshold: the learned layer alone never blocks). Both thresholds were chosen on development families only.

The embedding is MiniLM's query embedding of `embedding_text(text)` (the first 256 tokens), the same vector
the search computes for a query: a caller that has it passes it to `screen(..., embedding=...)` and no
second ONNX run is made. Otherwise `probability()` embeds the text itself (a few ms for a short message,
tens of ms for a long one) and caches the probability by the text's sha256 (no text is kept), so the earlier
turns a conversation resends, and a listing screened again, cost nothing. One ONNX run costs ~5 ms of CPU
even for three tokens, a fixed cost whatever the length, so the single texts of concurrent requests are
embedded together (eight short turns: ~4 ms each instead of ~7): `probability()` and `aprefetch()` go
through one micro-batcher (retrieval/batching.py), which runs whatever has queued up during its last run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chains.guard.ngrams import BITS, views
from chains.guard.normalize import normalize
from chains.guard.windows import windows as split_windows
from errors import ConfigError
from livefiles import live_file
from retrieval.batching import Batcher

__all__ = [
    "MAX_WEIGHT",
    "MODEL_FILE",
    "MODEL_SHA256",
    "LearnedModel",
    "aprefetch",
    "batches",
    "cached",
    "embedding_text",
    "load_model",
    "parse_model",
    "prefetch",
    "probability",
    "warm",
]

MODEL_FILE = Path(__file__).resolve().parents[2] / "data" / "guard" / "learned.json"
# Written by `bench/guard_train.py`, which prints the new value after a re-train.
MODEL_SHA256 = "4dfb4181712b0ae13b2f59d1f79a982bcc5d31d9196ab8b5b952579e858b40db"
MAX_WEIGHT = 0.8  # the learned layer alone flags, never blocks (block_at is 0.9)
_CACHE_SIZE = 4096
_BATCH = 16  # texts per ONNX run at most (short chat turns, CPU: ~7 ms for one, ~33 ms for eight)


@dataclass(frozen=True)
class LearnedModel:
    """A logistic regression over 384-dimensional unit embeddings and, when `logodds` is set, two n-gram
    scores of the text (words, characters: `chains/guard/ngrams.py`), each the weighted mean of its n-grams'
    log odds of attack (a `(2, 2 ** bits)` table) with weight `view_weights[k]`; and its two thresholds."""

    weights: np.ndarray
    bias: float
    t_low: float
    t_flag: float
    view_weights: np.ndarray | None = None
    logodds: np.ndarray | None = None
    bits: int = BITS

    def probability(self, vector: np.ndarray, text: str | None = None) -> float:
        """P(attack) for one embedding (and its text's n-grams).

        Args:
            vector: a (384,) MiniLM embedding.
            text: the normalised text the embedding is of (read by a model with n-gram tables).
        """
        z = float(np.dot(self.weights, vector)) + self.bias
        if self.logodds is not None and self.view_weights is not None and text is not None:
            for k, (idx, vals) in enumerate(views(text, self.bits)):
                z += float(self.view_weights[k]) * float(np.dot(self.logodds[k, idx], vals))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def weight(self, p: float, flag_at: float) -> float:
        """The probability's weight in the noisy-OR score (see the module docstring).

        Args:
            p: the probability from `probability()`.
            flag_at: the score at which text is flagged.
        """
        if p < self.t_low:
            return 0.0
        if p < self.t_flag:
            return flag_at * (p - self.t_low) / (self.t_flag - self.t_low)
        return flag_at + (MAX_WEIGHT - flag_at) * (p - self.t_flag) / max(1.0 - self.t_flag, 1e-9)


def embedding_text(text: str) -> str:
    """What the learned layer embeds: the normalised text (`normalize`), as `screen()` sees it.

    Args:
        text: the raw text.
    """
    return normalize(text).text


def load_model(path: Path = MODEL_FILE, sha256: str | None = None) -> LearnedModel:
    """The model, after checking its sha256; re-read after an edit (`livefiles`), which the pinned digest
    refuses unless the code pins the new file too: the running model stays, and the refusal shows in /readyz.

    Args:
        path: the model file.
        sha256: the expected digest; `MODEL_SHA256` when None.

    Raises:
        ConfigError: at the first read, the file is missing, differs from the pinned digest, or is malformed.
    """
    expected = MODEL_SHA256 if sha256 is None else sha256
    try:
        return live_file(path, lambda text: parse_model(text.encode("utf-8"), path, expected),
                         kind=f"learned:{expected}", hot=True).get()
    except OSError as exc:
        raise ConfigError(f"the guard's learned model {path.name} cannot be read: {exc.strerror}") from None


def parse_model(raw: bytes, path: Path, expected: str) -> LearnedModel:
    """Checks the model file's digest and shape (`path` names it in errors)."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected:
        raise ConfigError(
            f"the guard's learned model {path.name} has sha256 {digest[:12]}..., expected {expected[:12]}...: "
            "re-train it with bench/guard_train.py or restore the file"
        )
    try:
        doc: dict[str, Any] = json.loads(raw)
        weights = np.asarray(doc["weights"], dtype=np.float32)
        bits = int(doc.get("ngram_bits", BITS))
        two_view = "ngram_logodds" in doc
        view_w = np.asarray(doc["ngram_view_weights"], dtype=np.float32) if two_view else None
        tables = np.asarray(doc["ngram_logodds"], dtype=np.float32) if two_view else None
        model = LearnedModel(weights, float(doc["bias"]), float(doc["t_low"]), float(doc["t_flag"]), view_w, tables,
                             bits)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the guard's learned model {path.name} is malformed: {exc}") from None
    bad_ngrams = two_view and (tables is None or tables.shape != (2, 1 << bits)
                               or view_w is None or view_w.shape != (2,))
    if weights.shape != (384,) or bad_ngrams or not 0 < model.t_low < model.t_flag < 1:
        raise ConfigError(f"the guard's learned model {path.name} is malformed: bad shape or thresholds")
    return model


class _Embedder:
    """The process's MiniLM for the guard, created on first use; probabilities cached by text digest."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        # one text per request, several requests per ONNX run (the worker thread starts on the first call)
        self.batcher: Batcher[str, np.ndarray] = Batcher(lambda texts: list(self.embed(texts)),
                                                         max_batch=_BATCH, name="guard-embed")

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from retrieval.embeddings import MiniLMEmbeddings

                    self._model = MiniLMEmbeddings(threads=1)
        vectors: np.ndarray = self._model.embed_queries(texts)
        return vectors

    def cached(self, key: bytes) -> float | None:
        with self._lock:
            p = self._cache.get(key)
            if p is not None:
                self._cache.move_to_end(key)
            return p

    def remember(self, key: bytes, p: float) -> None:
        with self._lock:
            self._cache[key] = p
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)


_EMBEDDER = _Embedder()


def probability(text: str, *, embedding: Any = None, model: LearnedModel | None = None,
                windows: bool = False) -> float:
    """P(attack) for a normalised text, from a given embedding or one computed here (cached by digest).

    Args:
        text: the normalised text (`embedding_text()` of the raw text).
        embedding: MiniLM's query embedding of that text, if the caller already has it.
        model: the model; the shipped one when None.
        windows: also score the text's sentence windows (`chains/guard/windows.py`: a data source, where an
            instruction hides in a longer text) and return the max; each window costs an ONNX run.
    """
    m = model or load_model()
    if windows and _windows_of(text):
        key = _digest(text, windows=True)
        p = _EMBEDDER.cached(key)
        if p is None:
            prefetch([text], model=m, windows=True)
            p = _EMBEDDER.cached(key)
        if p is not None:
            return p
    if embedding is not None:
        return m.probability(np.asarray(embedding, dtype=np.float32), text)
    key = _digest(text)
    p = _EMBEDDER.cached(key)
    if p is None:
        p = m.probability(_EMBEDDER.batcher(text), text)
        _EMBEDDER.remember(key, p)
    return p


def cached(text: str, *, windows: bool = False) -> float | None:
    """The probability already computed for a normalised text (`probability()`'s cache), or None.

    Args:
        text: the normalised text (`embedding_text()` of the raw text).
        windows: the probability pooled over the text's windows (`probability(..., windows=True)`).
    """
    return _EMBEDDER.cached(_digest(text, windows=windows and bool(_windows_of(text))))


def prefetch(texts: list[str], *, model: LearnedModel | None = None, windows: bool = False) -> None:
    """Computes the probabilities of the texts not cached yet in one ONNX run (a few listings at once cost
    less than one by one); `probability()` then finds them in the cache.

    Args:
        texts: normalised texts (`embedding_text()`).
        model: the model; the shipped one when None.
        windows: pool over the texts' sentence windows too (see `probability()`).
    """
    todo = _uncached(texts, windows)
    if todo:
        flat, owners = _flatten(todo)
        _remember(todo, flat, _EMBEDDER.embed(flat), owners, model)


async def aprefetch(texts: list[str], *, model: LearnedModel | None = None, windows: bool = False) -> None:
    """`prefetch` for an event loop: the texts not cached yet are embedded by the batcher's worker thread,
    together with whatever other requests queued meanwhile, while the loop serves others.

    Args:
        texts: normalised texts (`embedding_text()`).
        model: the model; the shipped one when None.
        windows: pool over the texts' sentence windows too (see `probability()`).
    """
    todo = _uncached(texts, windows)
    if todo:
        flat, owners = _flatten(todo)
        futures = [_EMBEDDER.batcher.submit(t) for t in flat]  # all queued first: one run for them
        vectors = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        _remember(todo, flat, vectors, owners, model)


def _windows_of(text: str) -> list[str]:
    """What the learned layer embeds of a normalised text's windows (each normalised as a text is)."""
    return [embedding_text(w) for w in split_windows(text)]


def _uncached(texts: list[str], windows: bool) -> dict[bytes, list[str]]:
    """The texts whose probability is not cached yet, by digest (of the pooled probability, for a text that
    has windows, when `windows`), each with what to embed for it: the text, then its windows when pooled."""
    out: dict[bytes, list[str]] = {}
    for t in texts:
        parts = [t, *_windows_of(t)] if windows else [t]
        k = _digest(t, windows=len(parts) > 1)
        if _EMBEDDER.cached(k) is None:
            out[k] = parts
    return out


def _flatten(todo: dict[bytes, list[str]]) -> tuple[list[str], list[int]]:
    """Every text to embed, and the index in `todo` of the entry it belongs to."""
    flat = [text for parts in todo.values() for text in parts]
    owners = [i for i, parts in enumerate(todo.values()) for _ in parts]
    return flat, owners


def _remember(todo: dict[bytes, list[str]], flat: list[str], vectors: Any, owners: list[int],
              model: LearnedModel | None) -> None:
    """Caches each entry's probability: the max over its text and windows."""
    m = model or load_model()
    best = [0.0] * len(todo)
    for text, vector, i in zip(flat, vectors, owners, strict=True):
        best[i] = max(best[i], m.probability(vector, text))
    for i, k in enumerate(todo):
        _EMBEDDER.remember(k, best[i])


def batches() -> tuple[int, int]:
    """(ONNX runs, texts) the batcher has made so far in this process (to see the batching work)."""
    return _EMBEDDER.batcher.batches, _EMBEDDER.batcher.items


def warm() -> None:
    """Loads the model and the embedding model now (a server's start-up), not on the first request."""
    load_model()
    _EMBEDDER.embed(["warm up"])


def _digest(text: str, *, windows: bool = False) -> bytes:
    """The cache key of a text's probability (of its pooled probability over windows when `windows`)."""
    prefix = b"windows\0" if windows else b""
    return hashlib.sha256(prefix + text.encode("utf-8", "surrogatepass")).digest()
