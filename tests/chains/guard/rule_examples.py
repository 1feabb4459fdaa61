"""Strings generated from a rule's regex: one per alternative of every alternation in it, so a test can reach
every branch of every rule without anyone writing examples (a new rule is covered as soon as it is added).

The stdlib exposes no public regex syntax tree: this reads `re._parser` (what `sre_compile` itself uses).
If its shapes change, `examples()` produces strings the regex does not match and the test that uses it fails
loudly; it cannot pass by accident.
"""

from __future__ import annotations

import re
import re._constants as c
import re._parser as p
from typing import Any

__all__ = ["examples"]

_CATEGORY = {
    c.CATEGORY_SPACE: " ",
    c.CATEGORY_NOT_SPACE: "x",
    c.CATEGORY_WORD: "a",
    c.CATEGORY_NOT_WORD: " ",
    c.CATEGORY_DIGIT: "1",
    c.CATEGORY_NOT_DIGIT: "x",
}
_CANDIDATES = " xa1.-:"


def examples(pattern: str) -> list[tuple[str, str]]:
    """(where, text) pairs: the default string, then one per alternative of each alternation.

    Args:
        pattern: the regex source.
    """
    tree = p.parse(pattern)
    branches: list[tuple[Any, dict[int, int]]] = []
    _collect(tree, branches, {})
    out = [("default", _best(pattern, tree, {}))]
    for b, (node, outer) in enumerate(branches):
        for i in range(len(node[1][1])):
            # the alternatives of the enclosing alternations that lead to this one are chosen too
            out.append((f"alternation {b}, alternative {i}", _best(pattern, tree, {**outer, id(node): i})))
    return out


def _collect(seq: Any, acc: list[tuple[Any, dict[int, int]]], outer: dict[int, int]) -> None:
    for node in seq:
        op, av = node
        if op is c.BRANCH:
            acc.append((node, outer))
            for i, alt in enumerate(av[1]):
                _collect(alt, acc, {**outer, id(node): i})
        elif op is c.SUBPATTERN:
            _collect(av[3], acc, outer)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            _collect(av[2], acc, outer)


def _best(pattern: str, tree: Any, choice: dict[int, int]) -> str:
    # Optional parts present first (so a chosen alternative inside one is used), then the shortest form.
    regex = re.compile(pattern)
    texts = [_gen(tree, choice, optional=True), _gen(tree, choice, optional=False)]
    for text in texts:
        if regex.search(text):
            return text
    return texts[0]


def _gen(seq: Any, choice: dict[int, int], *, optional: bool) -> str:
    out = []
    for node in seq:
        op, av = node
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.NOT_LITERAL:
            out.append(next(ch for ch in _CANDIDATES if ord(ch) != av))
        elif op is c.ANY:
            out.append("x")
        elif op is c.IN:
            out.append(_in(av))
        elif op is c.BRANCH:
            out.append(_gen(av[1][choice.get(id(node), 0)], choice, optional=optional))
        elif op is c.SUBPATTERN:
            out.append(_gen(av[3], choice, optional=optional))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            lo, hi, item = av
            n = max(lo, 1 if optional or _chosen(item, choice) else 0) if hi != 0 else 0
            out.append(_gen(item, choice, optional=optional) * n)
        # AT (\b, ^, $), ASSERT and ASSERT_NOT (lookarounds) produce nothing
    return "".join(out)


def _chosen(seq: Any, choice: dict[int, int]) -> bool:
    acc: list[tuple[Any, dict[int, int]]] = []
    _collect(seq, acc, {})
    return any(id(n) in choice for n, _ in acc)


def _in(items: Any) -> str:
    if items and items[0][0] is c.NEGATE:
        rest = items[1:]
        return next(ch for ch in _CANDIDATES if not _member(ch, rest))
    op, av = items[0]
    if op is c.LITERAL:
        return chr(av)
    if op is c.RANGE:
        return chr(av[0])
    if op is c.CATEGORY:
        return _CATEGORY[av]
    raise ValueError(f"unsupported set item {op}")


def _member(ch: str, items: Any) -> bool:
    for op, av in items:
        if op is c.LITERAL and ord(ch) == av:
            return True
        if op is c.RANGE and av[0] <= ord(ch) <= av[1]:
            return True
        if op is c.CATEGORY and re.fullmatch(_CLASS[av], ch):
            return True
    return False


_CLASS = {
    c.CATEGORY_SPACE: r"\s",
    c.CATEGORY_NOT_SPACE: r"\S",
    c.CATEGORY_WORD: r"\w",
    c.CATEGORY_NOT_WORD: r"\W",
    c.CATEGORY_DIGIT: r"\d",
    c.CATEGORY_NOT_DIGIT: r"\D",
}
