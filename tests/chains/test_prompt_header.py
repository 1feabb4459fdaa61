"""The prompt version in use is visible on every response of a prompt-driven route: `X-Prompt-Version` on
invoke, batch and streams (through HTTP on the real app), following an edit of the prompt file; the chat
run's own metadata carries it in stream_log, which the playground reads."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from chains.prompting import PromptStore
from server import create_app
from settings import Settings
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI, Reply
from tests.test_server import wait_ready

ASK = {"input": {"messages": [{"role": "user", "content": "Who can film my roof in Troy?"}]}}


def test_every_chat_response_names_the_prompt_version(
    openai_settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    fake_openai.always("gpt-4o-mini", Reply("Look for a Part 107 operator on SkyMarket."))
    first = PromptStore(prompts).get("chat").version
    with TestClient(create_app(openai_settings.model_copy(update={"prompts_dir": prompts}))) as c:
        wait_ready(c)  # the search index loads after start; the first answer needs it
        invoke = c.post("/chat/invoke", json=ASK)
        assert invoke.status_code == 200 and invoke.headers["X-Prompt-Version"] == f"chat@{first}"
        for endpoint in ("stream", "stream_log", "batch"):
            body = {"inputs": [ASK["input"]]} if endpoint == "batch" else ASK
            r = c.post(f"/chat/{endpoint}", json=body)
            assert r.headers["X-Prompt-Version"] == f"chat@{first}", endpoint
            if endpoint == "stream_log":
                assert f'"prompt_version":"{first}"' in r.text.replace(" ", "")

        chat = prompts / "chat.yaml"
        chat.write_text(chat.read_text().replace("Two to four short sentences", "Two or three short sentences"))
        second = PromptStore(prompts).get("chat").version
        assert second != first
        assert c.post("/chat/invoke", json=ASK).headers["X-Prompt-Version"] == f"chat@{second}"
        assert "X-Prompt-Version" not in c.get("/healthz").headers
