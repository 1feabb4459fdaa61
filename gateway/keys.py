"""API keys: created and revoked by the CLI, stored hashed, looked up per request from an in-memory cache.

A key is `smk_` + 43 URL-safe characters (256 random bits), shown once at creation. Only its SHA-256 is
stored: with that much entropy a slow password hash adds nothing, and a fast one keeps auth under a
millisecond. The store is a SQLite file under `data/` (`GATEWAY_KEYS_FILE`, shared safely by several
processes: gateway/db.py), or the `DATABASE_URL` database (PostgreSQL) when set, through SQLAlchemy.

The server reads the table into memory at start and again every `GATEWAY_KEYS_REFRESH_S` (a thread of the
gateway, `gateway.gate`), so a key created or revoked from the CLI (another process) applies within that time
plus one table read; `last_used_at` is written back on the same rhythm rather than once per request. A
request only hashes the key it presents and looks the hash up in memory.

    skymarket keys create --name web-app --scopes chat,search,describe,guard [--rpm N --tpm N --daily-budget USD]
    skymarket keys list
    skymarket keys set-limits web-app --rpm 120 --tpm none --daily-budget 10   # `none`: the global default
    skymarket keys revoke web-app

Changed limits and budgets apply, like a revocation, within the refresh interval: each request reads them from
the key's record in memory (gateway/gate.py), so the next refresh is the next request's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.db import create_tables, database_url, open_engine
from settings import Settings

__all__ = ["ALL_SCOPES", "KeyRecord", "KeyStore", "build_key_store", "hash_key", "main"]

ALL_SCOPES = ("chat", "search", "describe", "guard", "admin")
_PREFIX = "smk_"

_meta = sa.MetaData()
_keys = sa.Table(
    "api_keys", _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(256), nullable=False),
    sa.Column("rpm", sa.Integer, nullable=True),
    sa.Column("tpm", sa.Integer, nullable=True),
    sa.Column("daily_budget_usd", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class KeyRecord:
    """One key as the gateway sees it; never holds the key or its hash."""

    name: str
    scopes: frozenset[str]
    rpm: int | None = None
    tpm: int | None = None
    daily_budget_usd: float | None = None
    created_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    revoked: bool = False


class KeyStore:
    """The key table plus the server's in-memory view of the active keys."""

    def __init__(self, engine: sa.Engine, *, refresh_s: float = 5.0) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._by_prefix: dict[str, list[tuple[str, KeyRecord]]] = {}
        self._loaded_at = float("-inf")
        self._count = 0
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def create_table(self) -> None:
        create_tables(_meta, self.engine)

    # --- administration (CLI) ---
    def create(self, *, name: str, scopes: list[str], rpm: int | None = None, tpm: int | None = None,
               daily_budget_usd: float | None = None) -> str:
        """Creates a key and returns it; the only time it exists in clear.

        Args:
            name: a unique label (letters, digits, `-`, `_`), shown in logs and usage reports.
            scopes: routes the key may call, from `ALL_SCOPES`.
            rpm: its own requests-per-minute limit (default: AI_RATE_LIMIT_RPM).
            tpm: its own tokens-per-minute limit (default: AI_RATE_LIMIT_TPM).
            daily_budget_usd: its own hard budget per UTC day (default: none).

        Raises:
            ValueError: a bad name or scope, or the name is taken.
        """
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError("name: 1-64 letters, digits, '-', '_' or '.'")
        unknown = set(scopes) - set(ALL_SCOPES)
        if not scopes or unknown:
            raise ValueError(f"scopes: choose from {', '.join(ALL_SCOPES)}")
        key = _PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "key_hash": hash_key(key), "scopes": ",".join(sorted(set(scopes))), "rpm": rpm,
               "tpm": tpm, "daily_budget_usd": daily_budget_usd, "created_at": _now()}
        try:
            with self.engine.begin() as conn:
                conn.execute(_keys.insert().values(**row))
        except sa.exc.IntegrityError:
            raise ValueError(f"a key named {name!r} exists (revoke it first, or pick another name)") from None
        self._loaded_at = float("-inf")
        return key

    def revoke(self, name: str) -> bool:
        """Revokes a key by name; False when there is no active key of that name. The row is kept, renamed
        so the name can be reused, for the usage reports that still mention it."""
        stamp = _now()
        with self.engine.begin() as conn:
            n = conn.execute(
                _keys.update().where(_keys.c.name == name, _keys.c.revoked_at.is_(None))
                .values(revoked_at=stamp, name=f"{name}~{int(stamp.timestamp())}")
            ).rowcount
        if n:  # this process's view drops it at once; other processes at their next refresh
            self._by_prefix = {prefix: [(h, r) for h, r in entries if r.name != name]
                               for prefix, entries in self._by_prefix.items()}
        self._loaded_at = float("-inf")
        return bool(n)

    def set_limits(self, name: str, **limits: float | None) -> bool:
        """Changes an active key's own limits; False when there is no active key of that name.

        Args:
            name: the key's name.
            **limits: any of `rpm`, `tpm`, `daily_budget_usd`; None clears it (the global default applies).
                A limit not given is left as it is.

        Raises:
            ValueError: an unknown limit, or a value below its minimum (rpm, tpm >= 1; budget >= 0).
        """
        if unknown := set(limits) - {"rpm", "tpm", "daily_budget_usd"}:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        for field, v in limits.items():
            if v is not None and (v < 0 or (field != "daily_budget_usd" and (v < 1 or v != int(v)))):
                raise ValueError(f"{field}: must be {'>= 0' if field == 'daily_budget_usd' else 'a whole number >= 1'}")
        if not limits:
            return bool(any(r.name == name for r in self.list()))
        values = {f: (int(v) if v is not None and f != "daily_budget_usd" else v) for f, v in limits.items()}
        with self.engine.begin() as conn:
            n = conn.execute(
                _keys.update().where(_keys.c.name == name, _keys.c.revoked_at.is_(None)).values(**values)
            ).rowcount
        self._loaded_at = float("-inf")  # this process: at its next refresh
        return bool(n)

    def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_keys).order_by(_keys.c.created_at)).mappings().all()
        return [_record(r) for r in rows if include_revoked or r["revoked_at"] is None]

    # --- the server's view ---
    def refresh(self) -> None:
        """Reloads the active keys and writes back the last-used times gathered since the last refresh."""
        with self._lock:
            used, self._used = self._used, {}
        with self.engine.begin() as conn:
            for name, when in used.items():
                conn.execute(_keys.update().where(_keys.c.name == name)
                             .values(last_used_at=dt.datetime.fromtimestamp(when, dt.UTC)))
            rows = conn.execute(sa.select(_keys).where(_keys.c.revoked_at.is_(None))).mappings().all()
        by_prefix: dict[str, list[tuple[str, KeyRecord]]] = {}
        for r in rows:
            by_prefix.setdefault(r["key_hash"][:8], []).append((r["key_hash"], _record(r)))
        self._by_prefix = by_prefix
        self._count = len(rows)
        self._loaded_at = time.monotonic()

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.refresh_s

    @property
    def active_count(self) -> int:
        return self._count

    def lookup(self, key: str) -> KeyRecord | None:
        """The active key matching `key`, or None.

        Candidates are found by the first 8 hex digits of the guess's SHA-256 (which a caller cannot steer);
        each candidate's full hash is compared with `hmac.compare_digest`, in constant time.
        """
        digest = hash_key(key)
        found = None
        for stored, record in self._by_prefix.get(digest[:8], ()):
            if hmac.compare_digest(stored, digest):
                found = record
        if found is not None:
            self._mark_used(found.name)
        return found

    def _mark_used(self, name: str) -> None:
        with self._lock:  # refresh() swaps the dict from another thread
            self._used[name] = time.time()  # the datetime is built at write-back


