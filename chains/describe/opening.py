"""Compose mode's opening sentence (data/presets.yaml `mode: compose`): the one sentence the model writes above
the operator's facts as prose. Besides the claim check, an opening must read as one sentence and name the
listing's city and one of its services; otherwise it is asked for again, then left out (chains/describe/chain.py).
"""

from __future__ import annotations

import re

from chains.claims import split_sentences
from chains.describe.schema import DescribeInput, stems

__all__ = ["OPENING_MAX_WORDS", "first_sentence", "names_listing", "reads_as_prose"]

OPENING_MAX_WORDS = 20  # an opening line is short; the 135M model's longer ones wander off the listing
_LEAD_LABEL = re.compile(r"^\s*(?:[A-Za-z]+ ){0,2}[A-Za-z]+:\s*")  # "Sentence: ...", "Opening line: ..."


def first_sentence(text: str) -> str:
    """The model's first sentence, without a label it put in front ("Opening line: ..."), ending in . ! or ?."""
    sentences = split_sentences(_LEAD_LABEL.sub("", text, count=1))
    opening = sentences[0].strip() if sentences else ""
    return opening if not opening or opening[-1] in ".!?" else opening + "."


def reads_as_prose(sentence: str) -> bool:
    """Whether an opening reads as one sentence: capitalised, 5 to OPENING_MAX_WORDS words, no label or list
    punctuation, no word said three times (the 135M model's loops: "helicopter service; helicopter ...")."""
    words = re.findall(r"[a-z]{4,}", sentence.lower())
    return (sentence[:1].isupper() and 5 <= len(sentence.split()) <= OPENING_MAX_WORDS
            and not any(c in sentence for c in ":;|*#") and all(words.count(w) < 3 for w in set(words)))


def names_listing(sentence: str, inp: DescribeInput) -> bool:
    """Whether an opening names the listing's city and one of its services (a word of 4+ letters, by its first
    five letters): an opening is the listing's first line, not a sentence about anything at all."""
    return inp.city.lower() in sentence.lower() and bool(stems(sentence) & stems(" ".join(inp.services), 4))
