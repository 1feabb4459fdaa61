"""Encoded payloads: find base64/base32/hex/percent/quoted-printable/uuencode/Morse/NATO blobs that decode to
readable text, so the detector can scan what the model would read after decoding.

Only the decoded text is returned (for scanning); the user's text is never rewritten here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

__all__ = ["decode_payloads"]

_B64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_B32 = re.compile(r"[A-Z2-7]{16,}=*")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){8,}")
_HEX_SEP = re.compile(r"(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[\s,:]*){8,}")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,3}){4,}")
_QP_ESCAPE = re.compile(r"=[0-9A-F]{2}")
_MIME = re.compile(r"=\?[\w-]+\?([bBqQ])\?([^?\s]+)\?=")
_LOWER = re.compile(r"[a-z]")
_UU_HINT = re.compile(r"[!-M][!-`]{7,}")  # a run with no lower case and no spaces
_MORSE_HINT = re.compile(r"[.-]{2,5} [.-]{1,5} [.-]{1,5}")
_MORSE_PAIRS = (".. .", ".. -", ".- .", ".- -", "-. .", "-. -", "-- .", "-- -")  # every hint contains one
_MORSE = re.compile(r"(?:[.\-]{1,6}[ /]+){6,}[.\-]{0,6}")
_HEX_PAIRS = frozenset(f"{a}{b}" for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF")
_BRAILLE = re.compile("[\u2800-\u28ff]{6,}")
_NATO_WORDS = [
    "alfa",
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "whisky",
    "xray",
    "x-ray",
    "yankee",
    "zulu",
]
_NATO_SET = frozenset(_NATO_WORDS)
_NATO = re.compile(r"(?:\b(?:" + "|".join(_NATO_WORDS) + r")\b[\s,]*){6,}", re.IGNORECASE)
_MORSE_TABLE = dict(
    zip(
        [
            ".-",
            "-...",
            "-.-.",
            "-..",
            ".",
            "..-.",
            "--.",
            "....",
            "..",
            ".---",
            "-.-",
            ".-..",
            "--",
            "-.",
            "---",
            ".--.",
            "--.-",
            ".-.",
            "...",
            "-",
            "..-",
            "...-",
            ".--",
            "-..-",
            "-.--",
            "--..",
            "-----",
            ".----",
            "..---",
            "...--",
            "....-",
            ".....",
            "-....",
            "--...",
            "---..",
            "----.",
        ],
        "abcdefghijklmnopqrstuvwxyz0123456789",
        strict=True,
    )
)


def decode_payloads(text: str, words: set[str] | None = None) -> list[tuple[str, str]]:
    """Finds encoded blobs in `text` that decode to readable text.

    Every decoder is gated by a cheap check (a long token, enough `%` or `=`, enough dots and dashes), so
    ordinary text costs a split and a few counts.

    Args:
        text: normalised text.
        words: the lower-case ASCII words of the text (`detect.words_of`), if the caller has them.

    Returns:
        (encoding, decoded text) pairs, e.g. ("base64", "ignore all ..."); ("braille", "") and
        ("opaque_blob", "") when the blob is suspicious but not decodable here.
    """
    found: list[tuple[str, str]] = []
    tokens = text.split()
    long = []  # tokens of 8+ characters, longest first: sorting by `len` runs in C, a Python filter would not
    for tok in sorted(tokens, key=len, reverse=True):
        if len(tok) < 8:
            break
        long.append(tok)
    for raw in long:
        if len(raw) < 12:
            break
        tok = raw.strip("\"'()[]{}<>,;:.!?`")
        before = len(found)
        if _B64.fullmatch(tok) and _mixed(tok):
            _add(found, "base64", _try(_b64, tok))
        if _B32.fullmatch(tok):
            _add(found, "base32", _try(_b32, tok))
        if _HEX.fullmatch(tok):
            _add(found, "hex", _try(_hex, tok))
        if len(raw) >= 20 and _ascii85_like(raw):
            _add(found, "ascii85", _try(base64.a85decode, raw))
        if len(found) == before and len(raw) >= 40 and _opaque(raw):
            found.append(("opaque_blob", ""))
    if (
        "\\x" in text
        or "0x" in text
        or (len(_HEX_PAIRS.intersection(tokens)) >= 2 and sum(map(_HEX_PAIRS.__contains__, tokens)) >= 8)
    ):
        for m in _HEX_SEP.finditer(text):
            digits = re.sub(r"\\x|0x|[\s,:]", "", m.group())
            _add(found, "hex", _try(_hex, digits))
    if text.count("%") >= 4:
        for m in _PERCENT.finditer(text):
            _add(found, "percent", unquote(m.group()))
    if "=?" in text:
        for m in _MIME.finditer(text):
            codec = _b64 if m.group(1).lower() == "b" else quopri.decodestring
            _add(found, "mime", _try(codec, m.group(2)))
    if text.count("=") >= 3 and len(_QP_ESCAPE.findall(text)) >= 3:
        _add(found, "quoted_printable", _try(quopri.decodestring, text))
    # A uuencode run has no lower case and no spaces, so it lies inside one long token.
    for m in _UU_HINT.finditer(text) if long and _UU_HINT.search(" ".join(long)) else ():
        if sum(not c.isalnum() for c in m.group()) >= 2:
            lo, hi = text.rfind("\n", 0, m.start()) + 1, text.find("\n", m.end())
            _uu(text[lo : hi if hi >= 0 else len(text)], found)
            break

    if text.count(".") + text.count("-") >= 12 and any(s in text for s in _MORSE_PAIRS) and _MORSE_HINT.search(text):
        for m in _MORSE.finditer(text):
            groups = [w for w in re.split(r"\s*/\s*|\s{2,}", m.group().strip()) if w]
            _add(found, "morse", " ".join("".join(_MORSE_TABLE.get(s, "") for s in w.split()) for w in groups))
    if not text.isascii() and _BRAILLE.search(text):
        found.append(("braille", ""))
    nato_words: set[str] | list[str] = text.lower().replace(",", " ").split() if words is None else words
    if len(_NATO_SET.intersection(nato_words)) >= 3:
        for m in _NATO.finditer(text):
            _add(found, "nato", "".join(w[0] for w in re.findall(r"[A-Za-z-]+", m.group())).lower())
    return found


def _uu(line: str, found: list[tuple[str, str]]) -> None:
    # A uuencoded line starts with its length character (" "-"M") and uses no lower-case letters; it may
    # follow a question on the same line ("What does this mean? M/\"$M+5..."). Only tokens where a hint run
    # starts are looked at (a uuencoded token is one such run), not every token of a long line.
    tried = -1
    for hint in _UU_HINT.finditer(line):
        start = line.rfind(" ", 0, hint.start()) + 1
        if start <= tried:
            continue
        tried = start
        end = line.find(" ", start)
        tok = line[start : end if end >= 0 else len(line)]
        if (
            len(tok) >= 8
            and not _LOWER.search(tok)
            and 32 < ord(tok[0]) <= 77
            and sum(not c.isalnum() for c in tok) >= 2
        ):
            before = len(found)
            _add(found, "uuencode", _try(binascii.a2b_uu, line[start:].rstrip()))
            if len(found) > before:
                return


def _ascii85_like(tok: str) -> bool:
    # Ascii85 uses "!".."u" fairly evenly: several symbols, and not mostly lower case like code or prose.
    if not all(33 <= ord(c) <= 117 for c in tok):
        return False
    return sum(not c.isalnum() for c in tok) >= 4 and sum(c.islower() for c in tok) < len(tok) / 2


def _opaque(tok: str) -> bool:
    letters = sum(c.isalpha() for c in tok)
    others = len(tok) - letters
    return letters >= 8 and others >= 4 and "/" not in tok[:12] and not tok.startswith(("http", "www"))


def _mixed(tok: str) -> bool:
    # Real base64 of text mixes cases and usually digits; plain long words or SKUs do not.
    cased = tok.upper() != tok and tok.lower() != tok  # has lower and upper case letters
    return (cased and not tok.isalpha()) or len(tok) >= 24


def _alt(tok: str) -> bytes | None:
    return b"-_" if ("-" in tok or "_" in tok) else None


def _pad(tok: str, n: int = 4) -> str:
    tok = tok.rstrip("=")
    return tok + "=" * (-len(tok) % n)


def _b64(tok: str) -> bytes:
    return base64.b64decode(_pad(tok), altchars=_alt(tok))


def _b32(tok: str) -> bytes:
    return base64.b32decode(_pad(tok, 8))


def _hex(digits: str) -> bytes:
    return bytes.fromhex(digits[: len(digits) // 2 * 2])


def _try(fn: Callable[[Any], bytes], arg: str) -> str | None:
    try:
        raw = fn(arg)
    except (ValueError, binascii.Error):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _add(found: list[tuple[str, str]], kind: str, decoded: str | None) -> None:
    if decoded is None or len(decoded) < 4:
        return
    printable = sum(c.isprintable() or c in "\n\t" for c in decoded)
    letters = sum(c.isalpha() for c in decoded)
    readable = printable / len(decoded) >= 0.95 and letters / len(decoded) >= 0.3
    if readable and re.search(r"[A-Za-z]{3}", decoded):
        found.append((kind, decoded))
