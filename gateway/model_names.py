"""One name per model in the ledger: rows written under the local model's file path get its configured name.

Before issue 20, the usage callback recorded the name the OpenAI-compatible server reported back, and the
embedded llama.cpp server reports the GGUF file's path. Those rows (and their rollups) are renamed once, when
the ledger is opened (`Ledger.create`), so history stays one series under `LOCAL_MODEL_NAME`.

Whether there is anything to rename is read from the daily marginals, not the rows: a ledger whose only path
is in `models_tried` (the local model tried and failed, never answering) keeps it there.

Safe with several processes starting together: each rollup row named by a path is taken with
`DELETE .. RETURNING` (a row is returned to one transaction only) and its sums added to the row of the
configured name with the rollups' own additive upsert, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Engine

from gateway.ledger_tables import hourly_table, marginals_table, usage_table
from gateway.rollups import upsert_statement

__all__ = ["is_file_name", "unify_model_names"]

_SUFFIX = ".gguf"


def is_file_name(model: str | None) -> bool:
    """A model named by a weights file's path (what llama.cpp reports), not by a configured name."""
    return bool(model) and str(model).lower().endswith(_SUFFIX)


def _fix_tried(tried: str, name: str) -> str:
    return ",".join(dict.fromkeys(name if is_file_name(m) else m for m in tried.split(",")))


def _move_rollup(conn: Any, table: Table, column: str, name: str, is_sqlite: bool, *where: Any) -> int:
    c = table.c
    taken = conn.execute(
        table.delete().where(func.lower(c[column]).like(f"%{_SUFFIX}"), *where).returning(*table.c)
    ).mappings().all()
    if taken:
        rows = [{**row, column: name} for row in taken]
        conn.execute(upsert_statement(table, is_sqlite), rows)
    return len(taken)


def unify_model_names(engine: Engine, *, is_sqlite: bool, name: str) -> int:
    """Renames the ledger's rows and rollups named by a model file's path to `name`; returns the rows renamed.

    Args:
        engine: the ledger's engine (tables created).
        is_sqlite: SQLite (else PostgreSQL): the upsert's dialect.
        name: the local model's configured name (`LOCAL_MODEL_NAME`).
    """
    u, m = usage_table.c, marginals_table.c
    # The common case, checked on the daily marginals (a row per day and model, written with every row, kept
    # longer than the rows): nothing to do, no write lock taken, and no scan of the rows at each start.
    with engine.connect() as conn:
        if conn.execute(select(m.value).where(m.span == "day", m.dim == "model",
                                              func.lower(m.value).like(f"%{_SUFFIX}")).limit(1)).first() is None:
            return 0
    with engine.begin() as conn:
        renamed = conn.execute(update(usage_table).where(func.lower(u.model).like(f"%{_SUFFIX}"))
                               .values(model=name)).rowcount or 0
        for row_id, tried in conn.execute(
            select(u.id, u.models_tried).where(func.lower(u.models_tried).like(f"%{_SUFFIX}%"))
        ).all():
            conn.execute(update(usage_table).where(u.id == row_id).values(models_tried=_fix_tried(tried, name)))
        _move_rollup(conn, hourly_table, "model", name, is_sqlite)
        _move_rollup(conn, marginals_table, "value", name, is_sqlite, marginals_table.c.dim == "model")
    return int(renamed)
