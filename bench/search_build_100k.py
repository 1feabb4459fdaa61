"""Builds the 100k-listing bench index from the 10k one without re-embedding (about 3 hours of CPU here).

    .venv/bin/python -m bench.search_build_100k

Each of the 10k listings is copied 10 times: ids suffixed, coordinates moved a little, and the vector perturbed
by small Gaussian noise then re-normalised (so HNSW does not see exact duplicates). The text repeats, so this
index is for latency only, never for relevance. Needs bench/results/chroma-10k (ingest the 10k set first).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from bench.search_common import bench_settings
from retrieval.embeddings import build_embeddings
from retrieval.store import build_vectorstore

COPIES = 10
PAGE = 2000


def main() -> int:
    src_settings = bench_settings("10k")
    emb = build_embeddings(settings=src_settings)
    src: Any = build_vectorstore(settings=src_settings, embeddings=emb).collection
    dst: Any = build_vectorstore(settings=bench_settings("100k"), embeddings=emb).collection
    rng = np.random.default_rng(100)
    started = time.perf_counter()
    total = 0
    for offset in range(0, src.count(), PAGE):
        page = src.get(include=["embeddings", "metadatas", "documents"], limit=PAGE, offset=offset)
        vectors = np.asarray(page["embeddings"], dtype=np.float32)
        for j in range(COPIES):
            ids, metas, vecs = [], [], []
            for lid, meta, vec in zip(page["ids"], page["metadatas"], vectors, strict=True):
                listing = json.loads(meta["listing"])
                listing["id"] = f"{lid}-{j}"
                listing["lat"] = round(listing["lat"] + rng.uniform(-0.01, 0.01), 5)
                listing["lon"] = round(listing["lon"] + rng.uniform(-0.01, 0.01), 5)
                m = dict(meta, lat=listing["lat"], lon=listing["lon"], listing=json.dumps(listing))
                v = vec + rng.normal(0, 0.01, vec.shape).astype(np.float32) if j else vec
                ids.append(listing["id"])
                metas.append(m)
                vecs.append(v / np.linalg.norm(v))
            dst.upsert(ids=ids, embeddings=np.array(vecs), metadatas=metas, documents=page["documents"])
            total += len(ids)
        print(f"{total} vectors in {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
