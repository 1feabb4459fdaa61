"""Fixtures for the search tests: a real `chroma run` server (started once per session), a small listings
subset, shared embeddings, and an ingested index per backend (embedded PersistentClient and HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrieval.embeddings import MiniLMEmbeddings
from retrieval.engine import SearchEngine, build_search_engine
from retrieval.ingest import ingest
from retrieval.store import build_vectorstore
from settings import Settings
from tests.conftest import ROOT, make_settings
from tests.services import ChromaServer

SUBSET_SIZE = 80


class CachedEmbeddings(MiniLMEmbeddings):
    """The real model, memoised per text: both backends (and re-runs) embed each text once per session."""

    def __init__(self) -> None:
        super().__init__()
        self.memo: dict[str, list[float]] = {}
        self.calls = 0  # texts actually embedded
        self.requested = 0  # texts asked for (cached or not)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.requested += len(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.calls += len(todo)
            self.memo.update(zip(todo, super().embed_documents(todo), strict=True))
        return [self.memo[t] for t in texts]


@pytest.fixture(scope="session")
def embeddings() -> CachedEmbeddings:
    return CachedEmbeddings()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`chroma run` on a free port (tests/services.py), for the whole session."""
    try:
        server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.host, server.port
    server.stop()


@pytest.fixture(scope="session")
def all_rows() -> list[dict[str, Any]]:
    with (ROOT / "data" / "listings.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def subset_rows(all_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every 8th listing: 80 listings spread over categories and counties."""
    return all_rows[:: len(all_rows) // SUBSET_SIZE][:SUBSET_SIZE]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def backend_settings(backend: str, tmp: Path, server: tuple[str, int] | None, collection: str) -> Settings:
    if backend == "server":
        assert server is not None
        return make_settings(chroma_host=server[0], chroma_port=server[1], chroma_collection=collection)
    return make_settings(chroma_path=tmp / "chroma", chroma_collection=collection)


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, embeddings: CachedEmbeddings
) -> Settings:
    """Settings with an empty collection of its own, on the parametrised backend."""
    server = request.getfixturevalue("chroma_server") if backend == "server" else None
    name = "t" + str(abs(hash(request.node.nodeid)))[:12]
    return backend_settings(backend, tmp_path, server, name)


@pytest.fixture(scope="session")
def _engines() -> dict[str, SearchEngine]:
    return {}


@pytest.fixture
def engine(
    backend: str,
    _engines: dict[str, SearchEngine],
    tmp_path_factory: pytest.TempPathFactory,
    subset_rows: list[dict[str, Any]],
    embeddings: CachedEmbeddings,
    request: pytest.FixtureRequest,
) -> SearchEngine:
    """A search engine over the 80-listing subset, ingested once per backend per session."""
    if backend not in _engines:
        tmp = tmp_path_factory.mktemp(f"engine-{backend}")
        server = request.getfixturevalue("chroma_server") if backend == "server" else None
        settings = backend_settings(backend, tmp, server, "subset")
        store = build_vectorstore(settings=settings, embeddings=embeddings)
        ingest(store=store, path=write_jsonl(tmp / "subset.jsonl", subset_rows), progress=False)
        _engines[backend] = build_search_engine(settings=settings, embeddings=embeddings, store=store)
    return _engines[backend]
