"""Pruning the audit trail: the records older than the retention go, one sealed checkpoint stands for them.

The file is append-only, so the prefix to prune never changes under us. A prune therefore runs in two steps:

1. without the lock, it reads the prefix of records older than the cutoff, checks their chain (a broken chain
   is never pruned: that would erase the evidence) and copies the checkpoint and the rest of the file as it
   is now into a temporary file beside it;
2. under the writers' `flock` (`gateway.audit.open_locked`), it copies what was appended meanwhile, flushes
   the temporary file to disk and renames it over the log. Writers that waited for the lock find a new file
   at the path and append there, so no record is lost and the chain goes on from the last one.

The checkpoint's `hash` is the last pruned record's hash, so the first kept record's `prev` still matches it
(gateway/audit.py). Pruning again folds the old checkpoint into the new one (its count and first time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from errors import RetentionError
from gateway.audit import (
    GENESIS,
    canonical,
    checkpoint_record,
    checkpoint_seal,
    fsync_dir,
    is_checkpoint,
    open_locked,
)

__all__ = ["AuditPrune", "prune_audit"]

_COPY = 1 << 20


@dataclass(frozen=True)
class AuditPrune:
    records: int  # pruned by this run (or that would be, in a dry run)
    first_time: str | None = None
    last_time: str | None = None


@dataclass
class _Prefix:
    records: int = 0
    end: int = 0  # byte offset just after the last record to prune
    last_hash: str = GENESIS
    first_time: str | None = None
    last_time: str | None = None
    earlier: int = 0  # records an earlier checkpoint already stands for
    earlier_first: str | None = None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _scan(f: IO[bytes], cutoff: dt.datetime) -> _Prefix:
    """The prefix of records older than `cutoff`, its chain checked (RetentionError if broken)."""
    out = _Prefix()
    prev, line, pos = GENESIS, 0, 0
    for raw in f:
        line += 1
        pos += len(raw)
        if not raw.endswith(b"\n"):  # a record being written right now: it is new, keep it
            break
        try:
            rec = json.loads(raw)
        except ValueError:
            raise RetentionError(f"audit line {line} is not JSON: not pruning a broken chain "
                                 "(see `skymarket audit verify`)") from None
        if is_checkpoint(rec):
            if line != 1 or rec.get("seal") != checkpoint_seal(rec):
                raise RetentionError(f"audit line {line}: a checkpoint that is edited or not first: not pruning "
                                     "(see `skymarket audit verify`)")
            prev = out.last_hash = str(rec["hash"])
            out.end = pos
            out.earlier = int(rec["pruned"]["records"])
            out.earlier_first = rec["pruned"].get("first_time")
            continue
        t = _time(rec.get("time")) if isinstance(rec, dict) else None
        if t is None or t >= cutoff:
            break
        body = {k: v for k, v in rec.items() if k not in ("hash", "sealed")}  # sealed text is outside the hash
        if rec.get("prev") != prev or hashlib.sha256(canonical(body).encode()).hexdigest() != rec.get("hash"):
            raise RetentionError(f"audit line {line}: the chain is broken there: not pruning "
                                 "(see `skymarket audit verify`)")
        prev = out.last_hash = str(rec["hash"])
        out.records += 1
        out.end = pos
        out.first_time = out.first_time or rec["time"]
        out.last_time = rec["time"]
    return out


def _copy_range(src: int, dst: IO[bytes], start: int, end: int) -> None:
    pos = start
    while pos < end:
        chunk = os.pread(src, min(_COPY, end - pos), pos)
        if not chunk:
            raise RetentionError("the audit file shrank while it was being pruned")
        dst.write(chunk)
        pos += len(chunk)


class _Replaced(Exception):
    """Another prune (another worker's daily job, a `skymarket prune`) replaced the file during ours."""


def prune_audit(path: Path, cutoff: dt.datetime, *, now: dt.datetime, dry_run: bool = False,
                attempts: int = 3) -> AuditPrune:
    """Replaces the records older than `cutoff` by one checkpoint (atomically; see the module docstring).

    Args:
        path: the audit file (AUDIT_FILE); a missing file prunes nothing.
        cutoff: records whose `time` is before this go (aware, or naive UTC).
        now: when this prune runs (written into the checkpoint).
        dry_run: only count what would go.
        attempts: how often to start again when another prune replaced the file meanwhile (it then usually
            finds nothing left to prune).

    Raises:
        RetentionError: the prefix's chain is broken (it is kept), or other prunes kept replacing the file.
    """
    cutoff = cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=dt.UTC)
    for _ in range(attempts):
        try:
            return _prune_once(path, cutoff, now=now, dry_run=dry_run)
        except _Replaced:
            continue
    raise RetentionError("the audit file was replaced by other prunes while pruning: try again")


def _prune_once(path: Path, cutoff: dt.datetime, *, now: dt.datetime, dry_run: bool) -> AuditPrune:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the rename
    except FileNotFoundError:
        return AuditPrune(0)
    with f:
        first_ino = os.fstat(f.fileno()).st_ino
        prefix = _scan(f, cutoff)
        result = AuditPrune(prefix.records, prefix.first_time, prefix.last_time)
        if dry_run or prefix.records == 0:
            return result
        cp = checkpoint_record(
            last_hash=prefix.last_hash, records=prefix.earlier + prefix.records,
            first_time=prefix.earlier_first or prefix.first_time, last_time=prefix.last_time,
            at=now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"))
        tmp = path.with_name(f".{path.name}.prune-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                os.fchmod(out.fileno(), stat.S_IMODE(os.fstat(f.fileno()).st_mode))  # the log's own mode
                out.write((canonical(cp) + "\n").encode())
                copied = os.fstat(f.fileno()).st_size
                _copy_range(f.fileno(), out, prefix.end, copied)  # the bulk, without holding writers up
                fd = open_locked(path)
                try:
                    if os.fstat(fd).st_ino != first_ino:
                        raise _Replaced
                    out.flush()
                    _copy_range(fd, out, copied, os.fstat(fd).st_size)  # appended meanwhile
                    out.flush()
                    os.fsync(out.fileno())
                    os.replace(tmp, path)
                finally:
                    os.close(fd)  # releases the lock: waiting writers reopen the path (the new file)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    return result
