"""Moderation: OpenAI's endpoint (the fake server's /v1/moderations) refuses flagged input and withholds flagged
output; its failure falls back to the local check, said in flags; the offline check on a small labelled set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from langchain_core.runnables import Runnable

from chains.breaker import BreakerRegistry
from chains.moderation import LOCAL_UNAVAILABLE, LocalModerator, Memo, OpenAIModerator, build_moderator
from errors import ConfigError, InputRejected
from server import create_app
from settings import ROOT, Settings
from tests.conftest import make_settings
from tests.fake_openai import Fail, FakeOpenAI, Reply

PRIMARY, MODERATION = "gpt-4o-mini", "omni-moderation-latest"
CLEAN = ("Roof and gutter checks in Troy with clear photos the next business day, so you know what to fix "
         "before winter. Request a quote on SkyMarket.")
LABELLED = yaml.safe_load((Path(__file__).parent / "moderation_set.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def client(describe_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(describe_settings)) as c:
        yield c


def test_flagged_input_is_refused_before_any_model_call(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.flag("follow your ex", "harassment")
    with pytest.raises(InputRejected) as info:
        build_describe(describe_settings).invoke({**listing, "notes": "We follow your ex anywhere."})
    assert info.value.code == "moderation_flagged" and "harassment" in info.value.message
    assert fake_openai.count(MODERATION) == 1 and fake_openai.count(PRIMARY) == 0
    sent = fake_openai.calls[0]
    assert sent.body["model"] == MODERATION and "We follow your ex anywhere." in sent.body["input"][0]


def test_refusal_is_a_400_on_invoke_and_before_a_stream_opens(
    client: TestClient, fake_openai: FakeOpenAI, listing: dict[str, Any]
) -> None:
    fake_openai.flag("*", "violence")
    for endpoint in ("invoke", "stream", "stream_log"):
        r = client.post(f"/describe/{endpoint}", json={"input": listing})
        assert r.status_code == 400, endpoint
        assert r.json()["error"]["code"] == "moderation_flagged"
    assert fake_openai.count(PRIMARY) == 0


def test_flagged_output_is_withheld(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(CLEAN + " Gutters are violently clean."))
    fake_openai.flag("violently", "violence")
    out = build_describe(describe_settings).invoke(listing)
    assert out.description == "" and out.grounded is False
    assert out.moderation.flagged is True and out.moderation.categories == ["violence"]
    assert any("withheld" in f for f in out.flags)


def test_moderation_outage_falls_back_to_the_local_check(
    describe_settings: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI,
    listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(CLEAN))
    fake_openai.always(MODERATION, Fail(500))
    chain = build_describe(describe_settings)
    out = chain.invoke(listing)
    assert out.description == CLEAN and out.moderation.flagged is False
    assert "moderation: OpenAI moderation unavailable; the local check was used" in out.flags
    with pytest.raises(InputRejected, match="surveillance"):  # the local check still refuses
        chain.invoke({**listing, "notes": "We can spy on your neighbours without them knowing."})


def test_no_key_means_the_local_check_and_openai_mode_needs_a_key() -> None:
    settings = make_settings()
    assert isinstance(build_moderator(settings), Memo) and build_moderator(settings).name == "local"
    assert build_moderator(make_settings(describe_moderation="off")).name == "off"
    with pytest.raises(ConfigError, match="needs OPENAI_API_KEY"):
        build_moderator(make_settings(describe_moderation="openai"))


def test_verdicts_are_memoised(describe_settings: Settings, fake_openai: FakeOpenAI) -> None:
    moderator = build_moderator(describe_settings)
    assert isinstance(moderator, Memo) and isinstance(moderator.inner, OpenAIModerator)
    assert moderator.check(["a roof in Troy"]) == moderator.check(["a roof in Troy"])
    assert fake_openai.count(MODERATION) == 1


@pytest.mark.parametrize("case", LABELLED, ids=[c["text"][:40] for c in LABELLED])
def test_local_check_on_the_labelled_set(case: dict[str, Any]) -> None:
    verdict = LocalModerator(ROOT / "data" / "moderation.yaml").check([case["text"]])
    assert sorted(verdict.categories) == sorted(case["expect"])
    assert verdict.flagged is bool(case["expect"])


def test_a_failing_endpoint_opens_its_breaker_and_is_left_alone(
        describe_settings: Settings, fake_openai: FakeOpenAI) -> None:
    # Without it, an outage costs every chat answer two failed calls (input and output) and two warnings.
    fake_openai.always(MODERATION, Fail(500))
    now = [0.0]
    breakers = BreakerRegistry(failure_threshold=2, window_s=30, reset_timeout_s=15, clock=lambda: now[0])
    moderator = build_moderator(describe_settings.model_copy(update={"ai_max_retries": 0}), breakers=breakers)
    verdicts = [moderator.check([f"a roof in Troy #{i}"]) for i in range(6)]  # new texts: no memo hit
    assert fake_openai.count(MODERATION) == 2 and {v.source for v in verdicts} == {LOCAL_UNAVAILABLE}
    assert breakers.states()[f"moderation:{MODERATION}"] == "open"
    fake_openai.always(MODERATION, Reply())  # back: the next probe after the reset closes it
    now[0] += 16
    assert moderator.check(["a roof in Troy #7"]).source == "openai"
    assert breakers.states()[f"moderation:{MODERATION}"] == "closed" and fake_openai.count(MODERATION) == 3
