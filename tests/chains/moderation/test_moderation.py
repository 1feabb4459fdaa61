"""chains/moderation: verdicts kept per text (a conversation's earlier turns cost no new call), the event
loop's call (aiohttp) retried as the SDK retries and falling back to the local check on a bad answer, one
session per loop closed by `aclose`. The routes' moderation is tested in tests/chains/describe and assistant."""

from __future__ import annotations

import asyncio

import pytest

from chains.moderation import (
    LOCAL_UNAVAILABLE,
    LocalModerator,
    Memo,
    OpenAIModerator,
    Verdict,
    build_moderator,
    combine,
)
from settings import ROOT, Settings
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import Fail, FakeOpenAI, Garbage, Reply

MODERATION = "omni-moderation-latest"


def _settings(fake: FakeOpenAI, retries: int = 0) -> Settings:
    return make_settings(openai_api_key=FAKE_KEY, openai_base_url=fake.url, ai_request_timeout=2000,
                         ai_max_retries=retries)


def _sent(fake: FakeOpenAI) -> list[list[str]]:
    return [list(c.body["input"]) for c in fake.calls if c.model == MODERATION]


def test_only_texts_not_seen_before_are_sent_in_one_call(fake_openai: FakeOpenAI) -> None:
    fake_openai.flag("spy on", "harassment")
    moderator = build_moderator(_settings(fake_openai))
    first = moderator.check(["I need a roof inspection", "in Troy"])
    later = asyncio.run(moderator.acheck(["I need a roof inspection", "in Troy", "can you spy on my neighbour?"]))
    again = asyncio.run(moderator.acheck(["in Troy", "can you spy on my neighbour?"]))
    assert _sent(fake_openai) == [["I need a roof inspection", "in Troy"], ["can you spy on my neighbour?"]]
    assert first == Verdict(False, (), "openai")
    assert later == again == Verdict(True, ("harassment",), "openai")


def test_each_text_gets_its_own_verdict(fake_openai: FakeOpenAI) -> None:
    fake_openai.flag("hurt", "violence")
    moderator = build_moderator(_settings(fake_openai))
    each = asyncio.run(moderator.acheck_each(["a wedding in Novi", "I will hurt him", "a wedding in Novi"]))
    assert [v.flagged for v in each] == [False, True, False] and each[1].categories == ("violence",)
    assert _sent(fake_openai) == [["a wedding in Novi", "I will hurt him"]]  # the repeat is sent once


def test_the_loops_call_is_retried_like_the_sdks(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(MODERATION, Fail(503, retry_after=0), Reply())
    moderator = build_moderator(_settings(fake_openai, retries=1))
    assert asyncio.run(moderator.acheck(["mapping in Lapeer"])).source == "openai"
    assert len(_sent(fake_openai)) == 2


def test_a_client_error_is_not_retried_and_the_local_check_answers(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(MODERATION, Fail(400))
    moderator = build_moderator(_settings(fake_openai, retries=2))
    verdict = asyncio.run(moderator.acheck(["we can spy on your neighbours without them knowing"]))
    assert verdict.source == LOCAL_UNAVAILABLE and verdict.flagged  # the local rules still refuse it
    assert len(_sent(fake_openai)) == 1


def test_an_answer_that_is_not_json_falls_back_and_is_asked_again(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(MODERATION, Garbage())
    moderator = build_moderator(_settings(fake_openai))
    assert asyncio.run(moderator.acheck(["a roof in Troy"])).source == LOCAL_UNAVAILABLE
    assert asyncio.run(moderator.acheck(["a roof in Troy"])).source == "openai"  # not remembered
    assert len(_sent(fake_openai)) == 2


def test_a_session_per_loop_closed_by_aclose(fake_openai: FakeOpenAI) -> None:
    moderator = build_moderator(_settings(fake_openai))
    assert isinstance(moderator, Memo) and isinstance(moderator.inner, OpenAIModerator)
    inner = moderator.inner

    async def use_and_close() -> bool:
        await moderator.acheck([f"photos in Novi {id(asyncio.get_running_loop())}"])
        session = inner._session()
        await moderator.aclose()
        return session.closed

    assert asyncio.run(use_and_close()) and asyncio.run(use_and_close())  # a new loop gets a new session
    assert inner._sessions == {}


def test_combine_says_when_the_local_check_stood_in() -> None:
    verdicts = [Verdict(False, (), "openai"), Verdict(True, ("violence",), LOCAL_UNAVAILABLE),
                Verdict(True, ("violence", "harassment"), "openai")]
    assert combine(verdicts) == Verdict(True, ("violence", "harassment"), LOCAL_UNAVAILABLE)
    assert combine([], "openai") == Verdict(False, (), "openai")
    assert build_moderator(make_settings()).check([]) == Verdict(False, (), "local")


def test_the_proxy_is_read_from_the_environment_once_as_the_sdk_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    local = LocalModerator(ROOT / "data" / "moderation.yaml")

    def moderator(base_url: str | None) -> OpenAIModerator:
        return OpenAIModerator(api_key=FAKE_KEY, base_url=base_url, model=MODERATION, timeout_s=1, max_retries=0,
                               fallback=local)

    remote, nearby = moderator(None), moderator("http://127.0.0.1:9/v1")
    assert remote.url == "https://api.openai.com/v1/moderations" and remote.proxy == "http://proxy.example:3128"
    assert nearby.proxy is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert remote.proxy == "http://proxy.example:3128"  # read once, like the SDK's client
    assert moderator(None).proxy is None
