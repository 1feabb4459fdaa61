"""The int8 MiniLM is derived from the installed package, the same bytes every time, built when missing; its
query vectors do not depend on the texts run with them, and stay close to the package model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.embeddings import MiniLMEmbeddings
from retrieval.onnx_model import MODEL_FILE, model_file, model_id, package_model

QUERIES = ["who can look at my roof in troy", "hi", "heat loss scan of an old farmhouse near Chelsea",
           "need 40 acres of soybeans sprayed next week, Lapeer county, insured only please"]


def test_a_missing_file_is_built_with_the_same_bytes(tmp_path: Path) -> None:
    built = model_file(tmp_path / "models" / "minilm.onnx")  # missing: built here
    assert built.exists() and model_id(built).split(":")[1] == model_id(model_file()).split(":")[1]
    assert model_file(built) == built and MODEL_FILE.name.startswith("minilm-l6-v2-int8")


def test_a_vector_does_not_depend_on_its_batch_and_stays_near_the_package_model() -> None:
    int8 = MiniLMEmbeddings()
    alone = np.stack([int8.embed_queries([q])[0] for q in QUERIES])
    assert np.array_equal(alone, int8.embed_queries(QUERIES))  # padding and neighbours change nothing
    package = MiniLMEmbeddings(model_path=package_model()).embed_queries(QUERIES)
    cosines = (alone * package).sum(axis=1)
    assert cosines.min() > 0.97, cosines
