"""JSON text scanned without parsing it (gateway/body_check.py): nesting depth without recursion, lone
UTF-16 surrogate escapes, and numbers Python cannot hold, each in linear time and mostly in C.
"""

from __future__ import annotations

import json
import math
import re
import sys
from itertools import accumulate
from typing import Any

__all__ = ["NonFinite", "json_depth_over", "lone_surrogate", "maybe_unparseable_number", "parse_finite"]

# A JSON string, its closing quote optional (an unterminated one ends the scan instead of being retried at
# every later quote): possessive quantifiers, no backtracking, linear time.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1
# Escapes, left to right (so `\\` is consumed whole and never read as the start of `\ud800`): a valid
# surrogate pair, a lone surrogate (group 1), or any other escape.
_ESCAPE = re.compile(rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
                     rb"|(u[dD][89a-fA-F][0-9a-fA-F]{2})|.)", re.DOTALL)
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# Numbers in outline (`bytes.translate`, one C pass): every digit -> 0, e/E -> e, +/- -> +, all else a space.
_OUTLINE = bytearray(b" " * 256)
for _chars, _to in ((b"0123456789", b"0"), (b"eE", b"e"), (b"+-", b"+")):
    for _c in _chars:
        _OUTLINE[_c] = _to[0]
_NUMBERS = bytes(_OUTLINE)


def json_depth_over(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit` (brackets inside strings do not count).

    Without recursion, in linear time, and in C but for one pass of `max(accumulate(...))`: strings are cut
    out, the brackets left are kept, and the deepest running sum of +1 / -1 is the depth.

    Args:
        body: the raw JSON text.
        limit: the deepest nesting allowed (the top-level object is depth 1).
    """
    if body.count(b"[") + body.count(b"{") <= limit:  # the common case: cannot be deeper than that
        return False
    # Without a backslash no string holds an escaped quote: strings are every other piece between quotes.
    outside = _STRING.sub(b"", body) if b"\\" in body else b"".join(body.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0) > limit


def lone_surrogate(body: bytes) -> tuple[int, str] | None:
    """The byte offset and text of the first lone surrogate escape, if any."""
    if not _MAYBE_SURROGATE.search(body):
        return None
    for m in _ESCAPE.finditer(body):
        if m.group(1) is not None:
            return m.start(), m.group(0).decode("ascii")
    return None


def maybe_unparseable_number(body: bytes) -> bool:
    """Whether the text may hold a number Python cannot hold (cheap: a parse with `finite_numbers` is sure)."""
    if b"NaN" in body or b"Infinity" in body:
        return True
    outline = body.translate(_NUMBERS)
    if b"0e000" in outline or b"0e+000" in outline:  # an exponent of 3 digits or more: may overflow
        return True
    digits = sys.get_int_max_str_digits()
    return digits > 0 and len(body) > digits and b"0" * (digits + 1) in outline


class NonFinite(ValueError):
    """A number JSON text may spell but Python cannot hold as a finite float."""


def _refuse_constant(name: str) -> Any:
    raise NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFinite(text[:40])
    return value


def parse_finite(text: str) -> Any:
    """`json.loads` that raises `NonFinite` for NaN, Infinity and numbers that overflow.

    Raises:
        NonFinite, json.JSONDecodeError, ValueError (an integer too long to convert), RecursionError.
    """
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
