"""The audit trail's sealed text: prompt and answer encrypted, the hash chain verifiable without the key.

With a DATA_ENCRYPTION_KEY and AUDIT_TEXT on, a record's text leaves the hashed part of the line:

    {..., "text_hmac": {"prompt": H(p), "answer": H(a)}, "prev": ..., "hash": ..., "sealed": {"prompt": T(p), ...}}

- `sealed` holds Fernet tokens (gateway/crypto.py) and sits *outside* the hash: `hash` covers everything else
  (`verify()` drops `sealed` before hashing). `skymarket audit verify` therefore needs no key, and rotating the
  key (new tokens for the same text) changes no hash: `skymarket data rotate-key` rewrites `sealed` only.
- `text_hmac` is inside the hash and binds the text to the chain: HMAC-SHA256 of the (PII-redacted) text under
  AUDIT_HMAC_KEY, the key of the end-user hashes, which rotation leaves alone. Keyed, so a reader of the file
  cannot confirm a guessed prompt the way a plain SHA-256 would let them. A token moved from another record,
  or removed, is caught by `check_file()` (with the keys): its text no longer matches `text_hmac`.
- A text that is None has `text_hmac` null and no token. Records written before a key was configured keep
  their plain `prompt`/`answer` (inside the hash: sealing them would break the chain); `rekey_file()` counts
  them as `plain` so an operator sees them (retention prunes them in time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import DataKeyError
from gateway.crypto import Cipher

__all__ = ["TEXT_FIELDS", "RekeyReport", "check_file", "open_texts", "rekey_file", "seal", "text_hmac"]

TEXT_FIELDS = ("prompt", "answer")


def text_hmac(hmac_key: bytes, text: str) -> str:
    return hmac.new(hmac_key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def seal(event: dict[str, Any], *, cipher: Cipher, hmac_key: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """Splits a (scrubbed) event into its hashed body, text replaced by `text_hmac`, and its sealed tokens."""
    body = dict(event)
    digests: dict[str, str | None] = {}
    sealed: dict[str, str] = {}
    for name in TEXT_FIELDS:
        if name not in body:
            continue
        text = body.pop(name)
        if text is None:
            digests[name] = None
            continue
        digests[name] = text_hmac(hmac_key, str(text))
        sealed[name] = cipher.encrypt(str(text))
    if digests:
        body["text_hmac"] = digests
    return body, sealed


def open_texts(record: dict[str, Any], *, cipher: Cipher, hmac_key: bytes) -> dict[str, str | None]:
    """The prompt and answer of a sealed record, each checked against its `text_hmac`.

    Raises:
        DataKeyError: a token does not decrypt with the configured keys.
        ValueError: a text does not match its digest (a token swapped, removed or added).
    """
    digests = record.get("text_hmac") or {}
    sealed = record.get("sealed") or {}
    out: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        if name not in digests and name not in sealed:
            continue
        text = cipher.decrypt(sealed[name]) if name in sealed else None
        want = digests.get(name)
        got = text_hmac(hmac_key, text) if text is not None else None
        same = want == got if want is None or got is None else hmac.compare_digest(want, got)
        if not same:
            raise ValueError(f"its sealed {name} does not match its text_hmac (swapped, removed or added)")
        out[name] = text
    return out


@dataclass
class RekeyReport:
    records: int = 0  # lines read
    sealed: int = 0  # records with encrypted text (re-encrypted under the first key)
    plain: int = 0  # records holding plain text from before a key was configured (left as they are)
    written: bool = False


def _records(data: bytes) -> list[tuple[bytes, dict[str, Any] | None]]:
    out: list[tuple[bytes, dict[str, Any] | None]] = []
    for raw in data.splitlines(keepends=True):
        try:
            rec = json.loads(raw)
        except ValueError:
            rec = None
        out.append((raw, rec if isinstance(rec, dict) else None))
    return out


def rekey_file(path: Path, cipher: Cipher, *, dry_run: bool = False) -> RekeyReport:
    """Re-encrypts every sealed text of the audit file under the cipher's first key, atomically.

    Holds the writers' exclusive lock while it reads and writes the new file beside it, then renames it into
    place (writers re-open the file when it was replaced under them). Hashes do not change. Lines that are
    not records, and records without sealed text, are kept byte for byte.

    Args:
        path: the audit file.
        cipher: every key the text may be under, the new one first.
        dry_run: decrypt everything (so a missing key shows now) but write nothing.

    Raises:
        DataKeyError: a record's text does not decrypt (names the record); nothing is written.
    """
    from gateway.audit import fsync_dir, open_locked  # (audit.py imports this module)

    report = RekeyReport()
    if not path.exists():
        raise FileNotFoundError(path)
    fd = open_locked(path)  # the writers' lock, on the file the path names now (a prune may have replaced it)
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        lines: list[bytes] = []
        for n, (raw, rec) in enumerate(_records(data), start=1):
            report.records = n
            if rec is not None and isinstance(rec.get("sealed"), dict) and rec["sealed"]:
                try:
                    rec["sealed"] = {k: cipher.rotate(str(v)) for k, v in rec["sealed"].items()}
                except DataKeyError as exc:
                    raise DataKeyError(f"{path} record {n} (request_id {rec.get('request_id')}): {exc.message}"
                                       ) from None
                report.sealed += 1
                raw = (json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
            elif rec is not None and any(isinstance(rec.get(k), str) for k in TEXT_FIELDS):
                report.plain += 1
            lines.append(raw)
        if dry_run or report.sealed == 0:
            return report
        tmp = path.with_name(f".{path.name}.rekey-{os.getpid()}")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.fstat(fd).st_mode & 0o777)
        try:
            with os.fdopen(out, "wb") as f:
                f.write(b"".join(lines))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        report.written = True
        return report
    finally:
        os.close(fd)  # releases the lock: writers waiting on the old file see it replaced and re-open


def check_file(path: Path, cipher: Cipher, *, hmac_key: bytes) -> tuple[RekeyReport, str | None]:
    """Opens every sealed text and checks it against its digest: (counts, the first problem or None).

    Raises:
        DataKeyError: a text does not decrypt with the configured keys (names the record).
    """
    report = RekeyReport()
    for n, (_, rec) in enumerate(_records(path.read_bytes()), start=1):
        report.records = n
        if rec is None:
            continue
        if "text_hmac" in rec or "sealed" in rec:
            try:
                open_texts(rec, cipher=cipher, hmac_key=hmac_key)
            except DataKeyError as exc:
                raise DataKeyError(f"{path} record {n} (request_id {rec.get('request_id')}): {exc.message}"
                                   ) from None
            except (ValueError, KeyError, TypeError) as exc:
                return report, f"record {n} (request_id {rec.get('request_id')}): {exc}"
            report.sealed += 1
        elif any(isinstance(rec.get(k), str) for k in TEXT_FIELDS):
            report.plain += 1
    return report, None
