"""MiniLM embeddings of the guard's corpus, cached by text and model (bench/.cache/guard/embeddings-<model>.npz).

What is embedded is what the learned layer sees at run time: the guard's normalised text
(`chains.guard.normalize`), as one query (`MiniLMEmbeddings.embed_queries`, the first 256 tokens).

    .venv/bin/python bench/guard_embed.py       # embeds what is not cached yet (~10 minutes the first time)
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chains.guard.learned import embedding_text  # noqa: E402

__all__ = ["embed_all"]

CACHE_DIR = ROOT / "bench" / ".cache" / "guard"


def _cache_file() -> Path:
    """The cache of the embedding model in use (another model's vectors are another file)."""
    from retrieval.onnx_model import model_file, model_id

    return CACHE_DIR / f"embeddings-{model_id(model_file()).replace(':', '-')}.npz"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def embed_all(texts: Sequence[str], *, batch: int = 16, progress: bool = True) -> np.ndarray:
    """(n, 384) float32 embeddings of `texts` as the learned layer sees them, computing only what the cache
    lacks (and saving it back).

    Args:
        texts: raw texts (normalised here, as `screen()` does).
        batch: texts per ONNX run.
        progress: print progress to stderr.
    """
    from retrieval.embeddings import MiniLMEmbeddings

    cache: dict[str, np.ndarray] = {}
    cache_file = _cache_file()
    if cache_file.exists():
        with np.load(cache_file) as z:
            cache = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
    views = [embedding_text(t) for t in texts]
    keys = [_key(v) for v in views]
    todo = sorted({k: v for k, v in zip(keys, views, strict=True) if k not in cache}.items(), key=lambda kv: len(kv[1]))
    if todo:
        model = MiniLMEmbeddings(threads=1)
        started = time.monotonic()
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            vecs = model.embed_queries([v for _, v in chunk])
            for (k, _), vec in zip(chunk, vecs, strict=True):
                cache[k] = vec
            if progress and (i // batch) % 20 == 0:
                rate = (i + len(chunk)) / max(time.monotonic() - started, 1e-9)
                print(f"embedded {i + len(chunk)}/{len(todo)} ({rate:.1f}/s)", file=sys.stderr)
            if (i // batch) % 100 == 99:
                _save(cache, cache_file)
        _save(cache, cache_file)
    return np.stack([cache[k] for k in keys]).astype(np.float32)


def _save(cache: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(cache)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array(keys), vectors=np.stack([cache[k] for k in keys]))
    tmp.replace(path)


if __name__ == "__main__":
    from bench.guard_sources import load_all

    samples = load_all()
    vectors = embed_all([s.text for s in samples])
    print(vectors.shape, "->", _cache_file())
