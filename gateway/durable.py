"""`DurableLedger`: every usage row reaches the ledger exactly once, across database outages and restarts.

A batch the database does not take is kept, in order, and retried every USAGE_RETRY_S:

    memory   up to USAGE_BACKLOG_MAX_ROWS rows; rows that waited USAGE_SPOOL_AFTER_S (the database stays
             down) or past that bound go to
    spool    files on disk (gateway/spool.py, USAGE_SPOOL_DIR), replayed oldest first when it is back, and
             at the next start by whichever process starts (a spool left by a crash or a stop is not lost).

Exactly once: each row carries its own `record_id`, and `Ledger.record` stores an id once and adds only the
rows it inserted to the rollups, so a batch whose commit succeeded but whose answer was lost, or a file
replayed by two processes, counts once. Rows the database refuses as invalid (a value it cannot store) are
found by halving the batch, written to the spool's `rejected/` folder and counted; nothing else is ever set
aside. A row is dropped only when the database, the disk and the memory bound all fail at once, and counted
(`skymarket_usage_rows_dropped_total`, which must stay 0).

Only the writer thread (gateway/writer.py) writes: `write` for each batch, `retry` when idle, `drain` at
shutdown; `status` (for /readyz) and `spend_since` (budgets count the spend still waiting) read from any
thread. What waits is kept by a `Backlog` (gateway/backlog.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from gateway import spool
from gateway.backlog import Backlog
from gateway.ledger import Ledger, UsageRow

__all__ = ["Drained", "DurableLedger"]

log = logging.getLogger("skymarket.recording")

_CHUNK = 1000  # rows per transaction when the backlog is written back


@dataclass(frozen=True)
class Drained:
    """What `DurableLedger.drain` did with the rows it held."""

    written: int
    spooled: int
    dropped: int


def refused_rows(exc: BaseException) -> bool:
    """Whether an error is about the rows' contents (halve the batch to find them) rather than a database
    that is down or unusable (keep everything and retry)."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError | OSError | TimeoutError):
        return False
    return isinstance(exc, StatementError | TypeError | ValueError)  # a value that could not even be sent


