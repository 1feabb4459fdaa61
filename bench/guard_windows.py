"""Sentence windows of a text for the guard's learned layer (guard4 experiment, issue 17 route 1).

A long text (a document, a tool result or a listing carrying an instruction; a long role-play jailbreak) is
embedded as one vector: truncated at MiniLM's 256 tokens and diluted by its benign part. Here a text is also
cut into windows of one and two consecutive sentence units (a unit is a sentence, short ones merged with the
next until `MIN_UNIT` characters), each embedded like a whole text, so a pooled score (the max over windows,
say) can see an instruction the whole-text vector averages away.

    .venv/bin/python bench/guard_windows.py     # embeds the windows of every corpus text (cached like texts)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chains.guard.learned import embedding_text  # noqa: E402
from chains.guard.windows import windows  # noqa: E402

__all__ = ["all_windows"]


def all_windows(texts: Sequence[str]) -> list[list[str]]:
    """The windows of each raw text (normalised first, as `screen()` does)."""
    return [windows(embedding_text(t)) for t in texts]


if __name__ == "__main__":
    from bench.guard_embed import embed_all
    from bench.guard_sources import load_all

    samples = load_all()
    ws = all_windows([s.text for s in samples])
    flat = sorted({w for ww in ws for w in ww})
    print(f"{len(samples)} texts, {sum(map(len, ws))} windows, {len(flat)} distinct", file=sys.stderr)
    if "--count" not in sys.argv:
        vectors = embed_all(flat)
        print(vectors.shape)
