"""Deterministic synthetic listings: a tool that generated the shipped `data/listings.jsonl`, and the 10k/100k
benchmark sets.

    python -m retrieval.synth --count 640 --seed 7 --out data/listings.jsonl
    python -m retrieval.synth --count 10000 --seed 10 --id-prefix syn --out bench/results/listings-10k.jsonl

The shipped file is the source of truth and may be edited by hand since: the first command rewrites it as
generated (hand edits lost). Text comes from `fragments.yaml`, services and features from the vocabulary
(retrieval/vocab); the same seed always gives byte-identical output.
"""

from retrieval.synth.generate import generate_listings

__all__ = ["generate_listings"]
