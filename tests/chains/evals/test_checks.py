"""The machine checks: mentions (word boundaries, alternatives, symbols), word limits, JSON shape, the
out-of-area refusal, and the LLM-as-judge's verdict parsing."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from chains.evals.checks import build_judge, run_checks
from chains.prompting import PromptStore
from tests.conftest import ROOT


def _passed(output: str, checks: dict) -> dict[str, bool]:  # type: ignore[type-arg]
    return {c.name: c.passed for c in run_checks(output, checks)}


def test_mentions() -> None:
    text = "Look for FAA Part 107 pilots; prices from $250."
    assert _passed(text, {"must_mention": ["part 107", "insured|FAA"]}) == {"must_mention": True}
    assert _passed(text, {"must_mention": ["Part 10"]}) == {"must_mention": False}  # whole words only
    assert _passed(text, {"must_not_mention": ["$"]}) == {"must_not_mention": False}
    reasons = [c.reason for c in run_checks(text, {"must_not_mention": ["BVLOS", "$"]})]
    assert reasons == ["mentions: $"]


def test_max_words() -> None:
    assert _passed("one two three", {"max_words": 3}) == {"max_words": True}
    assert run_checks("one two three four", {"max_words": 3})[0].reason == "4 words > 3"


def test_json_shape() -> None:
    shape = {"category": "string|null", "max_price": "number|null", "features": "list"}
    assert _passed('```json\n{"category": null, "max_price": 300, "features": []}\n```', {"json": shape})["json"]
    bad = run_checks('{"category": 3, "features": []}', {"json": shape})[0]
    assert not bad.passed and bad.reason == "category is int, want string|null; max_price missing"
    assert run_checks("Sure! Here it is", {"json": shape})[0].reason.startswith("not JSON")


def test_out_of_area_refusal() -> None:
    check = {"refuses_out_of_area": True}
    assert _passed("Sorry, SkyMarket serves the Detroit Metro counties only.", check)["refuses_out_of_area"]
    assert not _passed("Sure, we have great pilots in Chicago!", check)["refuses_out_of_area"]
    assert run_checks("Detroit Metro pilots can fly there.", check)[0].reason == "does not decline"


def test_judge_parses_the_verdict() -> None:
    prompts = PromptStore(ROOT / "prompts")
    yes = build_judge(model=GenericFakeChatModel(messages=iter([AIMessage("PASS: polite")])), prompts=prompts)
    no = build_judge(model=GenericFakeChatModel(messages=iter([AIMessage("FAIL: invents a price")])), prompts=prompts)
    assert yes("Is polite", {"q": 1}, "Hello").passed
    verdict = no("Invents no price", {"q": 1}, "It costs $5")
    assert not verdict.passed and verdict.reason == "FAIL: invents a price"
