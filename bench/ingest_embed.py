"""Ingest embedding throughput, 1 thread against N, in the same run: listings embedded per second.

    .venv/bin/python -m bench.ingest_embed [--listings 640] [--threads 2] [--rounds 3] [--whole]

Each round embeds the listings' embed texts (as the ingest does: EMBEDDINGS_BATCH_SIZE per ONNX run, texts cut
at EMBEDDINGS_DOC_MAX_TOKENS) once with 1 thread and once with N, alternating which goes first, so the shared
machine's slow spells hit both alike. `--whole` times the whole ingest instead (screen, embed, upsert into a
fresh embedded Chroma in a temporary folder), as `python -m retrieval.ingest --threads N` runs it. Prints the
median listings/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from retrieval.embeddings import MiniLMEmbeddings
from retrieval.ingest import ingest
from retrieval.ingest.__main__ import _guard
from retrieval.schema import Listing
from retrieval.store import build_vectorstore
from settings import load_settings


def _embed_rate(texts: list[str], threads: int) -> float:
    s = load_settings()
    emb = MiniLMEmbeddings(batch_size=s.embeddings_batch_size, doc_max_tokens=s.embeddings_doc_max_tokens,
                           parallel=threads)
    emb.embed_documents(texts[: s.embeddings_batch_size * threads])  # load the model outside the timing
    t0 = time.perf_counter()
    emb.embed_documents(texts)
    return len(texts) / (time.perf_counter() - t0)


def _ingest_rate(lines: list[str], threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "listings.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        s = load_settings(chroma_path=Path(tmp) / "chroma", chroma_collection="bench")
        emb = MiniLMEmbeddings(batch_size=s.embeddings_batch_size, doc_max_tokens=s.embeddings_doc_max_tokens,
                               parallel=threads)
        emb.embed_documents(["warm up"])
        store = build_vectorstore(settings=s, embeddings=emb)
        t0 = time.perf_counter()
        report = ingest(store=store, path=path, batch_size=s.embeddings_batch_size * threads, screen=_guard(s),
                        progress=False)
        return report.added / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--whole", action="store_true", help="time the whole ingest, not the embedding alone")
    args = parser.parse_args()
    s = load_settings()
    lines = s.listings_file.read_text(encoding="utf-8").splitlines(keepends=True)[: args.listings]
    texts = [Listing.model_validate_json(line).embed_text() for line in lines]
    rates: dict[int, list[float]] = {1: [], args.threads: []}
    for r in range(args.rounds):
        for threads in ((1, args.threads) if r % 2 == 0 else (args.threads, 1)):
            rate = _ingest_rate(lines, threads) if args.whole else _embed_rate(texts, threads)
            rates[threads].append(rate)
            print(f"round {r + 1}: {threads} thread(s) {rate:6.1f} listings/s", flush=True)
    one, many = statistics.median(rates[1]), statistics.median(rates[args.threads])
    what = "whole ingest" if args.whole else "embedding"
    print(f"{what}, {len(lines)} listings, median of {args.rounds}: 1 thread {one:.1f}/s, {args.threads} threads "
          f"{many:.1f}/s, ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
