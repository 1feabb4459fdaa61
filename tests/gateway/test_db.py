"""SQLite shared by several processes (serving workers, the CLI beside a server): every connection is in WAL
mode with a busy timeout, so processes writing the usage ledger and the key store at once lose nothing and
never fail with "database is locked"; PostgreSQL URLs get the psycopg 3 driver."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from gateway.db import create_tables, database_url, open_engine
from gateway.keys import KeyStore, build_key_store
from gateway.ledger import Ledger, UsageRow, usage_table
from tests.conftest import make_settings

WRITERS, BATCHES, ROWS = 4, 40, 25


def _write(usage: str, keys: str, writer: int) -> None:
    """One process: ledger batches (one transaction each, as the writer thread does), and key-store writes."""
    ledger = Ledger(usage)
    store = KeyStore(open_engine(keys), refresh_s=0)
    now = dt.datetime.now(dt.UTC)
    for b in range(BATCHES):
        ledger.record(*(UsageRow(request_id=f"w{writer}-{b}-{i}", ts=now, route="chat", status=200, latency_ms=5.0,
                                 key_name=f"k{writer}", cost_usd=0.001) for i in range(ROWS)))
        if b % 8 == 0:
            store.create(name=f"w{writer}-{b}", scopes=["chat"])
            store.lookup("smk_nothing")  # marks nothing; refresh() still writes and reads
            store.refresh()
    ledger.close()


def test_processes_write_the_same_sqlite_files_without_losing_rows(tmp_path: Path) -> None:
    usage = database_url(database_url=None, sqlite_file=tmp_path / "usage.db")
    keys = database_url(database_url=None, sqlite_file=tmp_path / "keys.db")
    Ledger(usage).create().close()
    KeyStore(open_engine(keys)).create_table()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(usage, keys, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * WRITERS  # an OperationalError ("locked") would exit 1
    ledger = Ledger(usage)
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_table)).scalar() == WRITERS * BATCHES * ROWS
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    assert ledger.spend_since(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)) == \
        pytest.approx(WRITERS * BATCHES * ROWS * 0.001)
    ledger.close()
    store = build_key_store(settings=make_settings(gateway_keys_file=tmp_path / "keys.db"))  # as the server opens it
    assert len(store.list()) == WRITERS * (BATCHES // 8)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000


def test_postgres_urls_get_the_psycopg_driver(tmp_path: Path) -> None:
    assert database_url(database_url="postgres://u@h/db", sqlite_file=tmp_path / "x.db") == \
        "postgresql+psycopg://u@h/db"
    assert database_url(database_url="postgresql://u@h/db", sqlite_file=tmp_path / "x.db") == \
        "postgresql+psycopg://u@h/db"
    assert database_url(database_url=None, sqlite_file=tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"


class _Racing:
    """A table set whose first create fails as when another process created the tables a moment before."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def create_all(self, engine: Any, checkfirst: bool = True) -> None:
        self.calls += 1
        if self.calls == 1:
            self.real.create_all(engine, checkfirst=checkfirst)  # the other worker
            raise OperationalError("CREATE TABLE t", {}, Exception("table t already exists"))
        self.real.create_all(engine, checkfirst=checkfirst)


def test_tables_made_by_another_worker_at_the_same_moment_are_not_an_error(tmp_path: Path) -> None:
    meta = sa.MetaData()
    sa.Table("t", meta, sa.Column("id", sa.Integer, primary_key=True))
    engine = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    racing = _Racing(meta)
    create_tables(racing, engine)
    assert racing.calls == 2 and sa.inspect(engine).has_table("t")

    class Broken(_Racing):
        def create_all(self, engine: Any, checkfirst: bool = True) -> None:
            raise OperationalError("CREATE TABLE t", {}, Exception("disk I/O error"))

    with pytest.raises(OperationalError):  # a real failure still fails, after the one check
        create_tables(Broken(meta), engine)
