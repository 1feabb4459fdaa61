"""The chat playground in a real headless browser on the real local model (no key), as a new user meets it: a
roof question in Troy gets real Troy-area inspection listings with their real prices; a wedding in Chicago gets
the out-of-area answer. A failing test leaves its screenshot in test-artifacts/ (tests/browser/conftest.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from retrieval.places import haversine_miles, load_gazetteer
from server import create_app
from tests.browser.conftest import Tab
from tests.conftest import ROOT, LiveServer, make_settings


@pytest.fixture(scope="module")
def live(local_llm: str) -> Iterator[LiveServer]:
    with LiveServer(create_app(make_settings(local_model_url=local_llm))) as s:
        yield s


def _ask(tab: Tab, live: LiveServer, question: str, *, follow_up: bool = False) -> str:
    """Types a question into /chat/playground/ (a new page, or the next turn of the conversation on it) and
    returns the newest AI turn's text once the stream has ended."""
    page = tab.page
    if not follow_up:
        page.goto(f"{live.url}/chat/playground/", wait_until="networkidle")
        assert "only supported for chains" not in page.content()
    before = page.locator("div.group").count()
    box = page.locator("textarea[placeholder='Send a message...']")
    box.fill(question)
    box.press("Enter")
    # Each turn is a div.group with a role <select> and a <textarea>, newest first: wait for the new AI turn
    # whose text has stayed the same for a second (the stream has ended).
    page.wait_for_function(
        """(before) => {
            const turns = [...document.querySelectorAll('div.group')];
            const ai = turns.filter(t => t.querySelector('select')?.value === 'ai');
            const text = turns.length >= before + 2 ? (ai[0]?.querySelector('textarea')?.value ?? '') : '';
            const now = Date.now();
            if (text !== window.__last) { window.__last = text; window.__since = now; }
            return text.trim().length > 0 && now - window.__since > 1000;
        }""",
        arg=before, timeout=120_000, polling=200,
    )
    turns = page.locator("div.group")
    roles = [turns.nth(i).locator("select").input_value() for i in range(turns.count())]
    assert sorted(roles) == sorted(["ai", "human"] * (before // 2 + 1))
    assert roles[0] == "ai" and turns.nth(1).locator("textarea").input_value() == question  # newest first
    text = str(turns.nth(0).locator("textarea").input_value())
    assert not tab.errors, tab.errors
    return text


def test_a_roof_question_in_troy_gets_real_listings_with_real_prices(tab: Tab, live: LiveServer) -> None:
    text = _ask(tab, live, "Who can inspect my roof in Troy?")
    listings = {x["id"]: x for x in map(json.loads, (ROOT / "data" / "listings.jsonl").open(encoding="utf-8"))}
    troy = load_gazetteer(make_settings().places_file).get("Troy")
    assert troy is not None
    cited = re.findall(r"Listing (lst-\d+)", text)
    assert len(cited) == 3, text
    for lid in cited:
        x = listings[lid]
        line = next(line for line in text.splitlines() if lid in line)
        assert x["category"] == "inspection" and x["title"] in line and x["city"] in line
        assert f"from ${x['price_from_usd']:,.0f} per {x['price_unit']}" in line, line
        assert haversine_miles(troy.lat, troy.lon, x["lat"], x["lon"]) <= x["service_radius_miles"]
    for amount in re.findall(r"\$[\d,]+(?:\.\d+)?", text):  # no price the cited listings do not state
        assert any(f"${listings[i]['price_from_usd']:,.0f}" == amount for i in cited), (amount, text)


def test_a_wedding_in_chicago_gets_the_out_of_area_answer(tab: Tab, live: LiveServer) -> None:
    text = _ask(tab, live, "I need a drone photographer for a wedding in Chicago")
    assert "Detroit Metro" in text and "Chicago" in text and "Listing lst-" not in text and "$" not in text


def test_a_question_about_the_listings_shown_is_answered_from_them(tab: Tab, live: LiveServer) -> None:
    """Two turns, as a customer asks: the listings of the first answer, then their prices, every figure the
    listing's own, for the same listings."""
    listings = {x["id"]: x for x in map(json.loads, (ROOT / "data" / "listings.jsonl").open(encoding="utf-8"))}
    first = _ask(tab, live, "Who can inspect my roof in Troy?")
    second = _ask(tab, live, "ok and roughly what would that cost me?", follow_up=True)
    cited = re.findall(r"Listing (lst-\d+)", second)
    assert len(cited) == 3 and cited == re.findall(r"Listing (lst-\d+)", first), (first, second)
    answer = second.split("\n\n1. ")[0]  # the text above the cards
    for lid in cited:
        x = listings[lid]
        assert f"${x['price_from_usd']:,.0f} per {x['price_unit']}" in answer, (x, answer)
