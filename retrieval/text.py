"""Lexical tokens for BM25, index and query alike: lower case, no stopwords, light stemming."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "stem", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = """a an and are as at be but by can for from get has have i if in into is it its me my near need of on
or our so some than that the their them then there these they this to up us was we what when where which who
will with you your please looking want find around any best good"""
STOPWORDS = frozenset(_STOP.split())


def stem(word: str) -> str:
    """A deliberately light stemmer (plural, -ing, -ed): 'spraying' ~ 'spray'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stopwords."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
