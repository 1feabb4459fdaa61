"""Real Redis and PostgreSQL servers for tests, started from the Debian packages on free loopback ports.

`.ci/run` installs `redis-server` and `postgresql`; on a developer machine without them the fixtures that
use these skip with the install command (in CI, `CI=true`, a missing binary is an error instead).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from chains.local_llm import free_port

__all__ = ["PostgresServer", "RedisServer", "require"]


def require(binary: str | None, package: str) -> str:
    """The binary's path, or a skip (locally) / an error (in CI) naming the Debian package."""
    if binary and Path(binary).exists():
        return binary
    if os.environ.get("CI"):
        raise RuntimeError(f"{package} is missing: .ci/run must apt-get install {package}")
    pytest.skip(f"needs the Debian package {package} (apt-get install {package})")


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


class RedisServer:
    """`redis-server` without persistence; `kill()` stops it hard (to test outages), `start()` again."""

    def __init__(self) -> None:
        self.binary = require(shutil.which("redis-server"), "redis-server")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None


class PostgresServer:
    """A throw-away PostgreSQL cluster (initdb in a temp folder), run as the `postgres` user when root."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        self.bin = Path(require(bins[-1] if bins else None, "postgresql"))
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="skymarket-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_pg(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(self._as_pg([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.resume()

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def resume(self) -> PostgresServer:
        """Runs the server on its data folder and port (after `start`, or again after `halt`)."""
        self.proc = subprocess.Popen(
            self._as_pg([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                         "-k", str(self.dir), "-c", "fsync=off", "-c", "full_page_writes=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)
        time.sleep(0.3)  # the port opens a moment before the server accepts logins
        return self

    def halt(self, *, mode: str = "fast") -> None:
        """Stops the server, keeping its data (an outage; `resume` ends it). `fast` cuts every session and rolls
        back open transactions; `immediate` is a crash (no checkpoint; recovery at the next start)."""
        if self.proc is not None:
            subprocess.run(self._as_pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "stop", "-m", mode, "-w"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
