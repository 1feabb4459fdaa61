"""The server's retention job: one thread that prunes every store (gateway/retention.py) every
RETENTION_INTERVAL_S (a day), started and stopped with the app (services.py, in the lifespan).

It never takes the server down: a failed run (or a store that failed) is logged and shown by `status()`,
which /readyz lists under `degraded`; the next run tries again. The first run comes `first_delay_s` after the
start (not at once: start-up has enough to do), so a server restarted every day still prunes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from gateway.retention import Pruned, prune

__all__ = ["RetentionJob", "build_retention_job"]

log = logging.getLogger("skymarket.retention")


class RetentionJob:
    """Calls `run()` every `interval_s` on a daemon thread; `run_once()` from anywhere (a test)."""

    def __init__(self, run: Callable[[], list[Pruned]], *, interval_s: float, first_delay_s: float = 300.0,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        """Args:
        run: prunes and returns what each store lost.
        interval_s: seconds between runs.
        first_delay_s: seconds from `start()` to the first run.
        clock: the time recorded for each run.
        """
        self._run = run
        self.interval_s = interval_s
        self.first_delay_s = first_delay_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.runs = 0
        self.last_run: dt.datetime | None = None
        self.last_error: str | None = None  # the last run's failure (a store's or the whole run's), or None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _loop(self) -> None:
        delay = self.first_delay_s
        while not self._stop.wait(delay):
            self.run_once()
            delay = self.interval_s

    def run_once(self) -> list[Pruned]:
        """One prune of every store; never raises (the failure is logged and kept for `status()`)."""
        error: str | None
        try:
            results = self._run()
        except Exception as exc:  # the server must outlive it
            log.exception("the retention job failed")
            results, error = [], f"{type(exc).__name__}: {exc}"[:300]
        else:
            failed = [f"{r.store}: {r.error}" for r in results if r.error]
            error = "; ".join(failed)[:500] or None
            removed = {r.store: r.removed for r in results if r.days is not None and not r.error}
            log.info("retention: removed %s", removed)
        with self._lock:
            self.runs += 1
            self.last_run = self._clock()
            self.last_error = error
        return results

    def status(self) -> dict[str, Any] | None:
        """None when the last run went well (or none ran yet); else when it ran and what failed."""
        with self._lock:
            if self.last_error is None:
                return None
            return {"last_run": self.last_run.isoformat() if self.last_run else None, "error": self.last_error}


def build_retention_job(settings: Any) -> RetentionJob | None:
    """The job of the settings (RETENTION_*_DAYS, RETENTION_INTERVAL_S); None when the interval is 0."""
    if not settings.retention_interval_s:
        return None
    interval = float(settings.retention_interval_s)
    return RetentionJob(lambda: prune(settings), interval_s=interval, first_delay_s=min(300.0, interval))
