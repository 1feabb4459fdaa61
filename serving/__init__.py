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

from serving.drain import Drain
from serving.run import check_workers, main, worker_app

__all__ = ["Drain", "check_workers", "main", "worker_app"]
