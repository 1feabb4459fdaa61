"""The describe preset per model: a paid model gets prompts/describe.yaml and writes the text (mode write); the
embedded model gets its own prompt and mode (describe.local: `facts` as shipped; most tests here set `compose`),
also when OpenAI fails over to it or its breaker is open; the mode is a preset field; a compose-mode opening is
checked like any sentence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.runnables import Runnable

from chains.breaker import BreakerRegistry
from chains.claims import check, load_claims
from chains.describe import area_places
from chains.describe.fallback import from_input
from chains.describe.schema import canonical, sources_of
from chains.models import build_chat_model
from settings import ROOT, Settings
from tests.fake_openai import Fail, FakeOpenAI, Reply

PRIMARY, FALLBACK, LOCAL = "gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct"
OPENING = "Need a roof inspection in Troy? We also say more here."
DESCRIPTION = ("Need your roof and gutters checked in Troy? We fly over your home and send clear photos the next "
               "business day. Request a quote on SkyMarket.")


def _local_mode(tmp_path: Path, mode: str) -> Path:
    presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
    presets["describe"]["local"]["mode"] = mode
    path = tmp_path / f"presets-local-{mode}.yaml"
    path.write_text(yaml.safe_dump(presets), encoding="utf-8")
    return path


@pytest.fixture
def with_local(describe_settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path) -> Settings:
    """OpenAI (primary, fallback) and the local model, all on the fake server; the local model composes."""
    return describe_settings.model_copy(update={"local_model_enabled": True, "local_model_url": fake_openai.url,
                                                "presets_file": _local_mode(tmp_path, "compose")})


def test_as_shipped_the_embedded_model_is_not_asked_to_describe() -> None:
    """data/presets.yaml: the 135M model's openings were odd or false more often than not (BENCHMARKS.md
    "Describe quality"), so on the default setup the description is the operator's facts as prose."""
    assert Settings(_env_file=None).preset("describe").mode_for(local=True) == "facts"  # type: ignore[call-arg]
    assert Settings(_env_file=None).preset("describe").mode_for(local=False) == "write"  # type: ignore[call-arg]


def _messages(fake: FakeOpenAI, model: str) -> list[dict[str, Any]]:
    return [c for c in fake.calls if c.model == model][-1].body["messages"]


def _prose(listing: dict[str, Any]) -> str:
    inp = canonical(listing)
    rules, sources = load_claims(ROOT / "data" / "claims.yaml"), sources_of(inp, area_places(ROOT / "data" /
                                                                                             "places.json"))
    return from_input(inp, backed=lambda s: not check(s, sources, rules))


def test_a_paid_model_writes_with_the_full_prompt(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Reply(DESCRIPTION))
    out = build_describe(with_local).invoke(listing)
    assert out.description == DESCRIPTION and out.model == PRIMARY and out.flags == []
    sent = _messages(fake_openai, PRIMARY)
    assert "You write listing descriptions for SkyMarket" in sent[0]["content"]
    assert [m["role"] for m in sent] == ["system", "user"] and fake_openai.count(LOCAL) == 0


def test_failover_to_the_local_model_sends_its_own_prompt_and_composes(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Fail(500)).always(FALLBACK, Fail(500)).always(LOCAL, Reply(OPENING))
    out = build_describe(with_local).invoke(listing)
    sent = _messages(fake_openai, LOCAL)
    assert "first sentence of a drone service listing" in sent[0]["content"]
    assert [m["role"] for m in sent][-3:] == ["user", "assistant", "user"]  # the examples go as turns
    assert sent[-1]["content"] == "Services: gutter check; roof inspection. City: Troy."
    # the model's first sentence only, then the operator's facts as prose
    assert out.description == f"Need a roof inspection in Troy? {_prose(listing)}"
    assert out.model == LOCAL and out.grounded is True
    assert any(f.startswith("composed:") for f in out.flags) and not any(f.startswith("replaced:") for f in out.flags)


