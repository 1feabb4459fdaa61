"""What the usage ledger still owes: rows waiting in memory and in spool files on disk (gateway/spool.py).

`DurableLedger` (gateway/durable.py) adds and removes rows on the writer thread; /readyz, /metrics and the
budgets read the counts and the spend from any thread. One lock guards both sides. A spool file is known by
its row count and its spend per (hour, key), so budgets read it without opening the file.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway import spool
from gateway.ledger import UsageRow

__all__ = ["Backlog"]


@dataclass
class _File:
    rows: int
    spend: dict[tuple[dt.datetime, str | None], float]  # (hour, key) -> USD


class Backlog:
    """Rows in memory (oldest first) and spool files (oldest first), with their counts and spend."""

    def __init__(self, folder: Path, *, clock: Callable[[], float]) -> None:
        """Args:
        folder: the spool folder (USAGE_SPOOL_DIR).
        clock: monotonic seconds.
        """
        self.folder = folder
        self.clock = clock
        self._lock = threading.Lock()
        self._memory: list[UsageRow] = []
        self._since = 0.0  # when the oldest row in memory arrived
        self._files: dict[Path, _File] = {}
        self.spilled = 0  # rows ever moved to disk

    # --- reads, from any thread ---
    @property
    def in_memory(self) -> int:
        return len(self._memory)

    @property
    def spooled(self) -> int:
        """Rows in spool files."""
        with self._lock:
            return sum(f.rows for f in self._files.values())

    @property
    def pending(self) -> int:
        """Rows waiting, in memory and on disk."""
        with self._lock:
            return len(self._memory) + sum(f.rows for f in self._files.values())

    @property
    def files(self) -> list[Path]:
        with self._lock:
            return sorted(self._files)

    def waited(self) -> float:
        """Seconds the oldest row in memory has waited (0 when none)."""
        return self.clock() - self._since if self._memory else 0.0

    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        """USD the waiting rows cost since `since`, by one key or all. Spool files keep it per hour: a `since`
        inside an hour counts that hour's spooled spend whole."""
        lo = _naive(since)
        hour = lo.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            total = sum(r.cost_usd for r in self._memory
                        if _naive(r.ts) >= lo and (key_name is None or r.key_name == key_name))
            total += sum(usd for f in self._files.values() for (h, k), usd in f.spend.items()
                         if h >= hour and (key_name is None or k == key_name))
        return total

    # --- changes, on the writer thread ---
    def keep(self, rows: Sequence[UsageRow]) -> None:
        with self._lock:
            if not self._memory:
                self._since = self.clock()
            self._memory.extend(rows)

    def head(self, n: int) -> list[UsageRow]:
        """The `n` oldest rows in memory (left in place)."""
        return self._memory[:n]

    def remove(self, n: int) -> None:
        """Removes the `n` oldest rows from memory (written, or lost)."""
        with self._lock:
            del self._memory[:n]

    def spill(self) -> Path:
        """Moves every row in memory to a new spool file.

        Raises:
            OSError: the disk refused; the rows stay in memory.
        """
        rows = list(self._memory)
        path = spool.write_rows(self.folder, rows)
        with self._lock:
            self._files[path] = _summary(rows)
            del self._memory[:len(rows)]
        self.spilled += len(rows)
        return path

    def adopt(self, path: Path, rows: Sequence[UsageRow]) -> None:
        """Counts a spool file found on disk (left by an earlier run)."""
        with self._lock:
            self._files[path] = _summary(rows)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._files.pop(path, None)


def _naive(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _summary(rows: Sequence[UsageRow]) -> _File:
    spend: dict[tuple[dt.datetime, str | None], float] = {}
    for r in rows:
        if r.cost_usd:
            key = (_naive(r.ts).replace(minute=0, second=0, microsecond=0), r.key_name)
            spend[key] = spend.get(key, 0.0) + r.cost_usd
    return _File(rows=len(rows), spend=spend)
