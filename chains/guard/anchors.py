"""Where a rule's regex can match, so `scan()` tries it only there instead of searching the whole text.

`anchors()` reads a pattern's top-level branches: a branch that starts with `\\b` + a word (or `\\b(?:a|b)`)
can only match where that word starts; a branch that starts with literal characters (`<`, `[input]`) only
where those occur. `finders()` compiles each anchor into a small regex that starts with its literal, so `re`
skips to candidate places in C (a `\\b` written after the literal, as a lookbehind, keeps that speed-up);
`match_at()` then tries the rule's `regex.match` at those places only. An anchor that must be a whole word is
skipped at once when the word is not in the view. Rules whose branches start any other way (an optional
group, `(?m)^`) fall back to `search_windows()` around their trigger words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Anchor", "Finder", "anchors", "finders", "match_at", "search_windows", "split_top"]

# (literal, needs a word boundary before it, the whole words every match there starts with: () if unknown)
Anchor = tuple[str, bool, tuple[str, ...]]
Finder = tuple[re.Pattern[str], frozenset[str]]  # (where the anchor occurs, words that must all be in the view)
_NEXT_WORD = re.compile(r"(?:\\s\+| )([a-z0-9]+)")
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


def finders(places: Iterable[Anchor]) -> tuple[Finder, ...]:
    """Compiles anchors for `match_at()`.

    Args:
        places: a rule's anchors, from `anchors()`.
    """
    out = []
    for literal, boundary, words in sorted(places):
        lit = re.escape(literal)
        out.append((re.compile(f"{lit}(?<=\\b{lit})" if boundary else lit), frozenset(words)))
    return tuple(out)


def match_at(regex: re.Pattern[str], view: str, places: Iterable[Finder], words: set[str] | frozenset[str]) -> bool:
    """Tries `regex.match` at every occurrence of each anchor.

    Args:
        regex: the rule's regex.
        view: the lower-case view.
        places: the rule's compiled anchors, from `finders()`.
        words: the view's words (`detect.words_of`): an anchor whose leading words ("in the voice of") are not
            all among them is skipped without looking at the text.
    """
    match = regex.match
    for finder, needed in places:
        if needed and not needed <= words:
            continue
        for m in finder.finditer(view):
            if match(view, m.start()):
                return True
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
        grouped = rest.startswith("(?:")
        end = _group_end(rest) if grouped else len(rest)
        alternatives = split_top(rest[3:end]) if grouped else [rest]
        after_group = rest[end + 1 :] if grouped else ""
        words = set()
        for alt in alternatives:
            m = re.match(r"[a-z0-9]+", alt)
            if m is None:
                return None
            tail = alt[m.end() :] or after_group
            truncated = tail[:1] in ("?", "*", "{")
            word = m.group()[:-1] if truncated else m.group()
            if not word:
                return None
            words.add((word, True, () if truncated else _leading_words(word, tail)))
        return words
    literal = _literal_prefix(branch)
    return {(literal, False, ())} if literal else None


def _leading_words(first: str, tail: str) -> tuple[str, ...]:
    # The whole words a branch starts with ("in\\s+the\\s+voice\\s+of" -> in, the, voice, of), as far as each is
    # followed by something that cannot continue it (a space, a boundary, punctuation) and is not optional.
    ends = ("\\s", "\\b", " ", "'", "-", ",", ":")
    if not tail.startswith(ends):
        return ()
    out = [first]
    while (m := _NEXT_WORD.match(tail)) is not None:
        rest = tail[m.end() :]
        if not rest.startswith(ends):
            break
        out.append(m.group(1))
        tail = rest
    return tuple(out)


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
