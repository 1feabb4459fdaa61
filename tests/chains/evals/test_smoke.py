"""The smoke subset of the shipped golden cases (`smoke: true`) through the real chat, describe and search
chains: cheaply with the fake model that obeys its prompt, and one case on the real local model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from chains.evals.cases import load_case_file
from chains.evals.runner import run_cases
from chains.evals.targets import build_targets
from chains.models import build_chat_model
from chains.prompting import PromptStore
from gateway.pricing import load_prices
from tests.chains.evals.conftest import Workspace
from tests.conftest import ROOT, make_settings


def test_shipped_smoke_cases_pass_with_the_obedient_fake(workspace: Workspace) -> None:
    ws = workspace
    shutil.rmtree(ws.cases)
    shutil.copytree(ROOT / "prompts" / "cases", ws.cases)
    code = ws.run("eval", "--smoke", "--repeats", "1")
    assert code == 0, ws.text
    for prompt in ("chat", "describe", "search_parse"):
        version = PromptStore(ws.prompts).get(prompt).version
        report = json.loads((ws.reports / f"{prompt}-{version}.json").read_text())
        assert report["passed"] and list(report["cases"]) == [c.id for c in load_case_file(
            ws.cases / f"{prompt}.yaml").cases if c.smoke], prompt


def test_one_case_on_the_real_local_model(local_llm: str, tmp_path: Path) -> None:
    settings = make_settings(local_model_url=local_llm, local_model_max_tokens=48)
    prompts = PromptStore(ROOT / "prompts")
    model = build_chat_model(settings=settings, use_case="chat", local_base_url=local_llm)
    targets = build_targets(settings=settings, prompts=prompts, chat_model=model, local_base_url=local_llm)
    assert "chat" not in targets  # the embedded model reads its own prompt (the chat preset's `local:`)
    cases = load_case_file(ROOT / "prompts" / "cases" / "chat_local.yaml")
    smoke = type(cases)(prompt=cases.prompt, path=cases.path, cases=[c for c in cases.cases if c.smoke][:1])
    prices = load_prices(settings.pricing_file, local={settings.local_model_name})
    run = run_cases(smoke, target=targets["chat_local"], version=prompts.get("chat_local").version, prices=prices,
                    local_model_name=settings.local_model_name)
    sample = run.results[0].samples[0]
    # A 135M model: the test checks the loop (a real answer, checked, measured, free), not the answer's quality.
    assert sample.error is None and sample.output.strip()
    assert {c.name for c in sample.checks} == {"must_mention", "must_not_mention", "max_words"}
    assert sample.output_tokens > 0 and sample.cost_usd == 0.0 and sample.priced
    assert sample.models == [settings.local_model_name] and sample.latency_ms > 0
