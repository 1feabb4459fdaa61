"""The audit trail: one JSON line per request, hash-chained, with nothing secret in it.

Each line is a structlog event rendered as canonical JSON (sorted keys, no spaces). It carries `prev`, the
`hash` of the line before it, and its own `hash` = SHA-256 of the line's canonical JSON without `hash`.
Editing, inserting or deleting a line breaks the chain at that line; `verify()` (and
`skymarket audit verify FILE`) names the first broken record. Several processes may append to one file:
writes take an exclusive `flock` and read the last hash from the file itself when another process wrote.

Retention (gateway/audit_prune.py) replaces the oldest records by one *checkpoint* on the first line: its
`hash` is the last pruned record's hash (so the next record's `prev` still matches it, and writers chain on
from it like from any record), `pruned` says how many records it replaces and their time range, and `seal`
is the SHA-256 of the rest of it, so an edited checkpoint is caught. A checkpoint anywhere but the first line
is reported as broken. A prune renames a new file into place under the same `flock`; a writer that waited
for the lock on the old file notices (another inode at the path) and opens the new one (`open_locked`).

What a record never holds: API keys (only the key's *name*), the raw end-user id (only an HMAC of it under
AUDIT_HMAC_KEY), provider error messages (only the error's type), and prompt or answer text unless
AUDIT_TEXT is on, and then only after PII redaction. Every string goes through `scrub()` anyway.

With DATA_ENCRYPTION_KEY set, that text is sealed: encrypted outside the hashed part of the line, bound to it by
a keyed digest inside it, so the chain verifies without the key and survives key rotation (gateway/audit_seal.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from chains.guard.pii import redact_pii
from gateway.audit_seal import seal as seal_text
from gateway.context import RequestContext
from gateway.crypto import Cipher, build_cipher

__all__ = ["CHECKPOINT", "AuditLog", "Broken", "build_audit", "canonical", "checkpoint_record", "checkpoint_seal",
           "fsync_dir", "is_checkpoint", "main", "open_locked", "read_checkpoint", "scrub", "verify"]

log = logging.getLogger("skymarket.audit")

GENESIS = "0" * 64
CHECKPOINT = "audit_checkpoint"  # the `event` of the record that stands for pruned records
# Things shaped like credentials: OpenAI/our keys, bearer tokens, long opaque tokens after key=/token=.
_SECRET = re.compile(
    r"(?:sk|smk|pk|rk)[-_][A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]+=*"
    r"|(?i:(?:api[_-]?key|token|secret|password)\s*[=:]\s*)\S+"
)


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def scrub(value: Any) -> Any:
    """Removes credentials and PII (e-mails, phones, cards, SSNs) from every string inside `value`."""
    if isinstance(value, str):
        text = _SECRET.sub("[SECRET]", unicodedata.normalize("NFKC", value))
        return redact_pii(text)[0]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# An event -> (its hashed body without the text, the text's tokens kept outside the hash): audit_seal.seal.
_Seal = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]


class _ChainedFile:
    """structlog's logger: appends each event dict as a chained canonical JSON line."""

    def __init__(self, path: Path, *, seal: _Seal | None = None) -> None:
        self.path = path
        self._seal = seal  # text out of the hashed body, encrypted (audit_seal.py); None: no key, plain text
        self._lock = threading.Lock()
        self._last: tuple[int, str] | None = None  # (file size after our last write, its hash)

    def msg(self, event: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sealed: dict[str, str] = {}
        if self._seal is not None:
            event, sealed = self._seal(event)
        with self._lock:
            fd = open_locked(self.path)
            try:
                size = os.fstat(fd).st_size
                prev = self._last[1] if self._last and self._last[0] == size else _last_hash(fd, size)
                body = {**event, "prev": prev}
                digest = hashlib.sha256(canonical(body).encode()).hexdigest()
                record = {**body, "hash": digest, **({"sealed": sealed} if sealed else {})}
                line = (canonical(record) + "\n").encode()
                os.write(fd, line)
                self._last = (size + len(line), digest)
            finally:
                os.close(fd)  # closing releases the flock

    info = msg


def open_locked(path: Path) -> int:
    """Opens the audit file for appending under an exclusive `flock` (closing the fd releases it).

    A prune replaces the file (rename) while holding the lock on it: a writer that was waiting for that lock
    then holds a lock on a file nobody reads any more, so it checks that the path still names the file it
    locked, and opens the path again if not. Nothing is appended to a pruned-away file.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st, now = os.fstat(fd), os.stat(path)
            if (st.st_ino, st.st_dev) == (now.st_ino, now.st_dev):
                return fd
        except FileNotFoundError:  # renamed away and not yet replaced: open again
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _last_hash(fd: int, size: int) -> str:
    if size == 0:
        return GENESIS
    start = max(0, size - 65536)
    tail = os.pread(fd, size - start, start).rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return str(json.loads(tail)["hash"])
    except (ValueError, KeyError, TypeError):
        return hashlib.sha256(tail).hexdigest()  # a damaged last line: chain on from its bytes; verify flags it


_OPAQUE = frozenset({"time", "user", "request_id"})  # ids and hashes: hex runs could look like card numbers


def _scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: v if k in _OPAQUE else scrub(v) for k, v in event.items()}


def _to_logger(_: Any, __: str, event: MutableMapping[str, Any]) -> tuple[Any, ...]:
    return (dict(event),), {}


class AuditLog:
    """Writes request records. Build with `build_audit(settings)`."""

    def __init__(self, path: Path, *, hmac_key: bytes, keep_text: bool = False, cipher: Cipher | None = None) -> None:
        self.path = path
        self.keep_text = keep_text
        self.encrypted = cipher is not None
        self._key = hmac_key

        def _seal(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
            assert cipher is not None
            return seal_text(event, cipher=cipher, hmac_key=hmac_key)

        self._log = structlog.wrap_logger(
            _ChainedFile(path, seal=_seal if cipher is not None else None),
            processors=[structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
                        _scrub_event, _to_logger],
        )

    def user_hash(self, user_id: str | None) -> str | None:
        """HMAC-SHA256 of the end-user id (first 32 hex): linkable across records, not reversible."""
        if not user_id:
            return None
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:32]

    def record(self, ctx: RequestContext) -> None:
        """Writes the request's record."""
        event: dict[str, Any] = {
            "request_id": ctx.request_id,
            "key": ctx.key_name,
            "user": self.user_hash(ctx.user_id),
            "route": ctx.route,
            "endpoint": ctx.endpoint,
            "status": ctx.status,
            "models_tried": ctx.models_tried,
            "model": ctx.model,
            "fallback": ctx.fallback,
            "tokens": {"input": ctx.input_tokens, "cached": ctx.cached_tokens, "output": ctx.output_tokens},
            "cost_usd": round(ctx.cost_usd, 8),
            "priced": ctx.priced,
            "latency_ms": round(ctx.latency_ms, 2),
            "ttft_ms": round(ctx.ttft_ms, 2) if ctx.ttft_ms is not None else None,
            "error_type": ctx.error_type,
            "guard": {"action": ctx.guard_action, "reasons": list(ctx.guard_reasons)},
            "cache_hit": ctx.cache_hit,
            "refusal": ctx.refusal,
        }
        if self.keep_text:
            event["prompt"] = ctx.prompt_text
            event["answer"] = ctx.answer_text
        self._log.info(event="request", **event)


def _hmac_key(settings: Any) -> bytes:
    """AUDIT_HMAC_KEY, or a random key kept beside the audit file, the same for every process: it is written
    whole to a temporary file and linked into place (atomic), so a process starting at the same moment
    reads either nothing (and links its own, losing to the first) or the complete key, never half of one."""
    if settings.audit_hmac_key is not None:
        return bytes(settings.audit_hmac_key.get_secret_value().encode())
    path = Path(settings.audit_file).parent / ".hmac-key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".hmac-key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
        if settings.skymarket_env == "production":
            log.warning("AUDIT_HMAC_KEY is unset: end-user hashes use a key made for this machine only")
    except FileExistsError:  # another process linked its key first: use that one
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def build_audit(settings: Any) -> AuditLog:
    """The audit log of the settings (AUDIT_FILE, AUDIT_TEXT, AUDIT_HMAC_KEY, DATA_ENCRYPTION_KEY[_FILE])."""
    return AuditLog(Path(settings.audit_file), hmac_key=_hmac_key(settings), keep_text=settings.audit_text,
                    cipher=build_cipher(settings))


@dataclass(frozen=True)
class Broken:
    line: int  # 1-based, in the file as it is now
    request_id: str | None
    reason: str
    record: int | None = None  # 1-based in the whole trail, pruned records included (None: the checkpoint)


def fsync_dir(folder: Path) -> None:
    """Makes a rename inside `folder` durable (a prune's or a key rotation's new audit file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_seal(record: dict[str, Any]) -> str:
    """The checkpoint's seal: SHA-256 of its canonical JSON without `seal`."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "seal"}).encode()).hexdigest()


def checkpoint_record(*, last_hash: str, records: int, first_time: str | None, last_time: str | None,
                      at: str) -> dict[str, Any]:
    """The record that replaces `records` pruned records (every prune so far), sealed.

    Args:
        last_hash: the last pruned record's hash: the next record's `prev`.
        records: how many records were pruned, in all (earlier prunes included).
        first_time: the `time` of the first record ever pruned.
        last_time: the `time` of the last record pruned.
        at: when this prune ran (ISO, UTC).
    """
    body: dict[str, Any] = {"event": CHECKPOINT, "hash": last_hash,
                            "pruned": {"records": records, "first_time": first_time, "last_time": last_time,
                                       "at": at}}
    return {**body, "seal": checkpoint_seal(body)}


def is_checkpoint(record: Any) -> bool:
    return isinstance(record, dict) and record.get("event") == CHECKPOINT


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint on the file's first line, or None (a log never pruned, or an empty file)."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        rec = json.loads(first)
    except ValueError:
        return None
    return rec if is_checkpoint(rec) else None


def verify(path: Path) -> tuple[int, Broken | None]:
    """Checks the chain. Returns (records read, the first broken record or None).

    A pruned log starts with a checkpoint (not counted): its seal must hold, and the chain goes on from its
    `hash`. Records are numbered in the whole trail (`Broken.record`), so after a prune an edited record is
    still named by the same number as before it.
    """
    prev = GENESIS
    n = 0
    offset = 0  # records pruned before the first line (from the checkpoint)
    with open(path, "rb") as f:
        for line, raw in enumerate(f, start=1):
            try:
                rec = json.loads(raw)
                if is_checkpoint(rec):
                    if line != 1:
                        return n, Broken(line, None, "a checkpoint record after the first line "
                                                     "(a prune only writes one, as the first line)", line + offset)
                    if rec.get("seal") != checkpoint_seal(rec) or not isinstance(rec.get("hash"), str):
                        return n, Broken(line, None, "the checkpoint does not match its seal (edited)")
                    prev, offset = rec["hash"], int(rec["pruned"]["records"]) - 1
                    continue
                claimed = rec.pop("hash")
                rec.pop("sealed", None)  # encrypted text sits outside the hash (audit_seal.py): no key needed
            except (ValueError, KeyError, TypeError, AttributeError):
                return n, Broken(line, None, "not a chained JSON record", line + offset)
            n += 1
            rid = rec.get("request_id")
            if rec.get("prev") != prev:
                return n, Broken(line, rid, "its prev does not match the hash of the record before it", line + offset)
            if hashlib.sha256(canonical(rec).encode()).hexdigest() != claimed:
                return n, Broken(line, rid, "its content does not match its hash (edited)", line + offset)
            prev = claimed
    return n, None


def main(argv: list[str]) -> int:
    """`skymarket audit verify FILE`: exit 0 when the chain holds, 1 naming the first broken record."""
    if len(argv) != 2 or argv[0] != "verify":
        print("usage: skymarket audit verify FILE")
        return 2
    path = Path(argv[1])
    if not path.exists():
        print(f"no such file: {path}")
        return 2
    count, broken = verify(path)
    cp = read_checkpoint(path) if broken is None or broken.line > 1 else None
    pruned = ""
    if cp is not None:
        p = cp["pruned"]
        pruned = f" after a checkpoint of {p['records']} pruned records ({p['first_time']} .. {p['last_time']})"
    if broken is None:
        print(f"ok: {count} records{pruned}, the chain is intact")
        return 0
    where = f"record {broken.record} (line {broken.line})" if broken.record not in (None, broken.line) else \
        f"record {broken.line}" if broken.record is not None else f"line {broken.line}"
    print(f"BROKEN at {where} (request_id {broken.request_id}): {broken.reason}")
    return 1
