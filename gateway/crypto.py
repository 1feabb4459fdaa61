"""Encryption at rest for stored text: the audit trail's prompt and answer text, the describe cache's entries.

Fernet (AES-128-CBC + HMAC-SHA256, authenticated, from `cryptography`) under a `MultiFernet`: new text is
encrypted under the first key; any listed key decrypts. Keys come from DATA_ENCRYPTION_KEY (one key, or several
comma-separated, newest first) and then DATA_ENCRYPTION_KEY_FILE (one key per line, `#` comments). Rotation:
put a new key first, keep the old ones after it, run `skymarket data rotate-key` (everything is re-encrypted
under the first key), then drop the old keys. `skymarket data new-key` prints a fresh key.

Invalid key material fails when Settings are built (`Settings.data_keys`), never at request time. No key
configured: `build_cipher()` returns None and text is stored as before, in plain text (development only when
AUDIT_TEXT is on: production refuses to start then). A token that no listed key opens is a `DataKeyError`
naming the key problem; the describe cache turns it into a miss.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from errors import DataKeyError

__all__ = ["Cipher", "build_cipher", "is_token", "key_id", "new_key", "parse_keys"]

log = logging.getLogger("skymarket.crypto")

# Every Fernet token starts with version byte 0x80 and a 64-bit timestamp, base64url: "gAAAAA" for ~2000 years.
_TOKEN_HEAD = "gAAAAA"
_announced: set[str] = set()


def new_key() -> str:
    """A fresh random Fernet key (32 bytes, url-safe base64)."""
    return Fernet.generate_key().decode("ascii")


def key_id(key: bytes) -> str:
    """A short, non-secret name for a key (first 8 hex of its SHA-256): logs and reports name keys by it."""
    return hashlib.sha256(key).hexdigest()[:8]


def parse_keys(text: str, *, source: str = "") -> list[bytes]:
    """The Fernet keys in `text` (separated by commas or newlines; blank lines and `#` comments skipped).

    Args:
        text: the key material.
        source: the setting's name, for the error message (the key itself is never echoed).

    Raises:
        ValueError: a part is not a Fernet key.
    """
    keys: list[bytes] = []
    parts = [p.strip() for line in text.splitlines() for p in line.split("#", 1)[0].split(",")]
    for n, part in enumerate((p for p in parts if p), start=1):
        try:
            Fernet(part.encode("ascii"))
        except (ValueError, binascii.Error, UnicodeEncodeError):
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}key {n} is not a Fernet key (32 url-safe base64-encoded bytes; "
                             "`skymarket data new-key` makes one)") from None
        if part.encode() not in keys:
            keys.append(part.encode("ascii"))
    return keys


def is_token(value: str) -> bool:
    """Whether a stored value looks like a Fernet token (not plain text or JSON)."""
    return value.startswith(_TOKEN_HEAD) and re.fullmatch(r"[A-Za-z0-9_\-]+=*", value) is not None


class Cipher:
    """Encrypts under the first key, decrypts under any of them."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a Cipher needs at least one key")
        self.key_ids = [key_id(k) for k in keys]
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @property
    def current(self) -> str:
        """The id of the key new text is encrypted under."""
        return self.key_ids[0]

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The text of a token.

        Raises:
            DataKeyError: no configured key opens it (written under a key no longer listed, or altered).
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise DataKeyError(self._problem()) from None

    def rotate(self, token: str) -> str:
        """The same text re-encrypted under the first key.

        Raises:
            DataKeyError: no configured key opens it.
        """
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise DataKeyError(self._problem()) from None

    def _problem(self) -> str:
        return (f"stored text does not decrypt with any of the {len(self.key_ids)} configured key(s) "
                f"({', '.join(self.key_ids)}) from DATA_ENCRYPTION_KEY / DATA_ENCRYPTION_KEY_FILE: it was "
                "written under a key that is no longer listed (list the old key after the new one), or altered")


def build_cipher(settings: Any) -> Cipher | None:
    """The cipher of the settings' keys, or None when none is configured (text stays plain; logged once).

    Args:
        settings: `Settings` (its `data_keys` were checked when it was built).
    """
    # Settings always have `data_keys` (its errors propagate: never a silent fall back to plain text); a test's
    # stand-in namespace without the attribute has no keys.
    keys: list[bytes] = list(settings.data_keys) if hasattr(type(settings), "data_keys") else []
    mode = f"keys:{','.join(key_id(k) for k in keys)}" if keys else "plain"
    if mode not in _announced:
        _announced.add(mode)
        if keys:
            log.info("stored text (audit text, describe cache) is encrypted under key %s (%d key(s) listed)",
                     key_id(keys[0]), len(keys))
        else:
            log.warning("no DATA_ENCRYPTION_KEY: audit text (AUDIT_TEXT=%s) and describe cache entries are "
                        "stored in plain text", getattr(settings, "audit_text", False))
    return Cipher(keys) if keys else None
