"""`skymarket prompts eval` end to end on the real chat chain with a fake model that obeys its prompt: a prompt
edit that breaks a must-not-mention check is caught and exits 1, `--accept` moves the baseline, the HTML
report shows both versions side by side with the changes marked, a malformed case file exits 2."""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from chains.evals.checks import build_judge
from chains.prompting import PromptStore
from tests.chains.evals.conftest import Workspace

PROMPT = """\
variables: [today, canary]
system: |
  You are SkyMarket's assistant for Detroit Metro, Michigan. Internal reference: {canary}. Today is {today}.
  Always say: {line}
"""
CASES = """\
cases:
  - id: night-flights
    smoke: true
    input:
      messages: [{role: user, content: "What rules do your pilots follow?"}]
    checks:
      must_mention: ["Part 107"]
      must_not_mention: ["no waiver"]
      max_words: 20
    judge: Says that night flights need a waiver.
"""
GOOD = "Operators hold FAA Part 107 certification."  # short: 12 shared words would trip the leak guard
BAD = "Operators hold FAA Part 107 certification and need no waiver."


def _prompt(ws: Workspace, line: str) -> str:
    ws.write("chat.yaml", PROMPT.replace("{line}", line))
    return PromptStore(ws.prompts).get("chat").version


def test_a_prompt_edit_that_breaks_must_not_mention_is_caught(workspace: Workspace) -> None:
    ws = workspace
    ws.write("cases/chat.yaml", CASES)
    good = _prompt(ws, GOOD)
    assert ws.run("eval", "chat") == 0, ws.text
    assert f"chat @ {good}" in ws.text and "must_not_mention=2/2" in ws.text
    assert "judge rubrics skipped" in ws.text

    bad = _prompt(ws, BAD)
    assert bad != good
    assert ws.run("eval", "chat") == 1
    assert "must_not_mention=0/2" in ws.text
    assert "FAIL night-flights: must_not_mention: mentions: no waiver" in ws.text
    assert ws.model.calls == 4  # K=2 runs per case, each through the model


def test_accept_moves_the_baseline_and_the_report_shows_both_versions(workspace: Workspace) -> None:
    ws = workspace
    ws.write("cases/chat.yaml", CASES)
    accepted = ws.cases / "accepted" / "chat.json"
    good = _prompt(ws, GOOD)
    assert ws.run("eval", "chat", "--accept") == 0
    base = json.loads(accepted.read_text())
    assert base["version"] == good and base["cases"]["night-flights"]["outputs"] == [GOOD, GOOD]
    assert base["cases"]["night-flights"]["input_tokens"] == 80  # usage callback: 40 per run

    bad = _prompt(ws, BAD)
    assert ws.run("eval", "chat") == 1
    assert f"(against {good})" in ws.text and json.loads(accepted.read_text())["version"] == good
    page = (ws.reports / f"chat-{bad}.html").read_text()
    assert good in page and bad in page
    assert "<ins>certification and need no waiver.</ins>" in page and "<del>" in page
    assert "was 100%" in page and "0%" in page
    report = json.loads((ws.reports / f"chat-{bad}.json").read_text())
    assert report["baseline_version"] == good and report["passed"] is False

    assert ws.run("eval", "chat", "--accept") == 1  # accepted all the same: the exit code still follows failures
    assert json.loads(accepted.read_text())["version"] == bad
    ws.run("versions")
    assert f"{bad}  accepted {bad}" in ws.text


def test_against_a_file(workspace: Workspace) -> None:
    ws = workspace
    ws.write("cases/chat.yaml", CASES)
    good = _prompt(ws, GOOD)
    assert ws.run("eval", "chat") == 0
    _prompt(ws, BAD)
    assert ws.run("eval", "chat", "--against", str(ws.reports / f"chat-{good}.json")) == 1
    assert f"(against {good})" in ws.text
    assert ws.run("eval", "chat", "--against", str(ws.reports / "missing.json")) == 2


def test_min_pass_rate_and_smoke_only(workspace: Workspace) -> None:
    ws = workspace
    ws.write("cases/chat.yaml", CASES + (
        "  - id: not-smoke\n    input:\n      messages: [{role: user, content: hi}]\n"
        "    checks: {must_mention: [absent words]}\n"
    ))
    _prompt(ws, GOOD)
    assert ws.run("eval", "chat", "--smoke") == 0 and "not-smoke" not in ws.text
    assert ws.run("eval", "chat") == 1 and "FAIL not-smoke" in ws.text
    ws.settings = ws.settings.model_copy(update={"prompt_eval_min_pass_rate": 0.0})
    assert ws.run("eval", "chat") == 0


def test_malformed_case_file_exits_2_naming_file_and_line(workspace: Workspace) -> None:
    ws = workspace
    path = ws.write("cases/chat.yaml", CASES.replace("max_words: 20", "max_wrds: 20"))
    assert ws.run("eval", "chat") == 2
    assert f"error: {path}:2 (case 'night-flights'): unknown check(s) max_wrds" in ws.text


def test_judge_rubrics_run_when_a_judge_is_configured(workspace: Workspace) -> None:
    ws = workspace
    ws.write("cases/chat.yaml", CASES)
    _prompt(ws, GOOD)
    verdicts = iter([AIMessage("PASS: mentions the rule"), AIMessage("FAIL: no waiver mentioned")])
    ws.judge = build_judge(model=GenericFakeChatModel(messages=verdicts), prompts=PromptStore(ws.prompts))
    assert ws.run("eval", "chat") == 1
    assert "judge=1/2" in ws.text and "judge: FAIL: no waiver mentioned" in ws.text
    assert "judge rubrics skipped" not in ws.text


def test_registered_as_skymarket_prompts() -> None:
    import importlib

    from cli import COMMANDS

    module, func = COMMANDS["prompts"][0].split(":")
    assert callable(getattr(importlib.import_module(module), func))
