"""Detection views of a text: confusables folded to ASCII (UTS #39 skeletons), leetspeak undone, ROT13.

These views are only ever scanned, never returned: a Russian or Greek customer's text reaches the model as
written. The confusables table is `data/guard/confusables.tsv`, built at dev time by
`bench/guard_build_tables.py` from Unicode's `confusables.txt` and loaded once, lazily.
"""

from __future__ import annotations

import re
from pathlib import Path

from chains.guard.strip import unusual
from livefiles import live_file

__all__ = ["confusable_table", "fold", "leet", "leet_hint", "mixed_script_words", "rot13"]

TABLE_FILE = Path(__file__).resolve().parents[2] / "data" / "guard" / "confusables.tsv"

_TURKISH = frozenset("şŞğĞçÇöÖüÜİ")
_ORTHOGRAPHIC = frozenset("æÆøØßðÐþÞłŁđĐħĦœŒ")
_WORD = re.compile(r"[^\W\d_]{2,}")
_LEET = str.maketrans("013457@$!", "oieastasi")
_LEET_WORD = re.compile(r"\b(?=[a-z0-9@$!]*[a-z])(?=[a-z0-9@$!]*[0-9@$])[a-z0-9@$!]{3,}\b")
_SHAPE = bytes(ord("a") if chr(c).isalpha() else ord("#") if chr(c) in "0123456789@$!" else 32 for c in range(256))
# Leet digits and symbols to letters, everything else kept, as a bytes table (non-ASCII is already "?").
_LEET_BYTES = bytes.maketrans(b"013457@$!", b"oieastasi")
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZabcdefghijklm",
)


def confusable_table(path: Path = TABLE_FILE) -> dict[int, str]:
    """The code point -> lower-case ASCII skeleton table, re-read after an edit (`livefiles`).

    Args:
        path: the TSV file (`code point<TAB>skeleton`, `#` comments).
    """
    return live_file(path, lambda text: parse_table(text, path), kind="confusables", hot=True).get()


def parse_table(text: str, path: Path) -> dict[int, str]:
    """Validates the confusables table's text; a bad line names itself."""
    table: dict[int, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith("#"):
            try:
                cp, skeleton = line.split("\t", 1)
                table[int(cp, 16)] = skeleton.lower()
            except ValueError:
                raise ValueError(f"{path.name}:{n}: expected `code point<TAB>skeleton`") from None
    return table


def fold(text: str) -> str:
    """Lower-cases and folds non-ASCII confusables to their ASCII skeleton; ASCII is left alone.

    Args:
        text: NFKC-normalised text.
    """
    low = text.lower()
    if low.isascii():
        return low
    table = confusable_table()
    # One C-speed `replace` per distinct look-alike: a regex or `translate` would walk the text in Python-level
    # steps (a dict lookup per character), which costs more than the whole rest of `screen()`.
    for ch in set(unusual(low)):
        skeleton = table.get(ord(ch))
        if skeleton is not None:
            low = low.replace(ch, skeleton)
    return low


def mixed_script_words(text: str) -> list[str]:
    """Words that mix ASCII letters with look-alike letters (`pаypal` with a Cyrillic `а`, `polıcy` with a
    dotless `ı`).

    Whole words in one script (Cyrillic, Greek), accented Latin (not in the confusables table) and Turkish
    words are legitimate and never returned.

    Args:
        text: NFKC-normalised text.
    """
    if text.isascii():
        return []
    table = confusable_table()
    if not any(ord(c) in table for c in set(unusual(text)) if c.isalpha()):
        return []  # no look-alike letter at all (curly quotes and dashes are confusables too, but not letters)
    # Real letters of Latin-script languages; the dotless ı too when the text is Turkish.
    ok = _ORTHOGRAPHIC | {"ı"} if _TURKISH.intersection(text) else _ORTHOGRAPHIC
    hits = []
    for m in _WORD.finditer(text):
        word = m.group()
        if word.isascii() or not any(c.isascii() for c in word):
            continue
        if any(ord(c) in table and c not in ok for c in word if not c.isascii()):
            hits.append(word)
    return hits


def leet_hint(text: str) -> str:
    """Every leet digit and symbol undone in the whole text, not only in mixed words: one C-speed translate.

    Used as a cheap prefilter: if no rule word appears in it that is not already in the text, `leet()` (a
    costlier regex pass) cannot reveal one either, except where a symbol is glued to the front of a leet word.

    Args:
        text: a folded (lower-case) view.
    """
    return text.encode("ascii", "replace").translate(_LEET_BYTES).decode("ascii")


def leet(text: str) -> str | None:
    """Undoes leetspeak in words that mix letters with digits/symbols; None unless two or more words do.

    Args:
        text: a folded (lower-case) view.
    """
    shape = text.encode("ascii", "replace").translate(_SHAPE)  # letters -> a, leet digits/symbols -> #
    if shape.count(b"a#") + shape.count(b"#a") < 2:
        return None
    # The regex runs only on the runs of letters/leet characters where a letter touches a leet character (found
    # with C-speed `find`s on the shape): over the whole text it would cost more than the rest of `screen()`.
    out: list[str] = []
    last = n = 0
    i = _contact(shape, 0)
    while i >= 0:
        lo = shape.rfind(b" ", 0, i) + 1
        hi = shape.find(b" ", i)
        hi = len(shape) if hi < 0 else hi
        undone, k = _LEET_WORD.subn(lambda m: m.group().translate(_LEET), text[lo:hi])
        out += (text[last:lo], undone)
        last, n = hi, n + k
        i = _contact(shape, hi)
    out.append(text[last:])
    return "".join(out) if n >= 2 else None


def _contact(shape: bytes, start: int) -> int:
    # The next place at or after `start` where a letter ("a") touches a leet digit or symbol ("#"), or -1.
    found = [i for i in (shape.find(b"a#", start), shape.find(b"#a", start)) if i >= 0]
    return min(found) if found else -1


def rot13(text: str) -> str:
    """ROT13 of `text` (letters only).

    Args:
        text: any text.
    """
    return text.translate(_ROT13)
