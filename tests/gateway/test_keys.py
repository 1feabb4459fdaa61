"""API key store and CLI: created (printed once), listed without secrets, revoked (at once in this process's
view); stored only as a hash; last-used times written back."""

from __future__ import annotations

import sqlite3

import pytest

from gateway import keys as keys_mod
from gateway.keys import build_key_store, hash_key
from tests.conftest import make_settings


@pytest.fixture
def store():  # type: ignore[no-untyped-def]
    s = build_key_store(settings=make_settings())
    s.create_table()
    return s


def test_create_lookup_revoke(store) -> None:  # type: ignore[no-untyped-def]
    key = store.create(name="web-app", scopes=["chat", "search"], rpm=5, tpm=900, daily_budget_usd=2.5)
    assert key.startswith("smk_") and len(key) > 40
    store.refresh()
    rec = store.lookup(key)
    assert rec is not None and rec.name == "web-app" and rec.scopes == {"chat", "search"}
    assert (rec.rpm, rec.tpm, rec.daily_budget_usd) == (5, 900, 2.5)
    assert store.lookup(key + "x") is None and store.lookup("smk_wrong") is None
    assert store.revoke("web-app") and not store.revoke("web-app")
    store.refresh()
    assert store.lookup(key) is None
    store.create(name="web-app", scopes=["chat"])  # the name can be reused after revocation


def test_only_the_hash_is_stored(store) -> None:  # type: ignore[no-untyped-def]
    key = store.create(name="a", scopes=["chat"])
    db = str(store.engine.url.database)
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert key not in dump and hash_key(key) in dump


def test_last_used_is_written_back(store) -> None:  # type: ignore[no-untyped-def]
    key = store.create(name="a", scopes=["chat"])
    store.refresh()
    store.lookup(key)
    store.refresh()
    assert store.list()[0].last_used_at is not None


@pytest.mark.parametrize(("name", "scopes"), [("", ["chat"]), ("bad name", ["chat"]), ("ok", ["root"]), ("ok", [])])
def test_bad_name_or_scope(store, name: str, scopes: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        store.create(name=name, scopes=scopes)


def test_duplicate_name(store) -> None:  # type: ignore[no-untyped-def]
    store.create(name="a", scopes=["chat"])
    with pytest.raises(ValueError, match="exists"):
        store.create(name="a", scopes=["chat"])


def test_cli_create_list_revoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GATEWAY_KEYS_FILE", str(tmp_path / "keys.db"))
    args = ["create", "--name", "web-app", "--scopes", "chat,search,describe,guard", "--rpm", "30",
            "--daily-budget", "5"]
    assert keys_mod.main(args) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert key.startswith("smk_")
    assert keys_mod.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "web-app" in listing and "chat,describe,guard,search" in listing
    assert key not in listing and hash_key(key) not in listing and hash_key(key)[:8] not in listing
    assert keys_mod.main(["revoke", "web-app"]) == 0
    assert keys_mod.main(["revoke", "web-app"]) == 1
    capsys.readouterr()
    assert keys_mod.main(["list"]) == 0 and "web-app" not in capsys.readouterr().out


def test_revoke_drops_the_key_from_this_process_view_at_once(store) -> None:  # type: ignore[no-untyped-def]
    key = store.create(name="web-app", scopes=["chat"])
    other = store.create(name="other", scopes=["chat"])
    store.refresh()
    assert store.revoke("web-app")
    assert store.lookup(key) is None  # no refresh needed
    assert store.lookup(other) is not None
