"""Batch: identical inputs cost one model call, distinct ones run with bounded concurrency, and a failing item
becomes an output with `error` set while the others succeed — over HTTP (LangServe's /describe/batch) and
in-process (`batch`, `abatch`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from langchain_core.runnables import Runnable

from server import create_app
from settings import Settings
from tests.fake_openai import Fail, FakeOpenAI, Reply

PRIMARY = "gpt-4o-mini"
TEXT = ("Roof and gutter checks with clear photos the next business day, so you know what to fix before winter. "
        "Request a quote on SkyMarket.")


def _items(listing: dict[str, Any], distinct: int, total: int) -> list[dict[str, Any]]:
    return [{**listing, "title": f"Roof checks, crew {i % distinct}"} for i in range(total)]


def test_50_items_with_duplicates_and_one_failing(
    describe_settings: Settings, fake_openai: FakeOpenAI, listing: dict[str, Any]
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    fake_openai.flag("hurt them", "violence")
    items = _items(listing, distinct=12, total=50)
    items[17] = {**listing, "notes": "If a customer complains we hurt them."}
    with TestClient(create_app(describe_settings)) as client:
        r = client.post("/describe/batch", json={"inputs": items})
    assert r.status_code == 200
    out = r.json()["output"]
    assert len(out) == 50
    errors = [i for i, o in enumerate(out) if o["error"] is not None]
    assert errors == [17] and out[17]["error"]["code"] == "moderation_flagged" and out[17]["description"] == ""
    assert sum(1 for o in out if o["description"] == TEXT and o["grounded"]) == 49
    assert fake_openai.count(PRIMARY) == 12  # one call per distinct input


def test_a_provider_failure_fails_only_its_item(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    # One at a time, so the scripted failure meets the third distinct input; 400 is not a fallback error.
    fake_openai.script(PRIMARY, Reply(TEXT), Reply(TEXT), Fail(400, message="bad request"))
    fake_openai.always(PRIMARY, Reply(TEXT))
    items = _items(listing, distinct=5, total=5)
    out = build_describe(describe_settings).batch(items, config={"max_concurrency": 1})
    assert [o.error.code if o.error else None for o in out] == [None, None, "provider_error", None, None]
    assert "secret" not in out[2].error.message and out[2].model == ""


def test_normalised_duplicates_share_one_call(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    same = [listing, {**listing, "title": "  Roof and Gutter   Checks in Troy ", "services": ["Gutter check",
                                                                                             "roof inspection"]}]
    out = build_describe(describe_settings).batch(same)
    assert out[0] == out[1] and fake_openai.count(PRIMARY) == 1


def test_concurrency_is_bounded(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    delay = 0.6  # a wave's three calls must be stamped within 0.8 x delay of each other, on a loaded CI machine too
    fake_openai.always(PRIMARY, Reply(TEXT, first_token_delay=delay))
    settings = describe_settings.model_copy(update={"describe_concurrency": 3, "describe_moderation": "local"})
    started = time.monotonic()
    out = build_describe(settings).batch(_items(listing, distinct=9, total=9))
    elapsed = time.monotonic() - started
    assert all(o.error is None for o in out)
    starts = sorted(c.at for c in fake_openai.calls if c.model == PRIMARY)
    overlap = max(sum(1 for s in starts if t - delay * 0.8 < s <= t) for t in starts)
    assert overlap == 3  # never more than the setting, and it is used
    assert elapsed >= 3 * delay * 0.9  # three waves at least (no upper bound: the box is shared and noisy)


async def test_abatch_is_the_same_contract(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(TEXT))
    items = [*_items(listing, distinct=2, total=4), {**listing, "category": "not-a-category"}]
    out = await build_describe(describe_settings).abatch(items)
    assert [o.error.code if o.error else None for o in out] == [None, None, None, None, "invalid_input"]
    assert fake_openai.count(PRIMARY) == 2
    raw = await build_describe(describe_settings).abatch(items, return_exceptions=True)
    assert isinstance(raw[-1], Exception)


def test_batch_size_limit(describe_settings: Settings, fake_openai: FakeOpenAI, listing: dict[str, Any]) -> None:
    settings = describe_settings.model_copy(update={"describe_max_batch": 3})
    with TestClient(create_app(settings)) as client:
        r = client.post("/describe/batch", json={"inputs": [listing] * 4})
    assert r.status_code == 400 and r.json()["error"]["code"] == "batch_too_large"
    assert fake_openai.count(PRIMARY) == 0