def _record(r: Any) -> KeyRecord:
    return KeyRecord(
        name=r["name"], scopes=frozenset(s for s in r["scopes"].split(",") if s), rpm=r["rpm"], tpm=r["tpm"],
        daily_budget_usd=r["daily_budget_usd"], created_at=r["created_at"], last_used_at=r["last_used_at"],
        revoked=r["revoked_at"] is not None,
    )


def build_key_store(*, settings: Settings) -> KeyStore:
    """The key store of these settings (nothing connects until first use).

    Args:
        settings: `DATABASE_URL` when set, else the SQLite file `GATEWAY_KEYS_FILE`.
    """
    url = database_url(database_url=settings.database_url, sqlite_file=settings.gateway_keys_file)
    return KeyStore(open_engine(url), refresh_s=settings.gateway_keys_refresh_s)


def main(argv: list[str]) -> int:
    """`skymarket keys create|list|set-limits|revoke`."""
    from settings import load_settings

    parser = argparse.ArgumentParser(prog="skymarket keys", description="manage the service's API keys")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(ALL_SCOPES)}")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--daily-budget", type=float, help="USD per UTC day")
    lst = sub.add_parser("list", help="list keys (never the keys themselves)")
    lst.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    limits = sub.add_parser("set-limits", help="change a key's own limits and budget ('none': the global default)")
    limits.add_argument("name")
    # SUPPRESS: an option not given is absent (left as it is); `none` is given and clears the limit
    limits.add_argument("--rpm", type=_limit(int), default=argparse.SUPPRESS)
    limits.add_argument("--tpm", type=_limit(int), default=argparse.SUPPRESS)
    limits.add_argument("--daily-budget", type=_limit(float), default=argparse.SUPPRESS, dest="daily_budget_usd",
                        help="USD per UTC day")
    args = parser.parse_args(argv)

    store = build_key_store(settings=load_settings())
    store.create_table()
    if args.command == "create":
        try:
            key = store.create(name=args.name, scopes=[s.strip() for s in args.scopes.split(",") if s.strip()],
                               rpm=args.rpm, tpm=args.tpm, daily_budget_usd=args.daily_budget)
        except ValueError as exc:
            print(f"error: {exc}")
            return 2
        print(key)
        print(f"# key {args.name!r} created; it is shown only this once: store it now", flush=True)
        return 0
    if args.command == "list":
        print(f"{'NAME':<24}{'SCOPES':<34}{'RPM':>6}{'TPM':>9}{'BUDGET':>9}  {'CREATED':<17}{'LAST USED':<17}")
        for k in store.list(include_revoked=args.all):
            print(f"{k.name:<24}{','.join(sorted(k.scopes)):<34}{_n(k.rpm):>6}{_n(k.tpm):>9}"
                  f"{_n(k.daily_budget_usd):>9}  {_t(k.created_at):<17}{_t(k.last_used_at):<17}"
                  + ("revoked" if k.revoked else ""))
        return 0
    if args.command == "set-limits":
        return _set_limits(store, args)
    if store.revoke(args.name):
        print(f"key {args.name!r} revoked (running servers stop accepting it within "
              f"{store.refresh_s:g} s)")
        return 0
    print(f"error: no active key named {args.name!r}")
    return 1


def _limit(kind: type) -> Any:
    """An argparse type: a number, or `none` (cleared: the global default applies)."""

    def parse(text: str) -> Any:
        if text.strip().lower() in ("none", "default", "-"):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def _set_limits(store: KeyStore, args: argparse.Namespace) -> int:
    changes = {f: getattr(args, f) for f in ("rpm", "tpm", "daily_budget_usd") if hasattr(args, f)}
    if not changes:
        print("error: give at least one of --rpm, --tpm, --daily-budget")
        return 2
    try:
        found = store.set_limits(args.name, **changes)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    if not found:
        print(f"error: no active key named {args.name!r}")
        return 1
    shown = ", ".join(f"{f}={'default' if v is None else f'{v:g}'}" for f, v in changes.items())
    print(f"key {args.name!r}: {shown} (running servers apply it within {store.refresh_s:g} s)")
    return 0


def _n(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _t(v: dt.datetime | None) -> str:
    return "-" if v is None else v.strftime("%Y-%m-%d %H:%M")
