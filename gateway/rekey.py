"""`skymarket data`: the keys of the stored text (encryption at rest, gateway/crypto.py).

    skymarket data new-key               print a fresh key
    skymarket data rotate-key [--dry-run] re-encrypt the audit text and the describe cache under the first key
    skymarket data check                 open every stored text; count what is still in plain text

Rotation: set DATA_ENCRYPTION_KEY="NEW,OLD", run `rotate-key`, then set DATA_ENCRYPTION_KEY="NEW". The audit
file is rewritten atomically under the writers' lock (its hashes do not change: audit_seal.py); a text that no
listed key opens stops the audit's rotation with an error naming the record, and nothing is written. The
describe cache is rewritten in one transaction (SQLite) or entry by entry (Redis): plain entries are encrypted,
entries that no key opens are deleted (they were misses already).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from errors import ConfigError, DataKeyError
from gateway.audit import _hmac_key
from gateway.audit_seal import check_file, rekey_file
from gateway.crypto import Cipher, build_cipher, is_token, new_key
from settings import Settings

if TYPE_CHECKING:
    from chains.describe.cache import RedisCache, SQLiteCache

__all__ = ["CacheReport", "main", "rekey_cache"]


@dataclass
class CacheReport:
    entries: int = 0
    rotated: int = 0  # encrypted entries, re-encrypted under the first key
    encrypted: int = 0  # plain entries (from before the key), now encrypted
    dropped: int = 0  # entries no configured key opens: deleted


def rekey_cache(store: SQLiteCache | RedisCache, cipher: Cipher, *, dry_run: bool = False) -> CacheReport:
    """Re-encrypts a describe cache store (`SQLiteCache` or `RedisCache`, not the sealed wrapper)."""
    report = CacheReport()

    def transform(value: str) -> str | None:
        if not is_token(value):
            report.encrypted += 1
            return cipher.encrypt(value)
        try:
            new = cipher.rotate(value)
        except DataKeyError:
            report.dropped += 1
            return None
        report.rotated += 1
        return new

    report.entries = store.rewrite(transform, dry_run=dry_run)
    return report


def _cache_store(settings: Settings) -> SQLiteCache | RedisCache | None:
    from chains.describe.cache import build_store  # imported here: chains is heavier than this command

    return build_store(settings) if settings.describe_cache_enabled else None


def _rotate(settings: Settings, cipher: Cipher, *, dry_run: bool) -> int:
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    audit_file = settings.audit_file
    if audit_file.exists():
        try:
            a = rekey_file(audit_file, cipher, dry_run=dry_run)
        except DataKeyError as exc:
            print(f"error: audit: {exc.message}; nothing was written")
            return 1
        print(f"audit {audit_file}: {a.records} records, {verb} the text of {a.sealed} under key {cipher.current}")
        if a.plain:
            print(f"  {a.plain} records hold plain text from before the key: the chain covers it, so it stays "
                  "until retention prunes those records")
    store = _cache_store(settings)
    if store is not None:
        try:
            c = rekey_cache(store, cipher, dry_run=dry_run)
        except Exception as exc:  # the store's own errors (sqlite3, redis): say which, exit non-zero
            print(f"error: describe cache: {type(exc).__name__}: {exc}")
            return 1
        print(f"describe cache ({type(store).__name__}): {c.entries} entries, {verb} {c.rotated}, "
              f"{'would encrypt' if dry_run else 'encrypted'} {c.encrypted} plain, "
              f"{'would drop' if dry_run else 'dropped'} {c.dropped} that no configured key opens")
    return 0


def _check(settings: Settings, cipher: Cipher) -> int:
    status = 0
    audit_file = settings.audit_file
    if audit_file.exists():
        try:
            a, problem = check_file(audit_file, cipher, hmac_key=_hmac_key(settings))
        except DataKeyError as exc:
            print(f"error: audit: {exc.message}")
            return 1
        print(f"audit {audit_file}: {a.records} records, {a.sealed} with sealed text, {a.plain} with plain text")
        if problem:
            print(f"BROKEN: {problem}")
            return 1
        status = 1 if a.plain else status
    store = _cache_store(settings)
    if store is not None:
        c = rekey_cache(store, cipher, dry_run=True)
        print(f"describe cache: {c.entries} entries, {c.rotated} encrypted, {c.encrypted} plain, "
              f"{c.dropped} that no configured key opens")
        status = 1 if c.encrypted else status
    return status


def main(argv: list[str]) -> int:
    """`skymarket data new-key | rotate-key [--dry-run] | check`: exit 0 done, 1 a key or store problem (or
    plain text found by `check`), 2 usage or configuration."""
    parser = argparse.ArgumentParser(prog="skymarket data", description="the keys of the stored text")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("new-key", help="print a fresh Fernet key")
    rotate = sub.add_parser("rotate-key", help="re-encrypt the audit text and the describe cache under the first key")
    rotate.add_argument("--dry-run", action="store_true", help="decrypt everything, write nothing")
    sub.add_parser("check", help="open every stored text and count what is still in plain text")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        print(new_key())
        return 0
    from settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc.message}")
        return 2
    cipher = build_cipher(settings)
    if cipher is None:
        print("error: no DATA_ENCRYPTION_KEY or DATA_ENCRYPTION_KEY_FILE is set: no key to encrypt under")
        return 2
    if args.command == "rotate-key":
        return _rotate(settings, cipher, dry_run=args.dry_run)
    return _check(settings, cipher)
