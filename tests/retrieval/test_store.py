"""The listings collection answers a query the same way in every process: HNSW's `ef_search` is set when the
store opens (an index under Chroma's sync threshold is rebuilt at each load, on several threads, and at the
default breadth the tail of 100 candidates changed from one process to the next)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import FakeEmbeddings

from retrieval.store import ListingsStore

_QUERY = """
import sys, chromadb, numpy as np
col = chromadb.PersistentClient(path=sys.argv[1]).get_collection("listings", embedding_function=None)
q = np.random.default_rng(1).normal(size=(20, 384)).astype(np.float32)
print(repr(col.query(query_embeddings=q, n_results=100, include=[])["ids"]))
"""


def _index(path: Path) -> Any:
    """640 clustered unit vectors (the shipped index's size) in a collection made as an old ingest made it."""
    import chromadb

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(40, 384))
    x = centers[rng.integers(0, 40, 640)] + 0.6 * rng.normal(size=(640, 384))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    client = chromadb.PersistentClient(path=str(path))
    client.create_collection("listings", metadata={"hnsw:space": "cosine"}, embedding_function=None).add(
        ids=[f"lst-{i:04d}" for i in range(640)], embeddings=x)
    return client


def _answers(path: Path, n: int) -> set[str]:
    return {subprocess.run([sys.executable, "-c", _QUERY, str(path)], capture_output=True, text=True,
                           check=True).stdout for _ in range(n)}


def test_every_process_gets_the_same_candidates(tmp_path: Path) -> None:
    client = _index(tmp_path)
    assert client.get_collection("listings").configuration["hnsw"]["ef_search"] == 100  # Chroma's default
    unstable = _answers(tmp_path, 3)
    store = ListingsStore(client=client, collection_name="listings", embeddings=FakeEmbeddings(size=384),
                          ef_search=400)
    assert store.collection.configuration["hnsw"]["ef_search"] == 400
    del store, client
    assert len(_answers(tmp_path, 3)) == 1
    assert len(unstable) > 1  # the premise: at the default breadth, processes disagreed