class DurableLedger:
    """The ledger behind a backlog that survives outages (see the module docstring)."""

    def __init__(self, ledger: Ledger, *, spool_dir: Path, max_rows: int = 10_000, spool_after_s: float = 5.0,
                 retry_s: float = 1.0, count: Callable[[str, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Args:
        ledger: the ledger written to.
        spool_dir: where rows wait on disk (USAGE_SPOOL_DIR).
        max_rows: the most rows waiting in memory (USAGE_BACKLOG_MAX_ROWS).
        spool_after_s: rows that waited this long in memory go to disk (USAGE_SPOOL_AFTER_S).
        retry_s: how often the backlog is tried again while the database is down (USAGE_RETRY_S).
        count: called with (what, n) for rows `dropped` or `rejected` and `failures` (metrics).
        clock: monotonic seconds (tests).
        """
        self.ledger = ledger
        self.spool_dir = spool_dir
        self.max_rows = max_rows
        self.spool_after_s = spool_after_s
        self.retry_s = retry_s
        self.count = count or (lambda what, n: None)
        self.clock = clock
        self.backlog = Backlog(spool_dir, clock=clock)
        self._lock = threading.Lock()  # the outage's state, read by `status`
        self._down_since: float | None = None  # monotonic time of the first failure of this outage
        self._down_at: dt.datetime | None = None
        self._error: str | None = None
        self._next_try = 0.0
        self._needs_create = False
        self._closing = False  # after `drain`: rows that cannot be written go to disk at once
        self.dropped = self.rejected = 0

    # --- what others read ---
    @property
    def pending(self) -> int:
        """Rows waiting for the ledger, in memory and on disk."""
        return self.backlog.pending

    @property
    def spooled(self) -> int:
        """Rows waiting in spool files."""
        return self.backlog.spooled

    def status(self) -> dict[str, Any] | None:
        """None when every row is written; else what /readyz shows under `degraded.usage_ledger`."""
        pending, spooled = self.backlog.pending, self.backlog.spooled
        with self._lock:
            if self._error is None and not pending:
                return None
            return {"backlog_rows": pending, "spooled_rows": spooled, "error": self._error,
                    "since": self._down_at.isoformat() if self._down_at else None, "dropped_rows": self.dropped}

    def spend_since(self, since: dt.datetime, *, key_name: str | None = None) -> float:
        """The ledger's spend since `since` plus what the backlog still holds (budgets: `SpendSource`).

        The backlog is read first: a batch written in between is then counted twice for a moment (a budget
        errs strict), never missed.
        """
        waiting = self.backlog.spend_since(since, key_name=key_name)
        return waiting + self.ledger.spend_since(since, key_name=key_name)

    # --- the writer thread ---
    def start(self) -> None:
        """Takes over the spool files a previous run left (replayed at the first `retry`, at once)."""
        found = 0
        for path in spool.list_files(self.spool_dir):
            try:
                rows, _ = spool.read_rows(path)
            except OSError:
                continue
            self.backlog.adopt(path, rows)
            found += len(rows)
        if found:
            log.warning("usage spool: %d row(s) left by an earlier run; writing them to the ledger", found)
            self._next_try = 0.0

    def mark_down(self, exc: BaseException) -> None:
        """The ledger failed outside a write (at start): rows wait until it answers."""
        self._failed(exc)

    def write(self, rows: Sequence[UsageRow]) -> None:
        """Writes a new batch, or keeps it behind the rows already waiting (order kept). Never raises."""
        if rows:
            if self._down_since is None and not self.backlog.pending and self._try(list(rows)):
                return
            self.backlog.keep(rows)
        self.retry()

    def retry(self, *, force: bool = False) -> None:
        """When a retry is due (or `force`): writes what waits, oldest first; then moves rows that waited too
        long, or too many, to disk. Called for every batch and on the writer's idle ticks. Never raises."""
        if self.backlog.pending and (force or self.clock() >= self._next_try):
            self._write_backlog()
        self._maybe_spill()

    def drain(self) -> Drained:
        """Shutdown: one last try to write what waits, then everything still in memory to the spool. Rows are
        never dropped here unless the disk fails too (counted). Call after the writer thread has stopped; rows
        written after it (a request that finished later) that the database does not take go to disk at once."""
        self._closing = True
        before, spilled = self.pending, self.backlog.spilled
        self.retry(force=True)  # what the ledger takes is written; the rest goes to disk (closing)
        dropped = self.backlog.in_memory
        if dropped:
            self.backlog.remove(dropped)
            self._drop(dropped, "at shutdown, the database and the spool both failing")
        return Drained(written=before - self.pending - dropped, spooled=self.backlog.spilled - spilled,
                       dropped=dropped)

    # --- inside ---
    def _try(self, rows: list[UsageRow]) -> bool:
        """Writes rows (True), or finds the ledger down (False: nothing was lost, all of them to keep). Rows the
        database refuses are found by halving the batch and set aside in one `rejected/` file."""
        refused: list[UsageRow] = []
        ok = self._try_halves(rows, refused)
        if refused:
            self._reject(refused)
        return ok

    def _try_halves(self, rows: list[UsageRow], refused: list[UsageRow]) -> bool:
        try:
            if self._needs_create:
                self.ledger.create()
                self._needs_create = False
            self.ledger.record(*rows)
            return True
        except Exception as exc:
            if not refused_rows(exc):
                self._failed(exc)
                return False
            if len(rows) == 1:
                log.error("usage ledger refused row %s: %s", rows[0].record_id, type(exc).__name__)
                refused.append(rows[0])
                return True
            half = len(rows) // 2  # a half already written is written again for nothing: ids make it a no-op
            return self._try_halves(rows[:half], refused) and self._try_halves(rows[half:], refused)

    def _write_backlog(self) -> None:
        written = 0
        for path in self.backlog.files:
            try:
                rows, bad = spool.read_rows(path)
            except FileNotFoundError:  # another process replayed it
                rows, bad = [], 0
            except OSError as exc:
                self._failed(exc)
                return
            for i in range(0, len(rows), _CHUNK):
                if not self._try(rows[i:i + _CHUNK]):
                    return
            self._forget(path, bad)
            written += len(rows)
        while chunk := self.backlog.head(_CHUNK):
            if not self._try(chunk):
                return
            self.backlog.remove(len(chunk))
            written += len(chunk)
        self._recovered(written)

    def _maybe_spill(self) -> None:
        n = self.backlog.in_memory
        if not n:
            return
        if self._closing or n >= self.max_rows or self.backlog.waited() >= self.spool_after_s:
            try:
                path = self.backlog.spill()
                log.warning("usage ledger still down: %d row(s) moved to the spool (%s)", n, path.name)
            except OSError as exc:
                log.error("usage spool write failed (%s): %d row(s) stay in memory", type(exc).__name__, n)
        over = self.backlog.in_memory - self.max_rows
        if over > 0:  # the disk failed too, and memory is full: the oldest go (counted)
            self.backlog.remove(over)
            self._drop(over, "the backlog is full and the spool cannot be written")

    def _forget(self, path: Path, bad: int) -> None:
        try:
            if bad:
                target = spool.set_aside(path)
                log.error("usage spool file %s had %d unreadable line(s): kept as %s", path.name, bad, target)
                self.rejected += bad
                self.count("rejected", bad)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:  # written already; a replay later is a no-op (record ids)
            log.error("could not remove usage spool file %s: %s", path.name, type(exc).__name__)
        self.backlog.forget(path)

    def _reject(self, rows: list[UsageRow]) -> None:
        try:
            path = spool.write_rows(self.spool_dir / "rejected", rows, prefix="rejected")
        except OSError:
            self._drop(len(rows), "refused by the database and not writable to disk")
            return
        self.rejected += len(rows)
        self.count("rejected", len(rows))
        log.error("usage ledger refused %d row(s): kept in %s", len(rows), path)

    def lose(self, n: int, why: str) -> None:
        """Counts rows lost before they reached this ledger (e.g. a request whose row could not be made)."""
        self._drop(n, why)

    def _drop(self, n: int, why: str) -> None:
        self.dropped += n
        self.count("dropped", n)
        log.error("usage ledger: %d row(s) LOST: %s", n, why)

    def _failed(self, exc: BaseException) -> None:
        self.count("failures", 1)
        self._next_try = self.clock() + self.retry_s
        self._needs_create = True  # the tables may be new when it is back (a fresh database)
        with self._lock:
            self._error = type(exc).__name__
            if self._down_since is None:
                self._down_since = self.clock()
                self._down_at = dt.datetime.now(dt.UTC)
                log.error("usage ledger unavailable (%s): rows are kept and retried every %.1f s",
                          self._error, self.retry_s)

    def _recovered(self, written: int) -> None:
        with self._lock:
            down_since, self._down_since, self._down_at, self._error = self._down_since, None, None, None
        if down_since is not None:
            log.warning("usage ledger back after %.1f s: %d waiting row(s) written", self.clock() - down_since,
                        written)
        elif written:
            log.warning("usage spool replayed: %d row(s) written", written)
