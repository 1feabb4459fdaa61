"""Sentence windows of a text for the guard's learned layer (guard4 experiment, issue 17 route 1).

A long text (a document, a tool result or a listing carrying an instruction; a long role-play jailbreak) is
embedded as one vector: truncated at MiniLM's 256 tokens and diluted by its benign part. Here a text is also
cut into windows of one and two consecutive sentence units (a unit is a sentence, short ones merged with the
next until `MIN_UNIT` characters), each embedded like a whole text, so a pooled score (the max over windows,
say) can see an instruction the whole-text vector averages away.

    .venv/bin/python bench/guard_windows.py     # embeds the windows of every corpus text (cached like texts)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chains.guard.learned import embedding_text  # noqa: E402

__all__ = ["MAX_WINDOWS", "MIN_UNIT", "units", "windows"]

MIN_UNIT = 40  # characters: a shorter sentence is merged with the next one
MAX_WINDOWS = 48  # per text: a 4,000-character text has ~30 sentences
_SPLIT = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def units(text: str) -> list[str]:
    """The text's sentence units (sentences, short ones merged forward)."""
    out: list[str] = []
    cur = ""
    for part in _SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        cur = f"{cur} {part}" if cur else part
        if len(cur) >= MIN_UNIT:
            out.append(cur)
            cur = ""
    if cur:
        if out:
            out[-1] = f"{out[-1]} {cur}"
        else:
            out.append(cur)
    return out


def windows(text: str) -> list[str]:
    """Windows of one and two consecutive units of a normalised text, none when it has a single unit (the
    whole text is its only window then); at most `MAX_WINDOWS`, the first ones."""
    u = units(text)
    if len(u) < 2:
        return []
    out = list(u)
    out += [f"{a} {b}" for a, b in pairwise(u)] if len(u) > 2 else []
    return out[:MAX_WINDOWS]


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
