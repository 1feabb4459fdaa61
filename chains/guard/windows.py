"""Sentence windows of a text for the learned layer (issue 17, guard4).

A document, a tool result or a listing that carries an instruction is embedded as one vector: truncated at
MiniLM's 256 tokens and diluted by its benign part. The learned layer can also score windows of the text:
one and two consecutive sentence units (a unit is a sentence, a short one merged with the next until
`MIN_UNIT` characters), each embedded like a whole text; the text's probability is then the max over the
text and its windows (`chains/guard/learned.py`). A text of one unit has no window (the whole text is it).
"""

from __future__ import annotations

import re
from itertools import pairwise

__all__ = ["MAX_WINDOWS", "MIN_UNIT", "units", "windows"]

MIN_UNIT = 40  # characters: a shorter sentence is merged with the next one
MAX_WINDOWS = 48  # per text, the first ones: a 4,000-character text has ~30 units
_SPLIT = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def units(text: str) -> list[str]:
    """The text's sentence units: sentences (split after . ! ? and at line breaks), a short one merged with
    the next; a short tail joins the last unit.

    Args:
        text: a normalised text.
    """
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
    """Windows of one unit, then of two consecutive units (when there are more than two), at most
    `MAX_WINDOWS`; none for a text of one unit.

    Args:
        text: a normalised text.
    """
    u = units(text)
    if len(u) < 2:
        return []
    out = list(u)
    if len(u) > 2:
        out += [f"{a} {b}" for a, b in pairwise(u)]
    return out[:MAX_WINDOWS]
