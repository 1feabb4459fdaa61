"""The operations dashboard in a real headless browser (Debian chromium driven by Playwright): the page loads
without console errors, the charts draw with usage seeded through the ledger's own API (a screenshot is saved
to test-artifacts/dashboard.png), the window selector changes the figures, a phone-sized view has no
horizontal scroll, an empty ledger shows the empty state; and who may see it (401/403 otherwise)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.keys import build_key_store
from gateway.ledger import UsageRow
from server import create_app
from tests.conftest import ROOT, LiveServer, make_settings

CHARTS = ["chart-spend", "chart-latency", "chart-rates", "chart-tokens", "chart-cache", "chart-keys"]


def seed_rows(now: dt.datetime, n: int = 1500) -> list[UsageRow]:
    """Usage over the last 20 days, a denser last hour, three models, four routes, five keys."""
    rnd = random.Random(11)
    out = []
    for i in range(n):
        recent = i % 5 == 0
        ts = now - dt.timedelta(minutes=rnd.uniform(0, 55) if recent else rnd.uniform(60, 20 * 24 * 60))
        model = rnd.choice(["gpt-4o-mini", "gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct"])
        status = rnd.choice([200] * 18 + [429, 503])
        out.append(UsageRow(
            request_id=f"seed-{i:05d}", ts=ts, route=rnd.choice(["chat", "describe", "search", "guard"]),
            status=status, latency_ms=rnd.lognormvariate(6.3, 0.6), key_name=f"key-{rnd.randrange(5)}",
            model=model if status == 200 else None, error=status == 503, fallback=rnd.random() < 0.08,
            input_tokens=rnd.randrange(100, 3000), output_tokens=rnd.randrange(10, 400),
            cost_usd=rnd.uniform(0.0005, 0.01) if status == 200 and model != "smollm2-135m-instruct" else 0.0,
            cache_hit=rnd.random() < 0.25, guard_action="block" if rnd.random() < 0.03 else "allow",
        ))
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Module-scoped: built before the per-test USAGE_DB_FILE exists, so name its own files.
    d = tmp_path_factory.mktemp("dashboard")
    app = create_app(make_settings(ai_cost_alert_threshold=2.0, usage_db_file=d / "usage.db",
                                   audit_file=d / "audit.jsonl"))
    with LiveServer(app) as server:
        app.state.services.observability.ledger.record(*seed_rows(dt.datetime.now(dt.UTC)))
        yield server


def open_page(browser: Any, url: str, **context: Any) -> tuple[Any, list[str]]:
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url, wait_until="networkidle")
    return page, errors


def test_charts_render_and_the_window_selector_changes_the_figures(browser: Any, live: LiveServer) -> None:
    page, errors = open_page(browser, f"{live.url}/dashboard?window=30d", viewport={"width": 1366, "height": 900})
    page.wait_for_function("document.body.dataset.loadedWindow === '30d'")
    assert page.locator("#empty").is_hidden()
    for chart in CHARTS:  # Chart.js drew into every canvas: a sized canvas with non-blank pixels
        drawn = page.evaluate("""id => {
            const c = document.getElementById(id);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0;
            for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
            return {w: c.width, h: c.height, ink, chart: !!Chart.getChart(c)};
        }""", chart)
        assert drawn["chart"] and drawn["w"] > 100 and drawn["h"] > 100 and drawn["ink"] > 500, (chart, drawn)
    spend = page.evaluate("Chart.getChart('chart-spend').data.datasets.map(d => d.label)")
    assert {"gpt-4o-mini", "gpt-3.5-turbo", "alert threshold"} <= set(spend)
    assert page.locator("#circuits li").count() >= 1
    month = page.locator("#kpi-requests").inner_text()
    assert month == "1,500"
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / "dashboard.png"), full_page=True)

    page.click("#windows button[data-window='1h']")
    page.wait_for_function("document.body.dataset.loadedWindow === '1h'")
    hour = int(page.locator("#kpi-requests").inner_text().replace(",", ""))
    assert 0 < hour < 1500 and hour == 300
    assert page.locator("#windows button[data-window='1h']").get_attribute("aria-pressed") == "true"
    labels = page.evaluate("Chart.getChart('chart-latency').data.labels.length")
    assert labels == 60 and "window=1h" in page.url
    assert not errors, errors


def test_readable_on_a_phone(browser: Any, live: LiveServer) -> None:
    page, errors = open_page(browser, f"{live.url}/dashboard?window=7d", viewport={"width": 390, "height": 844},
                             device_scale_factor=2, is_mobile=True, has_touch=True)
    page.wait_for_function("document.body.dataset.loadedWindow === '7d'")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(ROOT / "test-artifacts" / "dashboard-phone.png"), full_page=True)
    assert not errors, errors


def test_empty_ledger_shows_the_empty_state(browser: Any) -> None:
    with LiveServer(create_app(make_settings())) as server:
        page, errors = open_page(browser, f"{server.url}/dashboard?window=24h")
        page.wait_for_function("document.body.dataset.loadedWindow === '24h'")
        assert page.locator("#empty").is_visible() and page.locator("#charts").is_hidden()
        assert "No usage" in page.locator("#empty").inner_text()
        assert not errors, errors


def test_only_admins_and_in_development_only_loopback() -> None:
    with TestClient(create_app(make_settings()), client=("203.0.113.9", 5000)) as c:
        assert c.get("/dashboard").status_code == 401  # not loopback, no key
        assert c.get("/dashboard/data").status_code == 401
    dev = make_settings(gateway_keys_refresh_s=0)
    store = build_key_store(settings=dev)
    store.create_table()
    admin_key = store.create(name="ops", scopes=["admin"])
    with TestClient(create_app(dev), client=("203.0.113.9", 5000)) as c:
        r = c.get("/dashboard", headers={"Authorization": f"Bearer {admin_key}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "loopback_only"
    prod = make_settings(skymarket_env="production", openai_api_key="sk-test-" + "k3y" * 10,
                         gateway_keys_refresh_s=0)
    store = build_key_store(settings=prod)
    store.create_table()
    chat_key, admin_key = store.create(name="web-app", scopes=["chat"]), store.create(name="ops", scopes=["admin"])
    with TestClient(create_app(prod), client=("203.0.113.9", 5000)) as c:
        assert c.get("/dashboard").status_code == 401
        for path in ("/dashboard", "/dashboard/data?window=7d", "/dashboard/static/dashboard.js"):
            assert c.get(path, headers={"Authorization": f"Bearer {chat_key}"}).status_code == 403
        page = c.get("/dashboard", headers={"Authorization": f"Bearer {admin_key}"})
        assert page.status_code == 200 and "chart.umd.min.js" in page.text
        data = c.get("/dashboard/data", params={"window": "30d"}, headers={"X-API-Key": admin_key})
        assert data.status_code == 200 and data.json()["empty"] and len(data.json()["buckets"]) == 30
        assert c.get("/dashboard/data", params={"window": "1y"}, headers={"X-API-Key": admin_key}).status_code == 422
