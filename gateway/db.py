"""SQLAlchemy engines for the gateway's tables (usage ledger, API keys): PostgreSQL, or a SQLite file that
several processes share safely.

Several processes use the same SQLite files: the serving workers (`skymarket serve --workers N`) and the
`skymarket keys` / `usage` commands beside a running server. Each connection therefore sets:

- `journal_mode=WAL`: readers never block the writer nor the writer the readers; one writer at a time;
- a busy timeout (`BUSY_TIMEOUT_S`): a writer that finds the file locked waits for the lock instead of
  failing at once with "database is locked";
- `synchronous`: FULL by default (a commit survives a power cut); the ledger passes NORMAL (in WAL, a power
  cut may lose the last commits, never corrupt the file), since it writes in batches all day.

PostgreSQL needs none of this; its connections are checked before use (`pool_pre_ping`), so a restarted
database costs one reconnect, not one failed request, and a connect gives up after 5 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

__all__ = ["BUSY_TIMEOUT_S", "create_tables", "database_url", "open_engine"]

BUSY_TIMEOUT_S = 10.0


def database_url(*, database_url: str | None, sqlite_file: Path) -> str:
    """The SQLAlchemy URL: DATABASE_URL (postgres:// and postgresql:// get the psycopg 3 driver) or SQLite.

    Args:
        database_url: DATABASE_URL, or None.
        sqlite_file: the SQLite file used when it is None.
    """
    if not database_url:
        return f"sqlite:///{sqlite_file}"
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url


def open_engine(url: str, *, synchronous: Literal["FULL", "NORMAL"] = "FULL", **pool: Any) -> Engine:
    """An engine for `url`; nothing connects until first use.

    Args:
        url: a SQLAlchemy URL (from `database_url`).
        synchronous: SQLite's durability per commit (FULL or NORMAL, see the module docstring).
        pool: pool arguments for a server database (pool_size, max_overflow).
    """
    if not url.startswith("sqlite"):  # a server that does not answer fails a connect in 5 s, not never
        timeout = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else {}
        return create_engine(url, pool_pre_ping=True, **timeout, **pool)
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # timeout: pysqlite's busy handler (it retries until then) also covers BEGIN IMMEDIATE and commits
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _pragmas(conn: Any, _: Any) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    return engine


def create_tables(metadata: Any, engine: Engine) -> None:
    """`metadata.create_all(engine)`, safe when several processes start at once: two workers can both see a
    table missing and both create it, and the second then fails ("table api_keys already exists" on SQLite, a
    duplicate on PostgreSQL). That failure means another process made the tables: check again, once."""
    from sqlalchemy.exc import DBAPIError

    try:
        metadata.create_all(engine, checkfirst=True)
    except DBAPIError:
        metadata.create_all(engine, checkfirst=True)  # the other process's tables are there now; else it raises
