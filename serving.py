"""How the service runs as processes: `skymarket serve [--workers N] [--host H] [--port P]` (`make serve`).

One process (`WORKERS=1`, the default): uvicorn serves `create_app()` here; the app starts the embedded
local model itself.

Several (`--workers N` or `WORKERS=N`): uvicorn's own supervisor starts N worker processes that accept on one
socket, and restarts one that dies. This parent builds no app. It checks that what must be shared is shared,
starts the shared parts once, and hands their addresses to the workers in their environment:

    the embedded local model   started here, once; every worker calls it at LOCAL_MODEL_URL
    metrics                    PROMETHEUS_MULTIPROC_DIR, a fresh folder: /metrics adds every worker's up
    limits                     REDIS_URL required: per-process limits would each allow the whole limit
    search index               CHROMA_HOST/CHROMA_PORT required: Chroma's embedded client is not process-safe
    ledger, key store          SQLite in WAL mode is safe from several processes of one machine (gateway/db.py);
                               DATABASE_URL (PostgreSQL) past one machine
    audit trail                one hash chain in one file, appended under an exclusive lock (gateway/audit.py)
    budgets                    each worker re-reads the day's spend every GATEWAY_BUDGET_CACHE_S

Graceful shutdown, on SIGTERM (or Ctrl-C) to the parent, which passes it on, or to one worker (`Drain`):
/readyz answers 503 at once, and requests are still taken for SHUTDOWN_DELAY_S (default 0) so a load
balancer watching /readyz stops sending first; then the socket closes, in-flight invokes and streams run to
their end for up to GRACEFUL_TIMEOUT_S (then they are cancelled, and recorded as 500s), and the app's
shutdown writes what it holds: ledger rows, audit lines, metrics, key last-used times, limit settlements.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from chains.local_llm import embedded_model_server
from errors import ConfigError
from settings import Settings, load_settings

__all__ = ["Drain", "check_workers", "main", "worker_app"]

log = logging.getLogger("skymarket.serving")

Handler = Callable[[int, FrameType | None], Any]
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def check_workers(settings: Settings, workers: int) -> None:
    """Refuses several workers without the shared stores they need.

    Args:
        settings: the service settings.
        workers: how many processes will serve.

    Raises:
        ConfigError: naming each missing setting and why it is needed.
    """
    if workers <= 1:
        return
    missing = []
    if not settings.redis_url:
        missing.append("REDIS_URL (rate limits for the whole service: each process alone would allow every "
                       "limit in full)")
    if settings.chroma_host is None:
        missing.append("CHROMA_HOST and CHROMA_PORT (a `chroma run --path data/chroma` server: Chroma's "
                       "embedded client is not safe to open from several processes)")
    if missing:
        raise ConfigError(f"{workers} workers need " + "; and ".join(missing))


class Drain:
    """Makes SIGTERM and SIGINT drain the app before uvicorn's own shutdown (installed by the app's lifespan).

    The first signal marks the services draining (/readyz: 503), then hands the signal to the handler that was
    there (uvicorn's: stop accepting, wait for in-flight requests, run the app's shutdown), at once or after
    `delay_s`. A second signal hands it over at once. sse-starlette 1.x (pinned through LangServe) patches
    uvicorn's handler to end every open stream the moment a signal arrives; draining lets them finish, so its
    exit event is held back while uvicorn's handler runs (a later sse-starlette without it changes nothing).

    Args:
        services: the app's services (`draining`).
        delay_s: how long requests are still taken after the first signal.
    """

    def __init__(self, services: Any, *, delay_s: float = 0.0) -> None:
        self.services = services
        self.delay_s = delay_s
        self._timer: threading.Timer | None = None

    def install(self) -> bool:
        """Chains onto the current SIGTERM and SIGINT handlers; False outside the main thread (an app served
        in a test's thread), where signals cannot be handled."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._handler(previous))
        return True

    def _handler(self, previous: Handler) -> Handler:
        def on_signal(sig: int, frame: FrameType | None) -> None:
            if self.services.draining:  # a second signal: stop waiting
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                _hand_over(previous, sig, frame)
                return
            self.services.draining = True
            log.info("%s: draining (/readyz 503); taking requests for %.1f s more", signal.Signals(sig).name,
                     self.delay_s)
            if self.delay_s > 0:
                self._timer = threading.Timer(self.delay_s, _hand_over, (previous, sig, frame))
                self._timer.daemon = True
                self._timer.start()
            else:
                _hand_over(previous, sig, frame)

        return on_signal


def _hand_over(previous: Handler, sig: int, frame: FrameType | None) -> None:
    """Calls uvicorn's handler with sse-starlette's stream-ending exit event held back."""
    status = getattr(sys.modules.get("sse_starlette.sse"), "AppStatus", None)
    event = getattr(status, "should_exit_event", None)
    if status is not None:
        status.should_exit_event = None  # its handler sets this event: every open stream would end
    try:
        previous(sig, frame)
    finally:
        if status is not None:
            status.should_exit_event = event
            status.should_exit = False  # streams opened during the delay would end at their start


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory); its settings come from the environment the parent
    gave it (LOCAL_MODEL_URL, PROMETHEUS_MULTIPROC_DIR)."""
    from server import create_app

    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)  # uvicorn configures only its own loggers here
    return create_app(load_settings(), freeze_gc=True, drain_on_signals=True)


def _parse(argv: list[str], settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="skymarket serve", description="run the HTTP service")
    parser.add_argument("--workers", type=int, default=settings.workers,
                        help="serving processes on one port (default: WORKERS, 1); more than 1 needs REDIS_URL "
                             "and CHROMA_HOST/CHROMA_PORT")
    parser.add_argument("--host", default=settings.host, help="default: HOST")
    parser.add_argument("--port", type=int, default=settings.port, help="default: PORT")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers: 1 to 64")
    return args


def main(argv: list[str] | None = None) -> int:
    """`skymarket serve`: runs the service with uvicorn, in one process or several.

    Args:
        argv: the command-line arguments after `serve` (sys.argv when None).
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    try:
        settings = load_settings()
        args = _parse(sys.argv[1:] if argv is None else argv, settings)
        check_workers(settings, args.workers)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    served = {"host": args.host, "port": args.port, "log_level": "info", "lifespan": "on",
              "timeout_graceful_shutdown": int(settings.graceful_timeout_s + 0.999)}
    if args.workers == 1:
        from server import create_app

        uvicorn.run(create_app(settings, freeze_gc=True, drain_on_signals=True), **served)
        return 0
    local = embedded_model_server(settings)
    metrics_dir = tempfile.mkdtemp(prefix="skymarket-metrics-")
    try:
        if local is not None:  # once, here: the workers call it at LOCAL_MODEL_URL
            try:
                local.start()
            except ConfigError as exc:
                print(f"error: the shared local model did not start: {exc.message}", file=sys.stderr)
                return 1
            os.environ["LOCAL_MODEL_URL"] = local.base_url
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        log.info("serving with %d workers on %s:%d", args.workers, args.host, args.port)
        # The healthcheck allows for a worker building its app on a loaded machine (its ping thread shares
        # the GIL with the imports and the index load).
        uvicorn.run("serving:worker_app", factory=True, workers=args.workers, timeout_worker_healthcheck=60,
                    **served)
    finally:
        if local is not None:
            local.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
