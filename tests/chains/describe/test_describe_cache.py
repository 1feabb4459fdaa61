"""Cache: a second identical request is a hit (no model call, `cached: true`), an edit of the prompt file or of
the claim rules is a miss, entries expire by TTL — on the SQLite file and on a real Redis; a cache outage
is a miss, never a failed request; ungrounded, withheld or input-built results are never stored."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import Runnable

from chains.describe.cache import RedisCache, SQLiteCache, build_cache
from settings import ROOT, Settings
from tests.fake_openai import FakeOpenAI, Reply

PRIMARY, MODERATION = "gpt-4o-mini", "omni-moderation-latest"
TEXT = ("Roof and gutter checks in Troy with clear photos the next business day, so you know what to fix "
        "before winter. Request a quote on SkyMarket.")


@pytest.fixture(params=["sqlite", "redis"])
def cached_settings(request: pytest.FixtureRequest, describe_settings: Settings) -> Settings:
    if request.param == "sqlite":
        return describe_settings
    redis = request.getfixturevalue("redis_server")
    if redis.proc is None:  # another test stopped it to simulate an outage
        redis.start()
    return describe_settings.model_copy(update={"redis_url": redis.url})


def _fresh(settings: Settings) -> Any:
    """The store the settings choose, under a per-test Redis prefix (the session's Redis is shared)."""
    cache = build_cache(settings)
    if isinstance(cache, RedisCache):
        cache.prefix = f"test-{uuid.uuid4().hex}:"
    return cache


def test_second_identical_call_is_a_hit_and_a_prompt_edit_is_a_miss(
    cached_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any], tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    fake_openai.always(PRIMARY, Reply(TEXT))
    chain = build_describe(cached_settings, prompts_dir=prompts, cache=_fresh(cached_settings))

    first = chain.invoke(listing)
    calls = len(fake_openai.calls)
    second = chain.invoke({**listing, "title": "  roof and gutter checks in TROY "})  # normalises to the same
    assert first.cached is False and second.cached is True
    assert second.model_copy(update={"cached": False}) == first
    assert len(fake_openai.calls) == calls  # no model call, no moderation call: no tokens

    (prompts / "describe.yaml").write_text((prompts / "describe.yaml").read_text() + "# tuned\n")
    third = chain.invoke(listing)
    assert third.cached is False and fake_openai.count(PRIMARY) == 2
    assert chain.invoke(listing).cached is True


def test_a_claims_rules_edit_is_a_miss(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any], tmp_path: Path,
) -> None:
    rules = tmp_path / "claims.yaml"
    shutil.copy(ROOT / "data" / "claims.yaml", rules)
    fake_openai.always(PRIMARY, Reply(TEXT))
    chain = build_describe(describe_settings.model_copy(update={"describe_claims_file": rules}))
    chain.invoke(listing)
    rules.write_text(rules.read_text() + "\n# reviewed\n")
    assert chain.invoke(listing).cached is False and fake_openai.count(PRIMARY) == 2


def test_parameters_are_part_of_the_key(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    chain = build_describe(describe_settings)
    chain.invoke(listing)
    assert chain.invoke({**listing, "tone": "friendly"}).cached is False
    other_model = describe_settings.model_copy(update={"ai_model_primary": "gpt-4o"})
    fake_openai.always("gpt-4o", Reply(TEXT))
    assert build_describe(other_model).invoke(listing).cached is False


def test_ungrounded_and_withheld_results_are_not_stored(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply("We are FAA Part 107 certified and fully insured."))
    chain = build_describe(describe_settings)
    first = chain.invoke(listing)  # nothing backed: the description built from the input, not stored
    assert any(f.startswith("replaced:") for f in first.flags)
    assert chain.invoke(listing).cached is False


def test_entries_expire(tmp_path: Path) -> None:
    now = [1000.0]
    cache = SQLiteCache(tmp_path / "c.db", ttl_s=60, clock=lambda: now[0])
    cache.put("k", "v")
    now[0] += 59
    assert cache.get("k") == "v"
    now[0] += 2
    assert cache.get("k") is None


def test_redis_entries_carry_the_ttl(redis_server: Any, describe_settings: Settings) -> None:
    if redis_server.proc is None:
        redis_server.start()
    cache = RedisCache(redis_server.url, ttl_s=120, prefix=f"test-{uuid.uuid4().hex}:")
    cache.put("k", "v")
    assert cache.get("k") == "v" and 0 < cache._client.ttl(cache.prefix + "k") <= 120


def test_a_cache_outage_is_a_miss(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    from chains.local_llm import free_port

    fake_openai.always(PRIMARY, Reply(TEXT))
    down = describe_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    chain = build_describe(down)
    assert chain.invoke(listing).description == TEXT
    assert chain.invoke(listing).cached is False


def test_the_default_store_is_a_sqlite_file_under_data() -> None:
    from tests.conftest import make_settings

    default = Settings.model_fields["describe_cache_path"].default
    assert default.parent == ROOT / "data" and default.suffix == ".db"  # .gitignore: data/*.db, data/*.db-*
    assert isinstance(build_cache(make_settings(describe_cache_path=Path("/nonexistent/x.db"))), SQLiteCache)


def test_a_hit_is_noted_on_the_request_record(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    from gateway import context

    fake_openai.always(PRIMARY, Reply(TEXT))
    chain = build_describe(describe_settings)
    first, second = context.RequestContext("r1", "describe"), context.RequestContext("r2", "describe")
    for ctx in (first, second):
        token = context.bind(ctx)
        try:
            chain.invoke(listing)
        finally:
            context.reset(token)
    assert first.cache_hit is False and second.cache_hit is True
    assert first.guard_action == "allow" and len(first.calls) == 0  # no usage callback bound in this test
