"""API key store and CLI: created (printed once), listed without secrets, revoked (at once in this process's
view); stored only as a hash; last-used times written back; limits and budgets changed by `keys set-limits`
apply to a running server."""

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


def test_set_limits_changes_only_what_is_given(store) -> None:  # type: ignore[no-untyped-def]
    store.create(name="web-app", scopes=["chat"], rpm=10, tpm=1000, daily_budget_usd=5)
    assert store.set_limits("web-app", rpm=20)
    [k] = store.list()
    assert (k.rpm, k.tpm, k.daily_budget_usd) == (20, 1000, 5)
    assert store.set_limits("web-app", tpm=None, daily_budget_usd=0.5)  # None: back to the global default
    [k] = store.list()
    assert (k.rpm, k.tpm, k.daily_budget_usd) == (20, None, 0.5)
    assert not store.set_limits("nobody", rpm=5)
    for bad in ({"rpm": 0}, {"tpm": 1.5}, {"daily_budget_usd": -1}, {"burst": 3}):
        with pytest.raises(ValueError):
            store.set_limits("web-app", **bad)


def test_cli_set_limits(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GATEWAY_KEYS_FILE", str(tmp_path / "keys.db"))
    assert keys_mod.main(["create", "--name", "web-app", "--scopes", "chat", "--rpm", "30", "--tpm", "900"]) == 0
    assert keys_mod.main(["set-limits", "web-app", "--rpm", "60", "--daily-budget", "2.5", "--tpm", "none"]) == 0
    assert "rpm=60" in capsys.readouterr().out
    [k] = build_key_store(settings=make_settings(gateway_keys_file=tmp_path / "keys.db")).list()
    assert (k.rpm, k.tpm, k.daily_budget_usd) == (60, None, 2.5)
    assert keys_mod.main(["set-limits", "web-app"]) == 2  # nothing to change
    assert keys_mod.main(["set-limits", "nobody", "--rpm", "5"]) == 1
    assert keys_mod.main(["set-limits", "web-app", "--rpm", "0"]) == 2
    with pytest.raises(SystemExit):
        keys_mod.main(["set-limits", "web-app", "--rpm", "many"])


def test_limits_changed_by_the_cli_apply_to_a_running_server(  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch, tmp_path, fake_openai
) -> None:
    """The server reads a key's limits from its refreshed record on each request: what `keys set-limits` writes
    applies at the next refresh (GATEWAY_KEYS_REFRESH_S; 0 here: each request refreshes)."""
    from fastapi.testclient import TestClient

    from server import create_app
    from tests.conftest import FAKE_KEY
    from tests.fake_openai import Reply

    keys_file = tmp_path / "keys.db"
    monkeypatch.setenv("GATEWAY_KEYS_FILE", str(keys_file))
    settings = make_settings(skymarket_env="production", gateway_keys_file=keys_file, gateway_keys_refresh_s=0,
                             openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, ai_max_retries=0,
                             usage_db_file=tmp_path / "usage.db", describe_cache_enabled=False,
                             describe_moderation="local", gateway_budget_cache_s=0)
    store = build_key_store(settings=settings)
    store.create_table()
    headers = {"X-API-Key": store.create(name="web-app", scopes=["guard", "describe"], rpm=1)}
    fake_openai.always("gpt-4o-mini", Reply("Roof checks in Troy with photos the next business day, so you know "
                                            "what to fix before winter. Request a quote on SkyMarket today."))
    guard = {"input": {"text": "roof inspection in Troy"}}
    listing = {"input": {"title": "Roof Checks", "category": "inspection", "city": "Troy",
                         "services": ["roof inspection"], "certifications": [], "insured": False}}
    with TestClient(create_app(settings)) as client:
        assert client.post("/guard/invoke", json=guard, headers=headers).status_code == 200
        assert client.post("/guard/invoke", json=guard, headers=headers).status_code == 429
        assert keys_mod.main(["set-limits", "web-app", "--rpm", "100", "--daily-budget", "0"]) == 0
        assert client.post("/guard/invoke", json=guard, headers=headers).status_code == 200
        refused = client.post("/describe/invoke", json=listing, headers=headers)
        assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exceeded"
        assert keys_mod.main(["set-limits", "web-app", "--daily-budget", "none"]) == 0
        assert client.post("/describe/invoke", json=listing, headers=headers).status_code == 200
