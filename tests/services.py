"""Real Redis, PostgreSQL and Chroma servers for tests, on free loopback ports.

Redis and PostgreSQL come from the Debian packages: `.ci/run` installs `redis-server` and `postgresql`; on a
developer machine without them the fixtures that use these skip with the install command (in CI, `CI=true`,
a missing binary is an error instead). Chroma is `chroma run`, the CLI of the chromadb package.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from chains.local_llm import free_port

__all__ = ["ChromaServer", "PostgresServer", "RedisServer", "require"]


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


class ChromaServer:
    """`chroma run --path <folder> --port <free>`; `start()` waits for its heartbeat.

    Args:
        path: the folder it keeps its data in.
    """

    def __init__(self, path: Path) -> None:
        exe = Path(sys.executable).parent / "chroma"
        found = str(exe) if exe.exists() else shutil.which("chroma")
        if found is None:
            raise RuntimeError("the `chroma` CLI is not installed (it comes with the chromadb package)")
        self.exe, self.path, self.port = found, path, free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> ChromaServer:
        """Starts it and waits for its heartbeat; a server that exits at once (its port taken meanwhile) is
        started again on another port."""
        self.path.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._start(timeout):
                return self
            self.port = free_port()
        raise RuntimeError(f"chroma server did not start: {(self.path / 'server.log').read_text()[-2000:]}")

    def _start(self, timeout: float) -> bool:
        with (self.path / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "run", "--path", str(self.path / "db"), "--host", self.host, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chroma server did not answer in {timeout} s: "
                                   f"{(self.path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
