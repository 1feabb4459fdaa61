"""`skymarket serve` as a real process for the serving tests, and HTTP connections pinned to one worker.

Several workers accept on one socket: which one takes a connection is the kernel's choice. `Served.pinned()`
opens keep-alive connections until every worker holds some, asking the operating system (psutil) which
worker process holds each one, so a test can send a request to a worker of its choosing.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from chains.local_llm import free_port
from tests.conftest import ROOT

__all__ = ["Conn", "Served", "clean_env", "serve"]

# Settings the test process may carry (the suite's own fixtures set some) and the server must not inherit.
_DROP = ("OPENAI_", "AI_", "SKYMARKET_", "LOCAL_MODEL_", "CHROMA_", "REDIS_URL", "DATABASE_URL", "USAGE_DB_FILE",
         "AUDIT_", "GATEWAY_", "WORKERS", "PORT", "HOST", "PROMETHEUS_MULTIPROC_DIR", "SHUTDOWN_", "GRACEFUL_")


def clean_env(**settings: Any) -> dict[str, str]:
    """The environment of a served process: this one's, without service settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DROP)}
    env.update({k.upper(): str(v) for k, v in settings.items()})
    return env


class Conn:
    """One HTTP/1.1 keep-alive connection (http.client), and the worker process that holds it."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.key = key
        self.worker: int | None = None

    @property
    def local_port(self) -> int:
        assert self.http.sock is not None
        return int(self.http.sock.getsockname()[1])

    def request(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                request_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """Sends one request; returns (status, headers, body)."""
        headers = {"content-type": "application/json", "x-request-id": request_id or uuid.uuid4().hex}
        if key or self.key:
            headers["authorization"] = f"Bearer {key or self.key}"
        self.http.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = self.http.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("POST", path, body, **kw)

    def close(self) -> None:
        self.http.close()


class Served:
    """A running `skymarket serve` process (the parent, with its workers when there are several)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path, workers: int) -> None:
        self.proc, self.port, self.log, self.workers = proc, port, log, workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The serving processes: the parent itself with one worker, else its uvicorn workers."""
        if self.workers == 1:
            return [self.proc.pid]
        return sorted(k.pid for k in psutil.Process(self.proc.pid).children() if "spawn_main" in _cmdline(k))

    def holder(self, conn: Conn) -> int | None:
        """The worker process holding the server side of `conn`."""
        port = conn.local_port
        for pid in self.worker_pids():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.raddr and c.raddr.port == port and c.laddr.port == self.port for c in conns):
                return pid
        return None

    def pinned(self, per_worker: int = 1, key: str | None = None, tries: int = 200) -> dict[int, list[Conn]]:
        """Keep-alive connections, `per_worker` held by each worker (the others are closed)."""
        out: dict[int, list[Conn]] = {pid: [] for pid in self.worker_pids()}
        extra = []
        for _ in range(tries):
            if all(len(v) >= per_worker for v in out.values()):
                break
            conn = Conn(self.port, key)
            conn.request("GET", "/healthz")  # the connection is accepted by a worker only once it is used
            conn.worker = self.holder(conn)
            if conn.worker in out and len(out[conn.worker]) < per_worker:
                out[conn.worker].append(conn)
            else:
                extra.append(conn)
        for conn in extra:
            conn.close()
        assert all(len(v) >= per_worker for v in out.values()), f"could not reach every worker: {out}"
        return out

    def wait_ready(self, timeout: float = 420.0) -> None:
        """Until every worker answers /readyz with 200 (their apps start at their own pace)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.tail()}")
            pids = self.worker_pids()
            if len(pids) == self.workers and self._all_ready(pids):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the server was not ready in {timeout} s: {self.tail()}")

    def _all_ready(self, pids: list[int]) -> bool:
        ready: set[int] = set()
        conns = []
        try:
            for _ in range(12 * len(pids)):
                conn = Conn(self.port)
                conns.append(conn)
                try:
                    status, _, _ = conn.request("GET", "/readyz")
                except OSError:
                    return False
                holder = self.holder(conn)
                if status == 200 and holder is not None:
                    ready.add(holder)
                if ready >= set(pids):
                    return True
            return False
        finally:
            for conn in conns:
                conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Signals the parent and waits for it (and its workers) to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@contextmanager
def serve(env: dict[str, str], *, workers: int, log: Path, ready: bool = True) -> Iterator[Served]:
    """Runs `python -m cli serve --workers N` on a free port; stops it (SIGTERM) at the end if still running."""
    port = free_port()
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--workers", str(workers), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    served = Served(proc, port, log, workers)
    try:
        if ready:
            served.wait_ready()
        yield served
    finally:
        if proc.poll() is None:
            served.stop()


def _cmdline(proc: psutil.Process) -> str:
    """A child's command line; '' for one that has just exited (a zombie until reaped) or is gone."""
    try:
        return " ".join(proc.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""
