"""Character stripping for `normalize()`: one regex finds runs outside known-clean ranges, and only those
runs are examined character by character (so ordinary text costs one C-speed scan)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

__all__ = ["CLEAN_RANGES", "strip_invisible", "unusual"]

# Printable ASCII plus tab, newline and CR, as bytes to delete: what is left of a text is what needs a look.
_USUAL_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F)])
# Ranges with no control, format, private-use, unassigned, surrogate or combining characters (checked by
# tests against this Python's Unicode tables). Everything else is examined character by character.
CLEAN_RANGES = (
    "\x20-\x7e\xa0-\xac\xae-\u02ff"  # ASCII, Latin-1, Latin Extended-A/B, IPA, spacing modifiers
    "\u0370-\u0377\u037a-\u037f\u0384-\u038a\u038c\u038e-\u03a1\u03a3-\u0482\u048a-\u052f"  # Greek, Cyrillic
    "\u05d0-\u05ea\u0620-\u064a\u1e00-\u1eff"  # Hebrew and Arabic letters, Latin Extended Additional
    "\u2010-\u2027\u2030-\u205e\u20a0-\u20bf\u2100-\u218b\u2190-\u2426"  # punctuation, symbols, arrows
    "\u2440-\u244a\u2460-\u2b73\u3001-\u3029\u3030-\u303f\u3041-\u3096\u30a1-\u30ff"  # symbols, kana
    "\u4e00-\u9fff\uac00-\ud7a3\U0001f300-\U0001f64f"  # CJK ideographs, Hangul syllables, emoji
)
_SUSPECT = re.compile(f"[^{CLEAN_RANGES}\\t\\n\\r]+")
_KEEP_CONTROLS = frozenset("\t\n\r")
_BIDI_OVERRIDE = frozenset("\u202d\u202e")
_BIDI = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u2066\u2067\u2068\u2069")
_HANGUL_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_JOINERS = frozenset("\u200c\u200d")  # legitimate inside emoji sequences and Indic/Persian words
_INVISIBLE_MN = frozenset("\u034f")  # combining grapheme joiner: default-ignorable, renders as nothing
# Code points newer than this Python's Unicode tables (recent emoji) read as unassigned: keep them.
_EMOJI_BLOCKS = ((0x1F000, 0x1FAFF),)


def strip_invisible(text: str, findings: Counter[str], max_combining: int) -> str:
    """Drops control, format, private-use, unassigned and surrogate characters and excess combining marks.

    Kept: tab/newline/CR, ZWJ/ZWNJ between non-ASCII letters (emoji sequences, Persian, Indic), emoji
    presentation selectors after a symbol, valid flag-emoji tag sequences, recent emoji this Python does not
    know yet. Every removal is counted in `findings` (ids as in `normalize.FINDINGS`).

    Args:
        text: NFKC-normalised text, hidden payloads already decoded.
        findings: counters to update.
        max_combining: combining marks kept per base character.
    """
    odd = unusual(text)
    if not odd or not _SUSPECT.search(odd):
        return text  # the common case: nothing to do
    # Only runs of characters outside the known-clean ranges are looked at one by one.
    return _SUSPECT.sub(lambda m: _strip_run(m, findings, max_combining), text)


def unusual(text: str) -> str:
    """The characters of `text` that are not printable ASCII, tab, newline or CR, in order (often empty).

    Everything here runs in C (encode, delete bytes, decode), where a regex over the whole text would step
    through it character by character: callers test this short string instead of the text.

    Args:
        text: any text (lone surrogates included).
    """
    if text.isascii() and text.isprintable():
        return ""
    raw = text.encode("utf-8", "surrogatepass").translate(None, _USUAL_BYTES)
    return raw.decode("utf-8", "surrogatepass")


def _strip_run(m: re.Match[str], findings: Counter[str], max_combining: int) -> str:
    text, start = m.string, m.start()
    kept: list[str] = []
    marks = 0
    n = len(text)
    for i in range(start, m.end()):
        ch = text[i]
        cp = ord(ch)
        cat = unicodedata.category(ch)
        if 0xE0000 <= cp <= 0xE007F:
            kept.append(ch)  # only valid flag-emoji tag sequences survive `_tags()`
            continue
        if "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":
            prev = kept[-1] if kept else (text[i - 1] if i else "")
            if ch in "\ufe0e\ufe0f" and prev and unicodedata.category(prev) == "So":
                kept.append(ch)  # emoji/text presentation of the symbol before it
            else:
                findings["variation_selector"] += 1
            continue
        if cat in ("Mn", "Me"):
            if ch in _INVISIBLE_MN:
                findings["invisible"] += 1
                continue
            marks += 1
            if marks > max_combining:
                findings["combining_excess"] += 1
                continue
            kept.append(ch)
            continue
        marks = 0
        if cat == "Cc":
            if ch in _KEEP_CONTROLS:
                kept.append(ch)
            else:
                findings["control"] += 1
            continue
        if cat == "Cf":
            if ch in _JOINERS and 0 < i < n - 1 and not text[i - 1].isascii() and not text[i + 1].isascii():
                kept.append(ch)
            elif ch in _BIDI_OVERRIDE:
                findings["bidi_override"] += 1
            elif ch in _BIDI:
                findings["bidi_control"] += 1
            elif ch == "\u00ad":
                findings["soft_hyphen"] += 1
            else:
                findings["invisible"] += 1
            continue
        if ch in _HANGUL_FILLERS:
            findings["hangul_filler"] += 1
            continue
        if cat == "Co":
            findings["private_use"] += 1
            continue
        if cat == "Cs":
            findings["surrogate"] += 1
            continue
        if cat == "Cn":
            if any(lo <= cp <= hi for lo, hi in _EMOJI_BLOCKS) and cp & 0xFFFE != 0xFFFE:
                kept.append(ch)
            else:
                findings["unassigned"] += 1
            continue
        kept.append(ch)
    return "".join(kept)
