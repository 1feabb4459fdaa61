"""Configuration files re-read when they change, keeping the last good version when an edit is bad.

    live_file(path, parse).get()   -> the parsed file in force

The first read happens at start (or first use) and raises, as a start-time check should: the service never
runs without a valid version. Afterwards the file's stamp (modification time and size, as `chains/prompting.py`
does for prompts) is compared on every use (one stat), or, for a file read on a hot path (`hot=True`: the
presets and the guard's files, read several times per request), at most every CONFIG_CHECK_INTERVAL_S
(`set_check_interval`). When it changed, the new text is parsed with the same validation as at start. A valid
edit applies to the next call. An invalid one (or a deleted file) keeps the last good version in force, is
logged once per bad version (its sha256), and shows in `status()` (so in `/readyz` and `GET /admin/config`)
until a good version replaces it.

One `LiveFile` per (path, kind) per process: every caller of the same file shares one parse and one status.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["FileVersion", "LiveFile", "file_version", "live_file", "set_check_interval", "status_of"]

log = logging.getLogger("skymarket.config")

T = TypeVar("T")

_interval_s = 1.0  # CONFIG_CHECK_INTERVAL_S (set by services.build_services)


def set_check_interval(seconds: float) -> None:
    """How often (at most) a hot live file's stamp is checked; 0 = on every call."""
    global _interval_s
    _interval_s = max(0.0, seconds)


@dataclass(frozen=True)
class FileVersion:
    """A file's version: a sha256 prefix of its bytes and its modification time (UTC, ISO)."""

    sha256: str
    mtime: str

    def as_dict(self) -> dict[str, str]:
        return {"sha256": self.sha256, "mtime": self.mtime}


def _version(data: bytes, mtime_ns: int) -> FileVersion:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime_ns / 1e9))
    return FileVersion(hashlib.sha256(data).hexdigest()[:12], when)


def file_version(path: Path) -> FileVersion | None:
    """The version of the file on disk now (None: missing or unreadable)."""
    try:
        st = path.stat()
        return _version(path.read_bytes(), st.st_mtime_ns)
    except OSError:
        return None


class LiveFile(Generic[T]):
    """One configuration file, parsed, re-read after an edit, the last good version kept.

    Args:
        path: the file.
        parse: text -> the parsed value; raises (any exception) on an invalid file, with a message naming
            what is wrong. The same function validates the first read and every edit.
        hot: read on a hot path: its stamp is checked at most every CONFIG_CHECK_INTERVAL_S, not on every use.
        clock: monotonic seconds (a seam for tests).
    """

    def __init__(self, path: Path, parse: Callable[[str], T], *, hot: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self._parse, self._clock, self.hot = path, parse, clock, hot
        self._lock = threading.Lock()
        self._next_check = float("-inf")
        self._stamp: tuple[int, int] | None = None
        self._value: T | None = None
        self.version: FileVersion | None = None  # the version in force
        self.rejected: dict[str, str] | None = None  # the last edit refused: its version and the error
        self._warned: set[str] = set()

    def get(self) -> T:
        """The version in force: a stat per call (a hot file: per check interval), a parse only after an edit.

        Raises:
            Exception: only on the first read (no good version yet), whatever `parse` raised.
        """
        if self.hot:
            now = self._clock()
            if now < self._next_check and self._value is not None:
                return self._value
            self._next_check = now + _interval_s
        with self._lock:
            self._reload()
        assert self._value is not None
        return self._value

    def _reload(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            data = self.path.read_bytes()
        except OSError as exc:
            if self._value is None:
                raise
            self._reject(FileVersion("missing", "-"), f"cannot read {self.path.name}: {exc.strerror}", None)
            return
        version = _version(data, st.st_mtime_ns)
        try:
            value = self._parse(data.decode("utf-8"))
        except Exception as exc:  # any failure of a new version: the last good one stays (never a 500)
            if self._value is None:
                raise
            self._reject(version, getattr(exc, "message", None) or str(exc) or type(exc).__name__, stamp)
            return
        if self._value is not None:
            log.info("%s reloaded (version %s)", self.path.name, version.sha256)
        self._value, self._stamp, self.version, self.rejected = value, stamp, version, None

    def _reject(self, version: FileVersion, error: str, stamp: tuple[int, int] | None) -> None:
        self._stamp = stamp  # the same bad version is not parsed again; the next edit is
        self.rejected = {"sha256": version.sha256, "mtime": version.mtime, "error": error[:500]}
        if version.sha256 not in self._warned:
            self._warned.add(version.sha256)
            in_force = self.version.sha256 if self.version else "-"
            log.warning("%s: edit rejected, version %s stays in force: %s", self.path.name, in_force, error[:500])

    def status(self) -> dict[str, Any]:
        """The version in force and, when the last edit was refused, that edit's version and error."""
        body: dict[str, Any] = {"path": str(self.path)}
        body.update(self.version.as_dict() if self.version else {"sha256": None, "mtime": None})
        if self.rejected is not None:
            body["rejected"] = dict(self.rejected)
        return body


_files: dict[tuple[Path, str], LiveFile[Any]] = {}
_given: dict[tuple[Path, str], LiveFile[Any]] = {}  # the same files under the paths callers gave
_files_lock = threading.Lock()


def live_file(path: Path, parse: Callable[[str], T], *, kind: str = "", hot: bool = False) -> LiveFile[T]:
    """The process's `LiveFile` for `path` (created on first use).

    Args:
        path: the file.
        parse: its parser and validator (used when the file is first asked for under this `kind`).
        kind: tells apart two parses of one path (rarely needed; e.g. a parser with different options).
        hot: checked at most every CONFIG_CHECK_INTERVAL_S (see `LiveFile`).
    """
    found = _given.get((path, kind))  # no path resolution on the hot path (the guard asks per screen)
    if found is None:
        with _files_lock:
            found = _files.setdefault((path.resolve(), kind), LiveFile(path, parse, hot=hot))
            _given[(path, kind)] = found
    return found


def status_of(path: Path) -> dict[str, Any] | None:
    """The status of `path`'s live file(s) in this process (None: never loaded); a rejection wins."""
    found = [f for (p, _), f in list(_files.items()) if p == path.resolve()]
    if not found:
        return None
    return next((f.status() for f in found if f.rejected is not None), found[0].status())
