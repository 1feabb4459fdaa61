"""Where a rule's regex can match, so `scan()` tries it only there instead of searching the whole text.

`anchors()` reads a pattern's top-level branches: a branch that starts with `\\b` + a word (or `\\b(?:a|b)`)
can only match where that word starts; a branch that starts with literal characters (`<`, `[input]`) only
where those occur. `match_at()` then tries `regex.match` at those places. Rules whose branches start any
other way (an optional group, `(?m)^`) fall back to `search_windows()` around their trigger words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Anchor", "anchors", "match_at", "search_windows", "split_top"]

Anchor = tuple[str, bool]  # (literal, needs a word boundary before it)
_BEFORE, _AFTER = 200, 400  # window around a trigger occurrence; every rule's match fits inside
_SPECIAL = set(".^$*+?{}[]()|")


def anchors(pattern: str) -> frozenset[Anchor] | None:
    """The places every match of `pattern` must start at, or None if it could start anywhere.

    Args:
        pattern: a rule's regex source.
    """
    out: set[Anchor] = set()
    for branch in split_top(pattern):
        found = _branch_anchors(branch)
        if found is None:
            return None
        out |= found
    return frozenset(out)


def match_at(regex: re.Pattern[str], view: str, places: Iterable[Anchor]) -> bool:
    """Tries `regex.match` at every occurrence of each anchor (word anchors only at a word start)."""
    for literal, boundary in places:
        i = view.find(literal)
        while i >= 0:
            if (not boundary or i == 0 or not view[i - 1].isalnum()) and regex.match(view, i):
                return True
            i = view.find(literal, i + 1)
    return False


def search_windows(regex: re.Pattern[str], view: str, triggers: list[str]) -> bool:
    """Searches the windows around trigger occurrences, or the whole view when they would cover most of it."""
    n = len(view)
    if n <= _BEFORE + _AFTER:
        return regex.search(view) is not None
    spans: list[tuple[int, int]] = []
    covered = 0
    for t in triggers:
        i = view.find(t)
        while i >= 0:
            spans.append((max(0, i - _BEFORE), min(n, i + len(t) + _AFTER)))
            covered += _BEFORE + _AFTER
            if covered > n:
                return regex.search(view) is not None
            i = view.find(t, i + 1)
    spans.sort()
    lo, hi = spans[0]
    for a, b in spans[1:]:
        if a <= hi:
            hi = max(hi, b)
            continue
        if regex.search(view, lo, hi):
            return True
        lo, hi = a, b
    return regex.search(view, lo, hi) is not None


def split_top(pattern: str) -> list[str]:
    """Splits a regex on `|` outside groups and character classes."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _branch_anchors(branch: str) -> set[Anchor] | None:
    if branch.startswith("\\b"):
        rest = branch[2:]
        alternatives = split_top(rest[3 : _group_end(rest)]) if rest.startswith("(?:") else [rest]
        words = set()
        for alt in alternatives:
            m = re.match(r"[a-z0-9]+", alt)
            if m is None:
                return None
            word = m.group()[:-1] if alt[m.end() : m.end() + 1] in ("?", "*", "{") else m.group()
            if not word:
                return None
            words.add((word, True))
        return words
    literal = _literal_prefix(branch)
    return {(literal, False)} if literal else None


def _group_end(rest: str) -> int:
    depth, i = 0, 0
    while i < len(rest):
        c = rest[i]
        if c == "\\":
            i += 2
            continue
        depth += c == "("
        depth -= c == ")"
        if depth == 0:
            return i
        i += 1
    return len(rest)


def _literal_prefix(branch: str) -> str:
    lit, i = "", 0
    while i < len(branch):
        c = branch[i]
        if c == "\\" and i + 1 < len(branch) and not branch[i + 1].isalnum():
            lit, i = lit + branch[i + 1], i + 2
        elif c == "\\" or c in _SPECIAL:
            break
        else:
            lit, i = lit + c, i + 1
    if i < len(branch) and branch[i] in "?*{" and lit:
        lit = lit[:-1]  # the last character is optional
    return lit
