"""Fixtures of the prompt-evaluation tests: a fake chat model that obeys its prompt, and an eval workspace."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from chains.evals.checks import Judge
from chains.evals.cli import evaluate
from chains.evals.targets import build_targets
from chains.prompting import PromptStore
from settings import Settings
from tests.conftest import ROOT, make_settings

OBEDIENT = "obedient-fake"
_SAY = re.compile(r"^\s*Always say:\s*(.+)$", re.MULTILINE)
HINTS = '{"category": "thermal_imaging", "place": "Dearborn", "max_price": 300, "features": []}'


class ObedientModel(BaseChatModel):
    """Does what its system prompt says: replies with the text after "Always say:"; JSON when asked for JSON.

    So a prompt edit changes the answer the way it would change a real model's, deterministically.
    """

    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return OBEDIENT

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.calls += 1
        system = " ".join(str(m.content) for m in messages if isinstance(m, SystemMessage))
        said = _SAY.search("\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage)))
        if said:
            text = said.group(1).strip()
        elif "JSON" in system:
            text = HINTS
        else:
            text = "Sorry, SkyMarket serves Detroit Metro, Michigan only; happy to help you there."
        words = len(text.split())
        msg = AIMessage(text, response_metadata={"model_name": OBEDIENT},
                        usage_metadata={"input_tokens": 40, "output_tokens": words, "total_tokens": 40 + words})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def with_structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # like a model without tool calling: callers parse its JSON text


class Workspace:
    """A copy of the prompt files and an empty cases folder under tmp_path, with the settings pointing there."""

    def __init__(self, root: Path) -> None:
        self.prompts = root / "prompts"
        shutil.copytree(ROOT / "prompts", self.prompts, ignore=shutil.ignore_patterns("cases"))
        self.cases = self.prompts / "cases"
        self.cases.mkdir()
        self.reports = root / "reports"
        self.model = ObedientModel()
        self.settings: Settings = make_settings(
            prompts_dir=self.prompts, prompt_eval_cases_dir=self.cases, prompt_eval_report_dir=self.reports,
            prompt_eval_repeats=2, local_model_name=OBEDIENT, describe_cache_enabled=False,
        )
        self.output: list[str] = []
        self.judge: Judge | None = None

    def write(self, relative: str, text: str) -> Path:
        path = self.prompts / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, *argv: str) -> int:
        self.output.clear()
        targets = build_targets(settings=self.settings, prompts=PromptStore(self.prompts), chat_model=self.model,
                                describe_model=self.model, search_model=self.model)
        return evaluate(list(argv), settings=self.settings, targets=targets, judge=self.judge, out=self.output.append)

    @property
    def text(self) -> str:
        return "\n".join(self.output)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture
def run_cli(workspace: Workspace) -> Callable[..., int]:
    return workspace.run
