"""What HNSW's `ef_search` costs at scale (settings.CHROMA_EF_SEARCH), and whether answers repeat across processes.

    .venv/bin/python -m bench.hnsw_ef [--sizes 640,10000,100000 --queries 300]

Search asks Chroma for 100 vector candidates. For each size, a collection of clustered random unit vectors
(384 dimensions, as MiniLM's; built in a temporary directory, nothing embedded) is queried with k=100 at
ef_search 100 (Chroma's default), 200 and 400, one query at a time as search does: median and p99 ms per
query (the median over three processes, each a fresh load), recall@100 against an exact search, and how many
different answers those three processes give to the same 20 queries. Random vectors are a harder case for HNSW than text
embeddings: read the ratios between settings, measured in the same run, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

_K = 100
# One process per setting: the configuration is read when a process first loads the index.
_PROBE = """
import json, statistics, sys, time
import chromadb, numpy as np
path, ef = sys.argv[1], int(sys.argv[2])
col = chromadb.PersistentClient(path=path).get_collection("bench", embedding_function=None)
col.modify(configuration={"hnsw": {"ef_search": ef}})
q, exact = np.load(path + "/q.npy"), np.load(path + "/exact.npy")
fixed = col.query(query_embeddings=q[:20], n_results=100, include=[])["ids"]
times, recall = [], []
for i, v in enumerate(q):
    t = time.perf_counter()
    ids = col.query(query_embeddings=v[None], n_results=100, include=[])["ids"][0]
    times.append((time.perf_counter() - t) * 1000)
    recall.append(len({int(x) for x in ids} & set(exact[i].tolist())) / 100)
times.sort()
print(json.dumps({"p50": statistics.median(times[20:] if len(times) > 40 else times),
                  "p99": times[int(0.99 * (len(times) - 1))], "recall": statistics.mean(recall),
                  "answer": repr(fixed)}))
"""


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(8, n // 16), 384))
    x = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, 384))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _run(n: int, queries: int, efs: list[int]) -> None:
    import chromadb

    path = Path(tempfile.mkdtemp(prefix=f"skymarket-hnsw-{n}-"))
    data = _vectors(n)
    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    t0 = time.perf_counter()
    for start in range(0, n, 5000):
        col.add(ids=[str(i) for i in range(start, min(n, start + 5000))], embeddings=data[start : start + 5000])
    built = time.perf_counter() - t0
    picks = np.random.default_rng(2).integers(0, n, queries)
    q = data[picks] + 0.3 * np.random.default_rng(3).normal(size=(queries, 384)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    np.save(path / "q.npy", q)
    np.save(path / "exact.npy", np.argsort(-(q @ data.T), axis=1)[:, :_K])
    del col, client
    print(f"\n{n:,} vectors (built in {built:.0f} s)")
    print("| ef_search | p50 ms/query | p99 ms/query | recall@100 | distinct answers, 3 processes |")
    print("|---:|---:|---:|---:|---:|")
    for ef in efs:
        runs = [json.loads(subprocess.run([sys.executable, "-c", _PROBE, str(path), str(ef)], capture_output=True,
                                          text=True, check=True).stdout) for _ in range(3)]
        print(f"| {ef} | {statistics.median(r['p50'] for r in runs):.2f} | "
              f"{statistics.median(r['p99'] for r in runs):.2f} | {runs[0]['recall']:.3f} | "
              f"{len({r['answer'] for r in runs})} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="640,10000,100000")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--ef", default="100,200,400")
    args = p.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        _run(n, args.queries, [int(e) for e in args.ef.split(",")])


if __name__ == "__main__":
    main()
