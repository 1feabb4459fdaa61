"""The servers under test of the overhead bench, and the `ChatOpenAI` they (and the direct client) share.

    python -m bench.bare_app bare --port 18101 --upstream http://127.0.0.1:18100/v1   # (b)
    python -m bench.bare_app ours --port 18102 --upstream http://127.0.0.1:18100/v1 --data-dir /tmp/x  # (c)

(b) is the least any LangServe service adds: one `add_routes` of a plain `ChatOpenAI`, invoke and stream.
(c) is `server.create_app(settings)` with everything it wires (gateway, guard, callbacks, audit, metrics),
its files under `--data-dir`; a real API key (rpm/tpm far above the bench's rate) is created there and
written to `<data-dir>/api-key`, and the global limits are raised likewise so the gateway never refuses.
Both run in one uvicorn worker without access log; SIGUSR1 runs `gc.collect(); gc.freeze()` (sent after
the warm-up).
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["BENCH_API_KEY", "bare_app", "build_model", "ours_app", "run_uvicorn"]

BENCH_API_KEY = "sk-bench-" + "0123456789abcdefghijklmnopqrst"  # shaped like a key, valid nowhere
_HIGH_RPM, _HIGH_TPM = 10_000_000, 10_000_000_000


def build_model(base_url: str) -> Any:
    """The `ChatOpenAI` of (a) and (b), configured as `chains/models.py` configures the primary model."""
    import openai
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-4o-mini", api_key=BENCH_API_KEY, base_url=base_url,  # type: ignore[arg-type]
        max_tokens=1000, temperature=0.7, timeout=30.0, max_retries=2,  # type: ignore[call-arg]
        http_client=openai.DefaultHttpxClient(timeout=30.0),
        http_async_client=openai.DefaultAsyncHttpxClient(timeout=30.0),
        stream_usage=True,
    )


def bare_app(base_url: str) -> Any:
    """(b): a FastAPI app with one LangServe route, `/chat`, wrapping `build_model(base_url)`."""
    from fastapi import FastAPI
    from langserve import add_routes

    app = FastAPI()
    add_routes(app, build_model(base_url), path="/chat", enabled_endpoints=["invoke", "stream"])
    return app


def ours_app(base_url: str, data_dir: Path) -> Any:
    """(c): `server.create_app()` against the bench upstream, its state in `data_dir`."""
    from pydantic import SecretStr

    from gateway.keys import build_key_store
    from server import create_app
    from settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        skymarket_env="development", openai_api_key=SecretStr(BENCH_API_KEY), openai_base_url=base_url,
        local_model_enabled=False, ai_rate_limit_rpm=_HIGH_RPM, ai_rate_limit_tpm=_HIGH_TPM,
        gateway_global_rpm=_HIGH_RPM, gateway_global_tpm=_HIGH_TPM,
        gateway_search_global_rpm=_HIGH_RPM, gateway_guard_global_rpm=_HIGH_RPM,
        gateway_keys_file=data_dir / "keys.db", usage_db_file=data_dir / "usage.db",
        usage_spool_dir=data_dir / "usage_spool",
        audit_file=data_dir / "audit" / "audit.jsonl", describe_cache_path=data_dir / "describe_cache.db",
        chroma_path=data_dir / "chroma",
    )
    store = build_key_store(settings=settings)
    store.create_table()
    key = store.create(name="bench", scopes=["chat"], rpm=_HIGH_RPM, tpm=_HIGH_TPM)
    (data_dir / "api-key").write_text(key, encoding="utf-8")
    return create_app(settings)


def _freeze(signum: int, frame: Any) -> None:
    gc.collect()
    gc.freeze()
    print(f"gc.freeze(): {gc.get_freeze_count()} objects frozen", file=sys.stderr, flush=True)


def run_uvicorn(app: Any, port: int) -> None:
    """Serves `app` on 127.0.0.1:`port`: one worker, no access log, SIGUSR1 = gc.freeze()."""
    import uvicorn

    signal.signal(signal.SIGUSR1, _freeze)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, workers=1, log_level="warning",
                            access_log=False, backlog=1024)
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description="a server under test of bench/overhead.py")
    parser.add_argument("which", choices=["bare", "ours"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the bench upstream's /v1 URL")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/skymarket-bench"))
    args = parser.parse_args()
    app = bare_app(args.upstream) if args.which == "bare" else ours_app(args.upstream, args.data_dir)
    run_uvicorn(app, args.port)


if __name__ == "__main__":
    main()