def test_an_open_breaker_skips_openai_and_the_local_model_gets_its_prompt(
    with_local: Settings, fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    from chains.describe import build_describe_chain
    from chains.prompting import PromptStore

    breakers = BreakerRegistry(failure_threshold=1, window_s=30, reset_timeout_s=600)
    model = build_chat_model(settings=with_local, use_case="describe", local_base_url=fake_openai.url,
                             breakers=breakers)
    chain: Runnable[Any, Any] = build_describe_chain(
        settings=with_local, prompts=PromptStore(with_local.prompts_dir), model=model, local_base_url=fake_openai.url)
    fake_openai.always(PRIMARY, Fail(500)).always(FALLBACK, Fail(500)).always(LOCAL, Reply(OPENING))
    chain.invoke(listing)
    paid = fake_openai.count(PRIMARY) + fake_openai.count(FALLBACK)
    out = chain.invoke({**listing, "title": "Another title"})
    assert fake_openai.count(PRIMARY) + fake_openai.count(FALLBACK) == paid  # both breakers open: not called
    assert out.model == LOCAL and out.description.startswith("Need a roof inspection in Troy?")
    assert "first sentence" in _messages(fake_openai, LOCAL)[0]["content"]


def test_an_unusable_opening_is_asked_again_then_left_out(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    local_only = with_local.model_copy(update={"openai_api_key": None})
    fake_openai.always(LOCAL, Reply("We are fully insured for roof inspection in Troy."))
    out = build_describe(local_only).invoke(listing)
    assert fake_openai.count(LOCAL) == local_only.describe_max_attempts
    assert out.description == _prose(listing) and "insured" not in out.description
    assert any(f.startswith("regenerated: opening sentence 1") for f in out.flags)
    assert any(f.startswith("removed insurance") for f in out.flags)
    assert any(f.startswith("replaced:") for f in out.flags) and out.grounded is True


@pytest.mark.parametrize(
    "reply",
    ["drone inspection; roof inspection; gutter check in Troy.",  # a list, not prose
     "Services: roof inspection in Troy.",  # a label
     "Enjoy the view of the lake this summer with friends.",  # neither the city nor a service
     "Roof inspection roof inspection roof inspection in Troy."],  # a loop
)
def test_what_is_not_an_opening_sentence(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
    reply: str,
) -> None:
    fake_openai.always(LOCAL, Reply(reply))
    out = build_describe(with_local.model_copy(update={"openai_api_key": None})).invoke(listing)
    assert out.description == _prose(listing)


def test_the_mode_is_a_preset_field(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
    tmp_path: Path,
) -> None:
    presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
    presets["describe"]["local"] = {"prompt": "describe", "mode": "write"}  # today's behaviour for the local model
    path = tmp_path / "presets.yaml"
    path.write_text(yaml.safe_dump(presets), encoding="utf-8")
    settings = with_local.model_copy(update={"openai_api_key": None, "presets_file": path})
    fake_openai.always(LOCAL, Reply(DESCRIPTION))
    out = build_describe(settings).invoke(listing)
    assert out.description == DESCRIPTION and out.model == LOCAL
    assert "You write listing descriptions for SkyMarket" in _messages(fake_openai, LOCAL)[0]["content"]


def test_the_local_mode_is_part_of_the_cache_key(
    with_local: Settings, build_describe: Callable[..., Runnable], listing: dict[str, Any], tmp_path: Path,
) -> None:
    keys = []
    for mode in ("compose", "write"):
        presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
        presets["describe"]["local"]["mode"] = mode  # same prompt file, another mode
        presets["describe"]["local"]["prompt"] = "describe"
        path = tmp_path / f"presets-{mode}.yaml"
        path.write_text(yaml.safe_dump(presets), encoding="utf-8")
        chain: Any = build_describe(with_local.model_copy(update={"presets_file": path}))
        keys.append(chain.key(listing))
    assert keys[0] != keys[1]  # a description made in another mode is not reused


def _facts_preset(tmp_path: Path) -> Path:
    return _local_mode(tmp_path, "facts")


def test_mode_facts_never_asks_that_model(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
    tmp_path: Path,
) -> None:
    settings = with_local.model_copy(update={"openai_api_key": None, "presets_file": _facts_preset(tmp_path)})
    out = build_describe(settings).invoke(listing)
    assert fake_openai.count(LOCAL) == 0 and out.description == _prose(listing) and out.grounded is True
    assert out.model == "" and out.flags == [
        "composed: the operator's facts as prose, without a model (describe mode facts)"]


def test_mode_facts_for_the_local_model_still_lets_openai_write(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
    tmp_path: Path,
) -> None:
    settings = with_local.model_copy(update={"presets_file": _facts_preset(tmp_path)})
    fake_openai.always(PRIMARY, Reply(DESCRIPTION))
    assert build_describe(settings).invoke(listing).description == DESCRIPTION
    fake_openai.always(PRIMARY, Fail(500)).always(FALLBACK, Fail(500))
    out = build_describe(settings).invoke({**listing, "title": "Other"})  # OpenAI down: the prose, no local call
    assert fake_openai.count(LOCAL) == 0 and out.description.startswith("Based in Troy")
    assert out.flags == ["composed: the operator's facts as prose, without a model (describe mode facts; the models "
                         "asked failed)"]


def test_ainvoke_composes_on_failover_too(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    fake_openai.always(PRIMARY, Fail(500)).always(FALLBACK, Fail(500)).always(LOCAL, Reply(OPENING))
    out = asyncio.run(build_describe(with_local).ainvoke(listing))
    assert out.description == f"Need a roof inspection in Troy? {_prose(listing)}" and out.model == LOCAL


def test_within_max_words_the_opening_goes_first_and_the_call_to_action_stays(
    with_local: Settings, build_describe: Callable[..., Runnable], fake_openai: FakeOpenAI, listing: dict[str, Any],
) -> None:
    local_only = with_local.model_copy(update={"openai_api_key": None})
    fake_openai.always(LOCAL, Reply(OPENING))
    long = {**listing, "certifications": ["FAA Part 107", "HAAG Certified Inspector"], "insured": True,
            "features": ["same_day", "weekend_availability"], "price_from_usd": 149, "price_unit": "project",
            "max_words": 30}
    out = build_describe(local_only).invoke(long)
    assert len(out.description.split()) <= 30 and out.description.endswith("Request a quote on SkyMarket.")
    assert out.description.startswith("Based in Troy") and out.grounded is True
    assert "composed: the operator's facts as prose; the model's opening left out for length" in out.flags
    assert "trimmed: cut to at most 30 words" in out.flags
