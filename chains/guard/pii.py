"""PII redaction: e-mail addresses, phone numbers, payment card numbers (Luhn-checked) and US SSNs.

Each match becomes a typed placeholder such as `[EMAIL]`, so the model still knows something was there.
Redaction runs after normalisation, so full-width digits or zero-width splits cannot hide a number.
"""

from __future__ import annotations

import re

__all__ = ["redact_pii"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# One pass over the digits: cards (13-19 digits, grouped by single spaces or dashes; Luhn-checked), US SSNs,
# NANP phones with a separator or parentheses (so prices, ZIPs and years are not phones), +country numbers.
_NUMBERS = re.compile(
    r"(?P<card>(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-]))"
    r"|(?P<ssn>(?<![\d-])(?!000|666|9\d\d)\d{3}(?P<sep_>[- ])(?!00)\d{2}(?P=sep_)(?!0000)\d{4}(?![\d-]))"
    r"|(?P<phone>(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)"
    r"|(?<![\w+])\+\d{1,3}[\s.-]?\d(?:[\s.-]?\d){6,12}(?!\d))"
)
# A cheap first pass, the precise one runs on its hits. It starts with a plain character class so `re` can skip
# to candidate positions in C (an optional `[+(]?` first would make it try the whole pattern at every position);
# it matches a superset of `[+(]?\d[\d ().-]{8,30}\d`.
_CANDIDATE = re.compile(r"[\d+(][\d ().-]{8,31}\d")
_PLACEHOLDER = {"card": "[CARD]", "ssn": "[SSN]", "phone": "[PHONE]"}


def redact_pii(text: str) -> tuple[str, list[str]]:
    """Replaces PII with placeholders.

    Args:
        text: normalised text.

    Returns:
        The redacted text and the kinds redacted, one entry per match (e.g. ["email", "phone"]).
    """
    kinds: list[str] = []

    def numbers(m: re.Match[str]) -> str:
        kind = m.lastgroup or ""
        if kind == "card" and not _luhn(m.group()):
            return m.group()
        kinds.append(kind)
        return _PLACEHOLDER[kind]

    def email(m: re.Match[str]) -> str:
        kinds.append("email")
        return "[EMAIL]"

    if "@" in text:
        text = _EMAIL.sub(email, text)
    if sum(map(text.count, "0123456789")) >= 8:  # the shortest number redacted (+CC and 7 digits) has 8
        text = _CANDIDATE.sub(lambda m: _NUMBERS.sub(numbers, m.group()), text)
    return text, kinds


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
