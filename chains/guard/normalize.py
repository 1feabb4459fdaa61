"""Unicode normalisation: what the model sees is what a person sees.

`normalize()` applies NFKC, strips invisible and control characters, decodes hidden payloads (Unicode tag
characters, variation-selector and "sneaky bits" smuggling) so the detector can read them, and caps stacked
combining marks. It never folds confusables in its output: legitimate non-Latin text comes back intact. Each
rule that fired is counted in `Normalized.findings` under a stable id (see `FINDINGS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["CLEAN_RANGES", "FINDINGS", "Normalized", "normalize"]

# Finding id -> what it means. The detector turns these into reasons and weights.
FINDINGS = {
    "ansi_escape": "ANSI/VT escape sequence",
    "tag_chars": "Unicode tag characters (U+E0000-E007F) carrying hidden text",
    "variation_selector_smuggling": "a run of variation selectors carrying hidden bytes",
    "variation_selector": "stray variation selector",
    "hidden_binary": "invisible operators (U+2062/U+2064) encoding bits",
    "bidi_override": "bidi override (U+202D LRO / U+202E RLO)",
    "bidi_control": "bidi embedding/isolate/mark control",
    "invisible": "zero-width or other invisible character",
    "soft_hyphen": "soft hyphen (U+00AD)",
    "hangul_filler": "Hangul filler used as an invisible character",
    "control": "C0/C1 control character",
    "private_use": "private-use character",
    "unassigned": "unassigned or noncharacter code point",
    "surrogate": "lone surrogate",
    "combining_excess": "too many combining marks on one character (Zalgo)",
}

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_SUPPLEMENTARY = re.compile("[\U000e0000-\U000e01ef]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
# A valid emoji subdivision flag: BLACK FLAG + 2-6 tag letters/digits + CANCEL TAG (e.g. Scotland, Wales).
_FLAG_TAGS = re.compile("[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f")
_VS_RUN = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{2,}")
_BITS = re.compile("[\u2062\u2064\u200b]{7,}")
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*\Z")
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


@dataclass
class Normalized:
    """The outcome of `normalize()`.

    Attributes:
        text: the cleaned text (what should reach a prompt).
        hidden: payloads decoded from invisible encodings, for the detector only.
        findings: finding id -> how many times it fired.
    """

    text: str
    hidden: list[str] = field(default_factory=list)
    findings: Counter[str] = field(default_factory=Counter)


def normalize(text: str, *, max_combining: int = 2) -> Normalized:
    """Normalises untrusted text and reports every rule that fired.

    Args:
        text: raw user or listing text.
        max_combining: combining marks kept per base character; the rest are dropped.

    Returns:
        The cleaned text, any decoded hidden payloads, and the findings.
    """
    out = Normalized(text="")
    if _ANSI.search(text):
        text, n = _ANSI.subn("", text)
        out.findings["ansi_escape"] += n
    if not text.isascii() and _SUPPLEMENTARY.search(text):
        text = _TAGS.sub(lambda m: _tags(m, out), text)
        text = _VS_RUN.sub(lambda m: _vs_run(m.group(), out), text)
    if "\u2062" in text or "\u2064" in text:
        text = _BITS.sub(lambda m: _bits(m.group(), out), text)
    text = unicodedata.normalize("NFKC", text)
    out.text = _strip(text, out.findings, max_combining)
    return out


def _tags(m: re.Match[str], out: Normalized) -> str:
    run = m.group()
    if m.start() > 0 and m.string[m.start() - 1] == "\U0001f3f4" and _FLAG_TAGS.fullmatch(run):
        return run  # a real flag emoji such as Scotland's
    out.findings["tag_chars"] += len(run)
    out.hidden.append("".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E))
    return ""


def _vs_run(run: str, out: Normalized) -> str:
    if len(run) == 2 and run[0] not in "\ufe0e\ufe0f" and run[1] in "\ufe0e\ufe0f":
        return run[1]
    out.findings["variation_selector_smuggling"] += 1
    codes = [ord(c) - 0xE0100 if ord(c) >= 0xE0100 else ord(c) - 0xFE00 for c in run]
    if all(ord(c) >= 0xE0100 and 0x20 <= ord(c) - 0xE0100 < 0x7F for c in run):
        out.hidden.append("".join(chr(c) for c in codes))  # one code point per ASCII char
    else:  # one byte per selector: VS1-16 = 0-15, VS17-256 = 16-255
        raw = bytes(c + 16 if ord(ch) >= 0xE0100 else c for c, ch in zip(codes, run, strict=True))
        out.hidden.append(raw.decode("utf-8", errors="ignore"))
    return ""


def _bits(run: str, out: Normalized) -> str:
    out.findings["hidden_binary"] += 1
    words = []
    for word in run.split("\u200b"):
        bits = word.replace("\u2062", "0").replace("\u2064", "1")
        words.append("".join(chr(int(bits[i : i + 7], 2)) for i in range(0, len(bits) - 6, 7)))
    out.hidden.append(" ".join(words))
    return ""


def _strip(text: str, findings: Counter[str], max_combining: int) -> str:
    if _PLAIN.match(text):
        return text  # the common case: nothing to do
    # Only runs of characters outside the known-clean ranges are looked at one by one.
    return _SUSPECT.sub(lambda m: _strip_run(m, findings, max_combining), text)


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
