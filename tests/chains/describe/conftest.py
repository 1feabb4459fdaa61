"""Fixtures for the describe tests: settings against the fake OpenAI server, a chain builder, a base input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import Runnable

from chains.describe import build_describe_chain
from chains.models import build_chat_model
from chains.prompting import PromptStore
from settings import Settings
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import FakeOpenAI


@pytest.fixture(autouse=True)
def _describe_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No describe test ever writes the developer's data/describe_cache.db."""
    monkeypatch.setenv("DESCRIBE_CACHE_PATH", str(tmp_path / "describe-cache.db"))


@pytest.fixture
def describe_settings(fake_openai: FakeOpenAI, tmp_path: Path) -> Settings:
    """OpenAI (primary + fallback) on the fake server, its moderation endpoint too; cache in tmp_path."""
    return make_settings(
        openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url, ai_request_timeout=2000, ai_max_retries=0,
        describe_cache_path=tmp_path / "describe-cache.db",
    )


@pytest.fixture
def build_describe() -> Callable[..., Runnable]:
    """Builds the describe runnable as services.py does; `prompts_dir=` points at a copy to edit."""

    def build(settings: Settings, *, prompts_dir: Path | None = None, **kwargs: Any) -> Runnable:
        local = settings.local_model_url if settings.local_model_enabled or not settings.has_openai else None
        model = build_chat_model(settings=settings, use_case="describe", local_base_url=local)
        return build_describe_chain(settings=settings, prompts=PromptStore(prompts_dir or settings.prompts_dir),
                                    model=model, local_base_url=local, **kwargs)

    return build


@pytest.fixture
def listing() -> dict[str, Any]:
    """An operator with no certifications, no insurance and no price: claims of any of them are invented."""
    return {
        "title": "Roof and Gutter Checks in Troy",
        "category": "inspection",
        "city": "Troy",
        "services": ["roof inspection", "gutter check"],
        "certifications": [],
        "insured": False,
        "notes": "Photos delivered the next business day.",
    }
