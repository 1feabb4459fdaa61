"""CLI: `python -m retrieval.ingest [--file PATH] [--if-missing] [--batch-size N] [--threads N] [--no-progress]
[--no-screen]`.

Listing text is screened by the input guard (chains/guard) as it enters the index, unless --no-screen.
Embedding uses every core: `--threads` (INGEST_THREADS, default one per core) ONNX runs at once, each on
EMBEDDINGS_BATCH_SIZE listings, so each upsert takes threads x that many (bench/ingest_embed.py measures it).

Exit status: 0 done; 1 some line was malformed (everything else was ingested); 2 configuration or
Chroma error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from errors import SkyMarketError
from retrieval.embeddings import build_embeddings, embedding_id
from retrieval.ingest.core import Screen, embedded_by, ingest, print_report
from retrieval.store import build_vectorstore
from settings import Settings, load_settings


def _guard(settings: Settings) -> Screen:
    """The input guard (chains/guard), screening listing text as it enters the index."""
    from chains.guard import GuardConfig
    from chains.guard import screen as guard_screen

    config = GuardConfig.from_settings(settings)
    return lambda text: guard_screen(text, source="listing", config=config)


def main(argv: list[str] | None = None, *, screen: Screen | None = None) -> int:
    """Runs the ingest.

    Args:
        argv: command-line arguments (sys.argv when None).
        screen: screens listing text; the input guard (chains/guard) when None, unless --no-screen.
    """
    parser = argparse.ArgumentParser(prog="python -m retrieval.ingest", description=__doc__)
    parser.add_argument("--file", type=Path, default=None, help="JSON Lines file (default: LISTINGS_FILE)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the collection has data embedded by the configured model")
    parser.add_argument("--batch-size", type=int, default=None, help="listings per upsert")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX runs at once, embedding and screening (default: every core)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-screen", action="store_true", help="skip the guard (trusted files only)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        threads = max(1, args.threads or settings.ingest_threads or len(os.sched_getaffinity(0)))
        embeddings = build_embeddings(settings=settings, parallel=threads)
        store = build_vectorstore(settings=settings, embeddings=embeddings)
        if args.if_missing and (made_by := embedded_by(store)) is not None:
            if made_by == embedding_id(embeddings):
                print(f"index present in collection {settings.chroma_collection!r}; nothing to do")
                return 0
            print(f"index in collection {settings.chroma_collection!r} was embedded by {made_by or 'an older model'}; "
                  f"embedding it again with {embedding_id(embeddings)}")
        if screen is None and not args.no_screen:
            screen = _guard(settings)
        path = args.file or settings.listings_file
        started = time.perf_counter()
        report = ingest(
            store=store,
            path=path,
            batch_size=args.batch_size or settings.embeddings_batch_size * threads,
            screen=screen,
            progress=not args.no_progress,
            threads=threads,
        )
    except SkyMarketError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # unreadable file, Chroma unreachable or refusing
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print_report(report, out=lambda line: print(line, file=sys.stderr if line.startswith("  ") else sys.stdout))
    print(f"took {elapsed:.1f}s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
