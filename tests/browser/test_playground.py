"""The chat playground in a real headless browser (Debian chromium driven by Playwright), on the real local model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import create_app
from tests.conftest import ROOT, LiveServer, make_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: .ci/run installs the Debian package 'chromium'")
    pytest.skip("Debian chromium not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def live(local_llm: str) -> Iterator[LiveServer]:
    with LiveServer(create_app(make_settings(local_model_url=local_llm, local_model_max_tokens=40))) as s:
        yield s


def test_chat_playground_answers(browser, live: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/chat/playground/", wait_until="networkidle")
    assert "only supported for chains" not in page.content()
    box = page.locator("textarea").first
    box.fill("Which drone services can I book in Troy?")
    box.press("Enter")
    # Each turn is a div.group with a role <select> and a <textarea>: wait for an AI turn with text in it.
    page.wait_for_function(
        """() => {
            const turns = [...document.querySelectorAll('div.group')];
            const ai = turns.find(t => t.querySelector('select')?.value === 'ai');
            const text = ai?.querySelector('textarea')?.value ?? '';
            return turns.length >= 2 && text.trim().length > 0;
        }""",
        timeout=90_000,
    )
    turns = page.locator("div.group")
    roles = sorted(turns.nth(i).locator("select").input_value() for i in range(turns.count()))
    assert roles == ["ai", "human"]  # the page lists newest first, so compare as a set
    page.wait_for_timeout(1500)  # let the stream finish before the screenshot
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / "chat-playground.png"), full_page=True)
    assert not errors, errors
