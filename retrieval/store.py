"""The Chroma side: a client (embedded or server) and the LangChain vector store over our collection.

Nothing here connects at import time. Telemetry is always off. The collection has no embedding function of
its own (langchain-chroma passes none, and so do we): vectors always come from our `Embeddings`.

The embedded client (`CHROMA_PATH`) is for one process: Chroma documents `PersistentClient` as not
process-safe (each client keeps its own HNSW index in memory and flushes it on its own). Several serving
processes (`skymarket serve --workers N`) share one `chroma run` server through CHROMA_HOST/CHROMA_PORT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from settings import Settings

__all__ = ["ListingsStore", "build_chroma_client", "build_vectorstore", "query_ids", "query_ids_many",
           "update_metadatas"]

log = logging.getLogger("skymarket.search")


def build_chroma_client(*, settings: Settings) -> Any:
    """An embedded `PersistentClient` at `CHROMA_PATH`, or an `HttpClient` when CHROMA_HOST/PORT are set.

    Args:
        settings: the service settings.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host is not None and settings.chroma_port is not None:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


class ListingsStore(Chroma):
    """langchain-chroma's vector store over the listings, plus `collection`: the same chromadb collection,
    opened through chromadb's public client API, for the id-only queries search needs (`query_ids_many`).

    Args:
        client: the chromadb client.
        collection_name: the listings collection, created (cosine space) when missing.
        embeddings: the embeddings; never Chroma's default function.
        ef_search: HNSW's search breadth, set on the collection (new or existing) when it differs.
    """

    def __init__(self, *, client: Any, collection_name: str, embeddings: Embeddings, ef_search: int = 400) -> None:
        super().__init__(collection_name=collection_name, embedding_function=embeddings, client=client,
                         collection_metadata={"hnsw:space": "cosine"})
        # embedding_function=None: chromadb's default would be its own model, downloaded on first use
        self.collection = client.get_collection(collection_name, embedding_function=None)
        _set_ef_search(self.collection, ef_search)


def _set_ef_search(collection: Any, ef_search: int) -> None:
    """Sets HNSW's `ef_search` on the collection (chromadb's public `modify`), unless it already has it. An
    index built before this setting existed gets it the first time it is opened."""
    hnsw = (collection.configuration or {}).get("hnsw") or {}
    if hnsw.get("ef_search") == ef_search:
        return
    try:
        collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
    except Exception as exc:  # a read-only server, an older Chroma: search still works, only less stable
        log.warning("could not set ef_search=%d on collection %s: %s", ef_search, collection.name, exc)


def build_vectorstore(*, settings: Settings, embeddings: Embeddings, client: Any = None) -> ListingsStore:
    """The listings collection (cosine space), created when missing.

    Args:
        settings: the service settings (collection name, where Chroma lives).
        embeddings: the embeddings; never Chroma's default function.
        client: an existing Chroma client; built from settings when None.
    """
    return ListingsStore(client=client if client is not None else build_chroma_client(settings=settings),
                         collection_name=settings.chroma_collection, embeddings=embeddings,
                         ef_search=settings.chroma_ef_search)


def query_ids(store: ListingsStore, vector: list[float], *, k: int, where: dict[str, Any] | None = None) -> list[str]:
    """Ids of the k nearest vectors, nearest first, without fetching documents or metadata.

    langchain-chroma's searches always fetch documents and metadatas (each holds a whole listing): about 4x
    slower than ids alone on our data. Search only needs ids, so this one call goes to the collection itself
    (chromadb's `Collection.query`).
    """
    return query_ids_many(store, [vector], k=k, where=where)[0]


def query_ids_many(
    store: ListingsStore, vectors: Sequence[Sequence[float]] | np.ndarray, *, k: int,
    where: dict[str, Any] | None = None,
) -> list[list[str]]:
    """`query_ids` for several vectors in one Chroma call (cheaper per vector than one call each)."""
    if len(vectors) == 0:
        return []
    query = np.asarray(vectors, dtype=np.float32)
    result = store.collection.query(query_embeddings=query, n_results=k, where=where, include=["distances"])
    return [list(ids) for ids in result["ids"]]


def update_metadatas(store: ListingsStore, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
    """Updates the metadata of existing ids, keeping their vectors and documents (nothing is embedded).

    langchain-chroma can only update documents, which re-embeds them; a changed price does not need that, so
    this goes to the collection itself (chromadb's `Collection.update`).
    """
    store.collection.update(ids=ids, metadatas=metadatas)  # type: ignore[arg-type]
