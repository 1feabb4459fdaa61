"""Live configuration through the HTTP app: a preset edit (model, temperature, max tokens) applies to the next
request without a restart, as the fake OpenAI server sees it; a broken edit keeps serving with the previous
values and shows in /readyz (`degraded.config`) without making the process unready; fixing it clears that."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server import create_app
from settings import ROOT
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import FakeOpenAI, Reply

TEXT = ("Roof and gutter checks in Troy with clear photos the next business day, so you know what to fix "
        "before winter. Request a quote on SkyMarket.")
LISTING = {"title": "Roof and Gutter Checks in Troy", "category": "inspection", "city": "Troy",
           "services": ["roof inspection", "gutter check"], "certifications": [], "insured": False,
           "notes": "Photos delivered the next business day."}


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    path = tmp_path / "presets.yaml"
    shutil.copy(ROOT / "data" / "presets.yaml", path)
    return path


@pytest.fixture
def client(presets: Path, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, ai_request_timeout=2000, ai_max_retries=0,
        presets_file=presets, config_check_interval_s=0, describe_cache_path=tmp_path / "describe-cache.db",
        usage_db_file=tmp_path / "usage.db", describe_moderation="local",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    before = path.stat().st_mtime_ns
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000,) * 2)  # a coarse clock could keep the same time


def _sent(fake: FakeOpenAI) -> dict[str, Any]:
    """What the last chat-completions request asked for: model, temperature, max tokens."""
    body = fake.calls[-1].body
    return {"model": body["model"], "temperature": body.get("temperature"),
            "max_tokens": body.get("max_completion_tokens", body.get("max_tokens"))}


def _describe(client: TestClient, notes: str = LISTING["notes"]) -> dict[str, Any]:  # type: ignore[assignment]
    r = client.post("/describe/invoke", json={"input": {**LISTING, "notes": notes}})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["output"]
    return out


def test_a_preset_edit_applies_to_the_next_request(client: TestClient, fake_openai: FakeOpenAI,
                                                   presets: Path) -> None:
    for model in ("gpt-4o-mini", "gpt-4.1-mini"):
        fake_openai.always(model, Reply(TEXT))
    assert _describe(client)["model"] == "gpt-4o-mini"
    assert _sent(fake_openai) == {"model": "gpt-4o-mini", "temperature": 0.6, "max_tokens": 400}

    _edit(presets, "describe:\n  temperature: 0.6\n  max_tokens: 400\n",
          "describe:\n  model: gpt-4.1-mini\n  temperature: 0.2\n  max_tokens: 123\n")
    out = _describe(client)  # the same input: the preset is part of the cache key, so the model is asked again
    assert out["model"] == "gpt-4.1-mini" and out["cached"] is False
    assert _sent(fake_openai) == {"model": "gpt-4.1-mini", "temperature": 0.2, "max_tokens": 123}
    config = client.get("/admin/config").json()
    assert config["presets"]["describe"]["values"]["model"] == "gpt-4.1-mini"
    assert config["presets"]["describe"]["models"][0] == {"name": "gpt-4.1-mini", "temperature": 0.2,
                                                          "max_tokens": 123, "local": False}


def test_a_broken_edit_keeps_serving_the_last_good_preset(client: TestClient, fake_openai: FakeOpenAI,
                                                          presets: Path) -> None:
    fake_openai.always("gpt-4o-mini", Reply(TEXT))
    _edit(presets, "describe:\n  temperature: 0.6\n", "describe:\n  temperature: 0.3\n")
    _describe(client)
    good = client.get("/admin/config").json()["data_files"]["presets"]
    _edit(presets, "describe:\n  temperature: 0.3\n", "describe:\n  temperature: 7\n")  # out of range

    calls = len(fake_openai.calls)
    out = _describe(client, "Photos delivered within two days.")  # not a cached input: the model is asked
    assert out["error"] is None and out["cached"] is False and len(fake_openai.calls) > calls
    assert _sent(fake_openai) == {"model": "gpt-4o-mini", "temperature": 0.3, "max_tokens": 400}

    ready = client.get("/readyz").json()
    rejected = ready["degraded"]["config"]["rejected"]["presets"]
    assert rejected["sha256"] == good["sha256"]  # the version still in force
    assert "temperature" in rejected["rejected"]["error"] and rejected["rejected"]["sha256"] != good["sha256"]
    assert "config" not in ready["parts"]  # a refused edit does not make the process unready
    state = client.get("/admin/config").json()["data_files"]["presets"]
    assert state["sha256"] == good["sha256"] and state["on_disk"]["sha256"] == rejected["rejected"]["sha256"]

    _edit(presets, "describe:\n  temperature: 7\n", "describe:\n  temperature: 0.5\n")
    _describe(client, "Photos delivered within three days.")
    assert _sent(fake_openai)["temperature"] == 0.5
    assert "config" not in client.get("/readyz").json()["degraded"]


def test_a_chat_preset_edit_applies_to_the_assistant(presets: Path, fake_openai: FakeOpenAI) -> None:
    """The assistant's model (with its fallbacks, walked by the assistant itself) follows the chat preset."""
    from langchain_core.messages import HumanMessage

    from chains.fallbacks import Fallbacks
    from chains.models import build_chat_model
    from livefiles import set_check_interval

    settings = make_settings(openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, presets_file=presets,
                             config_check_interval_s=0, ai_max_retries=0)
    set_check_interval(settings.config_check_interval_s)  # as build_services does
    models = Fallbacks(build_chat_model(settings=settings, use_case="chat", local_base_url=None))
    fake_openai.always("gpt-4o-mini", Reply("hi"))
    fake_openai.always("gpt-4.1-nano", Reply("hi"))
    models.invoke([HumanMessage("hello")], {})
    assert _sent(fake_openai) == {"model": "gpt-4o-mini", "temperature": 0.4, "max_tokens": 300}
    _edit(presets, "chat:  # the assistant: /assistant and /chat\n  temperature: 0.4\n  max_tokens: 300\n",
          "chat:\n  model: gpt-4.1-nano\n  temperature: 0.9\n  max_tokens: 77\n")
    models.invoke([HumanMessage("hello")], {})
    assert _sent(fake_openai) == {"model": "gpt-4.1-nano", "temperature": 0.9, "max_tokens": 77}
    assert [m.name for m in models.runnables] == ["model:gpt-4.1-nano", "model:gpt-3.5-turbo"]
