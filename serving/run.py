"""`skymarket serve`: the parent's checks and shared parts, uvicorn in one process or several, and the
workers' app factory (see the package's docstring for the whole picture)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from chains.local_llm import embedded_model_server
from errors import ConfigError
from settings import Settings, load_settings

__all__ = ["check_workers", "main", "worker_app"]

log = logging.getLogger("skymarket.serving")

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
        uvicorn.run("serving.run:worker_app", factory=True, workers=args.workers, timeout_worker_healthcheck=60,
                    **served)
    finally:
        if local is not None:
            local.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
