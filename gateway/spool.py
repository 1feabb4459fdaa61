"""The usage spool: ledger rows kept on disk while the database cannot take them (gateway/durable.py).

One file per spill, JSON lines, one `UsageRow` each. A file is written under a temporary name, flushed to
disk (fsync) and only then renamed to its final `*.jsonl` name, so a file under a final name is always whole;
a crash mid-write leaves a `.tmp` that nothing reads. Names start with the UTC time of the spill, so sorting
them replays the oldest first; the process id keeps the files of several workers sharing the folder apart.
Any process may replay any file (the ledger stores each row's `record_id` once, so a file replayed twice
counts once). Rows the database refused as invalid go to `rejected/` beside them, for an operator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.ledger import UsageRow

__all__ = ["SUFFIX", "list_files", "read_rows", "set_aside", "write_rows"]

log = logging.getLogger("skymarket.recording")

SUFFIX = ".jsonl"
_FIELDS = {f.name for f in dataclasses.fields(UsageRow)}
_SEQ = itertools.count()


def _encode(row: UsageRow) -> str:
    d: dict[str, Any] = dict(row.__dict__)
    d["ts"] = row.ts.isoformat()
    return json.dumps(d, ensure_ascii=True, separators=(",", ":"))


def _decode(line: str) -> UsageRow:
    d = json.loads(line)
    d["ts"] = dt.datetime.fromisoformat(d["ts"])
    return UsageRow(**{k: v for k, v in d.items() if k in _FIELDS})  # fields of another version: ignored


def write_rows(folder: Path, rows: Sequence[UsageRow], *, prefix: str = "usage") -> Path:
    """Writes rows to a new spool file (whole or not at all) and returns its path.

    Args:
        folder: the spool folder (made if missing, readable by this user only: rows name keys and costs).
        rows: the rows.
        prefix: the file name's start (`rejected` files use their own folder).

    Raises:
        OSError: the disk refused (full, read-only, ...); no partial file is left under the final name.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"{prefix}-{stamp}-{os.getpid()}-{next(_SEQ)}{SUFFIX}"
    tmp = final.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("".join(_encode(r) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def read_rows(path: Path) -> tuple[list[UsageRow], int]:
    """The rows of a spool file and the number of lines that could not be read as rows.

    Raises:
        FileNotFoundError: the file is gone (another process replayed it).
    """
    rows, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rows.append(_decode(line))
            except (ValueError, TypeError, KeyError):
                bad += 1
    return rows, bad


def list_files(folder: Path) -> list[Path]:
    """The spool files in `folder` (not `rejected/`, not unfinished `.tmp`), oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file())


def set_aside(path: Path) -> Path:
    """Moves a file with unreadable lines into `rejected/` (kept for an operator, never replayed again)."""
    target = path.parent / "rejected" / path.name
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.replace(path, target)
    return target
