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

from chains.guard.strip import strip_invisible, unusual

__all__ = ["FINDINGS", "Normalized", "normalize"]

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
    if ("\x1b" in text or "\x9b" in text) and _ANSI.search(text):  # `in` is C-fast; the regex is not
        text, n = _ANSI.subn("", text)
        out.findings["ansi_escape"] += n
    if not text.isascii() and _SUPPLEMENTARY.search(unusual(text)):
        text = _TAGS.sub(lambda m: _tags(m, out), text)
        text = _VS_RUN.sub(lambda m: _vs_run(m.group(), out), text)
    if "\u2062" in text or "\u2064" in text:
        text = _BITS.sub(lambda m: _bits(m.group(), out), text)
    text = unicodedata.normalize("NFKC", text)
    out.text = strip_invisible(text, out.findings, max_combining)
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
