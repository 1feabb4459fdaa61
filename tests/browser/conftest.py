"""The browser tests' fixtures: one Debian chromium per module (driven by Playwright), and a page that records
its errors and leaves a screenshot in test-artifacts/ when its test fails."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Offline and quiet: no network of chromium's own (updates, sync, QUIC probes), no GPU in a container.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"  # gitignored
_CALL = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps the test's own outcome on the item, for the `tab` fixture's teardown to see."""
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL] = report
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError("chromium is missing: .ci/run installs the Debian package 'chromium'")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@dataclass
class Tab:
    """A page and what went wrong in it: uncaught exceptions and console errors."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A fresh page; on failure its screenshot is kept as test-artifacts/<test name>.png."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab(context.new_page())
    tab.page.on("pageerror", lambda e: tab.errors.append(f"page error: {e}"))
    tab.page.on("console", lambda m: tab.errors.append(f"console: {m.text}") if m.type == "error" else None)
    yield tab
    report = request.node.stash.get(_CALL, None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
        tab.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
