"""PII redaction: e-mails, phone numbers, Luhn-valid card numbers and SSNs become placeholders listed in
`redactions`; look-alikes (prices, ZIP codes, invalid card numbers) are left alone; the setting turns it off."""

from __future__ import annotations

import pytest

from chains.guard.models import GuardConfig
from chains.guard.pii import redact_pii
from chains.guard.screen import screen


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("mail me at jane.doe+drone@example.co.uk", "mail me at [EMAIL]", ["email"]),
        ("call (313) 555-0142 today", "call [PHONE] today", ["phone"]),
        ("call 313-555-0142", "call [PHONE]", ["phone"]),
        ("call +1 248 555 0199", "call [PHONE]", ["phone"]),
        ("call 248.555.0199", "call [PHONE]", ["phone"]),
        ("UK office +44 20 7946 0958", "UK office [PHONE]", ["phone"]),
        ("card 4111 1111 1111 1111 please", "card [CARD] please", ["card"]),
        ("card 4111-1111-1111-1111", "card [CARD]", ["card"]),
        ("amex 378282246310005", "amex [CARD]", ["card"]),
        ("ssn 123-45-6789", "ssn [SSN]", ["ssn"]),
        ("ssn 123 45 6789", "ssn [SSN]", ["ssn"]),
    ],
)
def test_redacts(text: str, expected: str, kinds: list[str]) -> None:
    assert redact_pii(text) == (expected, kinds)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112 is not a valid card",  # fails Luhn
        "the job is $1,250 for 3 hours on 2026-07-04",
        "ZIP 48226 and 48009, Part 107",
        "SSN-like but invalid: 000-12-3456 and 666-12-3456",
        "order #1234567 shipped",
        "lot size 43560 sq ft",
    ],
)
def test_leaves_look_alikes(text: str) -> None:
    assert redact_pii(text) == (text, [])


def test_obfuscated_numbers_are_caught_after_normalisation() -> None:
    v = screen("call ３１３-５５５-０１４２ or 313\u200b-555-0142")
    assert v.text == "call [PHONE] or [PHONE]"
    assert v.redactions == ["phone", "phone"]


def test_setting_off_keeps_pii() -> None:
    v = screen("mail jane@example.com", config=GuardConfig(redact_pii=False))
    assert v.text == "mail jane@example.com" and v.redactions == []
