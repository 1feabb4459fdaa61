"""The describe cache encrypted at rest: with DATA_ENCRYPTION_KEY no description is in the SQLite file's bytes
and a repeat is still a hit; an entry under another key (or encrypted, read without a key) is a miss, logged
once, never a 500 through /describe; `rekey_cache` re-encrypts entries under the first key, encrypts plain ones,
drops what no key opens, and writes nothing on a dry run; Redis entries keep their TTL."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from chains.describe.cache import RedisCache, SealedCache, SQLiteCache, build_cache
from gateway.crypto import Cipher, is_token, new_key
from gateway.rekey import rekey_cache
from server import create_app
from settings import Settings
from tests.fake_openai import FakeOpenAI, Reply

PRIMARY = "gpt-4o-mini"
TEXT = ("Roof and gutter checks in Troy with clear photos the next business day, so you know what to fix "
        "before winter. Request a quote on SkyMarket.")
OLD, NEW, OTHER = new_key(), new_key(), new_key()


def _key(key: str) -> dict[str, SecretStr]:
    return {"data_encryption_key": SecretStr(key)}


def _stored_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # the file, its WAL and shm


def test_no_description_in_the_file_and_a_repeat_is_a_hit(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    settings = describe_settings.model_copy(update=_key(NEW))
    chain = build_describe(settings)
    assert isinstance(build_cache(settings), SealedCache)
    assert chain.invoke(listing).cached is False
    assert chain.invoke(listing).cached is True and fake_openai.count(PRIMARY) == 1
    raw = _stored_bytes(settings.describe_cache_path)
    assert b"describe_cache" in raw  # the table is there ...
    assert b"gutter checks" not in raw and b"SkyMarket" not in raw and b"description" not in raw  # ... no text


def test_an_entry_under_another_key_is_a_miss_logged_once(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    build_describe(describe_settings.model_copy(update=_key(OLD))).invoke(listing)
    chain = build_describe(describe_settings.model_copy(update=_key(OTHER)))
    caplog.set_level(logging.WARNING, logger="skymarket.describe.cache")
    assert chain.invoke(listing).cached is False and fake_openai.count(PRIMARY) == 2
    assert chain.invoke(listing).cached is True  # the fresh answer replaced it, under the key in force
    other = build_describe(describe_settings.model_copy(update=_key(OLD)))
    other.invoke({**listing, "tone": "friendly"})
    chain.invoke({**listing, "tone": "friendly"})  # a second unreadable entry: no second warning
    warnings = [r.getMessage() for r in caplog.records if "does not decrypt" in r.getMessage()]
    assert len(warnings) == 1


def test_an_encrypted_entry_read_without_a_key_is_a_miss(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    build_describe(describe_settings.model_copy(update=_key(OLD))).invoke(listing)
    plain = build_describe(describe_settings)  # the key was removed from the configuration
    assert not isinstance(build_cache(describe_settings), SealedCache)
    out = plain.invoke(listing)
    assert out.description == TEXT and out.cached is False and fake_openai.count(PRIMARY) == 2


def test_a_wrong_key_is_no_500_through_the_route(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    build_describe(describe_settings.model_copy(update=_key(OLD))).invoke(listing)
    with TestClient(create_app(describe_settings.model_copy(update=_key(OTHER)))) as client:
        first = client.post("/describe/invoke", json={"input": listing})
        second = client.post("/describe/invoke", json={"input": listing})
    assert first.status_code == 200 and first.json()["output"]["cached"] is False
    assert first.json()["output"]["description"] == TEXT
    assert second.status_code == 200 and second.json()["output"]["cached"] is True


def test_rekey_rotates_encrypts_plain_entries_and_drops_unreadable_ones(tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "c.db", ttl_s=600)
    SealedCache(store, Cipher([OLD.encode()])).put("old", '{"a": 1}')
    SealedCache(store, Cipher([OTHER.encode()])).put("lost", '{"b": 2}')
    store.put("plain", '{"c": 3}')  # from before the key
    both = Cipher([NEW.encode(), OLD.encode()])

    dry = rekey_cache(store, both, dry_run=True)
    assert (dry.entries, dry.rotated, dry.encrypted, dry.dropped) == (3, 1, 1, 1)
    assert store.get("plain") == '{"c": 3}' and store.get("lost") is not None  # nothing written

    report = rekey_cache(store, both)
    assert (report.rotated, report.encrypted, report.dropped) == (1, 1, 1)
    new_only = SealedCache(store, Cipher([NEW.encode()]))  # the old key can be dropped
    assert new_only.get("old") == '{"a": 1}' and new_only.get("plain") == '{"c": 3}'
    assert store.get("lost") is None and is_token(store.get("plain") or "")
    assert b'"c": 3' not in _stored_bytes(tmp_path / "c.db")


def test_redis_entries_are_encrypted_and_rekeyed_with_their_ttl(
    redis_server: Any, describe_settings: Settings
) -> None:
    if redis_server.proc is None:
        redis_server.start()
    settings = describe_settings.model_copy(update={"redis_url": redis_server.url, **_key(OLD)})
    cache = build_cache(settings)
    assert isinstance(cache, SealedCache) and isinstance(cache.inner, RedisCache)
    cache.inner.prefix = f"test-{uuid.uuid4().hex}:"
    cache.put("k", '{"description": "Roof checks"}')
    raw = cache.inner._client.get(cache.inner.prefix + "k")
    assert isinstance(raw, bytes) and b"Roof" not in raw and is_token(raw.decode())
    report = rekey_cache(cache.inner, Cipher([NEW.encode(), OLD.encode()]))
    assert report.rotated == 1
    assert SealedCache(cache.inner, Cipher([NEW.encode()])).get("k") == '{"description": "Roof checks"}'
    assert 0 < cache.inner._client.ttl(cache.inner.prefix + "k") <= settings.describe_cache_ttl_s
