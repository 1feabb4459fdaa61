"""CLI: write synthetic listings as JSON Lines (see the package docstring)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from retrieval.places import load_gazetteer
from retrieval.synth.generate import generate_listings
from settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval.synth", description=__doc__)
    parser.add_argument("--count", type=int, default=640)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--id-prefix", default="lst")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    rows = generate_listings(
        gazetteer=load_gazetteer(settings.places_file),
        count=args.count,
        seed=args.seed,
        id_prefix=args.id_prefix,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} listings to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
