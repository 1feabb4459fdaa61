"""The local MiniLM embeddings: offline ONNX inputs, unit vectors, batch == single (documents and queries),
meaning, one thread per run; several runs at once (the ingest) give the same vectors."""

from __future__ import annotations

import numpy as np

from retrieval.embeddings import MiniLMEmbeddings, build_embeddings, embed_queries
from tests.conftest import make_settings


def test_model_inputs_and_threads(embeddings: MiniLMEmbeddings) -> None:
    embeddings.embed_query("warm")
    assert {"input_ids", "attention_mask", "token_type_ids"} == set(embeddings._inputs)
    assert embeddings._session.get_session_options().intra_op_num_threads == 1


def test_vectors_are_unit_length_and_batching_changes_nothing(embeddings: MiniLMEmbeddings) -> None:
    texts = ["roof inspection", "a much longer sentence about drone crop spraying on farms near Lapeer", "x"]
    batch = np.array(MiniLMEmbeddings.embed_documents(embeddings, texts))
    assert batch.shape == (3, 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    single = np.array([embeddings.embed_query(t) for t in texts])
    assert np.allclose((batch * single).sum(axis=1), 1.0, atol=1e-4)


def test_similar_meaning_scores_higher(embeddings: MiniLMEmbeddings) -> None:
    q = np.array(embeddings.embed_query("check my roof for hail damage"))
    roof, crops = (np.array(v) for v in embeddings.embed_documents(["drone roof inspection", "crop spraying"]))
    assert q @ roof > q @ crops + 0.2


def test_documents_are_cut_to_the_token_cap() -> None:
    long = "drone " * 400
    capped = MiniLMEmbeddings(doc_max_tokens=16)
    assert np.allclose(capped.embed_documents([long])[0], capped.embed_documents(["drone " * 14])[0], atol=1e-5)


def test_settings_pick_the_local_model_by_default() -> None:
    emb = build_embeddings(settings=make_settings(embeddings_threads=1, embeddings_doc_max_tokens=48))
    assert isinstance(emb, MiniLMEmbeddings) and emb.doc_max_tokens == 48


def test_queries_embedded_together_match_one_by_one(embeddings: MiniLMEmbeddings) -> None:
    texts = ["roof inspection near Troy", "crop spraying", "wedding videographer under $500 with night waiver"]
    together = embed_queries(embeddings, texts)
    assert together.shape == (3, 384) and together.dtype == np.float32
    alone = np.array([embeddings.embed_query(t) for t in texts])
    assert np.allclose((together * alone).sum(axis=1), 1.0, atol=1e-4)


def test_parallel_runs_give_the_same_vectors_in_the_same_order() -> None:
    """The ingest embeds with one ONNX run per core at once: the same vectors as one run after another."""
    texts = [f"listing {i}: " + "drone roof inspection near Troy " * (i % 7 + 1) for i in range(50)]
    one = MiniLMEmbeddings(batch_size=4, doc_max_tokens=48).embed_array(texts)
    many = MiniLMEmbeddings(batch_size=4, doc_max_tokens=48, parallel=3)
    assert np.allclose(many.embed_array(texts), one, atol=1e-6)
    assert many._pool is not None and many._pool._max_workers == 3  # they did run on the pool's threads
    assert np.allclose(many.embed_array(texts[:3]), one[:3], atol=1e-6)  # one batch: no pool needed
