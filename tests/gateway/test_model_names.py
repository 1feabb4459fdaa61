"""One name per model (issue 20): whatever the OpenAI-compatible server reports back (llama.cpp: its file path),
the ledger, /usage, /metrics, /dashboard/data and the audit trail name the model by its configured name; rows an
older version wrote under a path are renamed once when the ledger opens, rollups merged into one series, on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from gateway.ledger import Ledger, UsageRow, hourly_table, marginals_table, usage_table
from server import create_app
from settings import ROOT
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI, Reply

PATH = "/srv/checkout-1/data/models/SmolLM2-135M-Instruct.Q4_1.gguf"  # what llama.cpp reports without an alias
NAME = "smollm2-135m-instruct"
LISTING = {"title": "Roof and Gutter Checks in Troy", "category": "inspection", "city": "Troy",
           "services": ["roof inspection", "gutter check"], "certifications": [], "insured": False}


def _no_path_anywhere(local_url: str, tmp_path: Path) -> tuple[dict[str, str], int]:
    """Invoke, batch and stream through the app on the local model at `local_url`; what every report shows (the
    local model composes descriptions and answers chat turns with listings here: as shipped, `mode: facts` and
    `answers_with_listings: false`, it would not be asked)."""
    presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
    presets["describe"]["local"]["mode"] = "compose"
    presets["chat"]["local"]["answers_with_listings"] = True  # asked with listings (as shipped it is not)
    (tmp_path / "presets.yaml").write_text(yaml.safe_dump(presets), encoding="utf-8")
    settings = make_settings(local_model_enabled=True, local_model_url=local_url, local_model_timeout_s=30,
                             describe_cache_enabled=False, audit_text=True, presets_file=tmp_path / "presets.yaml",
                             usage_db_file=tmp_path / "usage.db", audit_file=tmp_path / "audit.jsonl")
    app = create_app(settings)
    with TestClient(app) as c:
        assert c.post("/describe/invoke", json={"input": LISTING}).status_code == 200
        assert c.post("/describe/batch", json={"inputs": [LISTING, {**LISTING, "city": "Novi"}]}).status_code == 200
        ask = {"input": {"messages": [{"role": "user", "content": "Who can inspect my roof in Troy?"}]}}
        with c.stream("POST", "/chat/stream", json=ask) as r:
            assert r.status_code == 200 and "".join(r.iter_text())
        app.state.services.observability.flush()
        seen = {
            "/metrics": c.get("/metrics").text,
            "/usage": c.get("/usage", params={"by": "model", "since": "1d"}).text,
            "/dashboard/data": c.get("/dashboard/data", params={"window": "7d"}).text,
        }
    seen["audit"] = (tmp_path / "audit.jsonl").read_text()
    for where, body in seen.items():
        assert ".gguf" not in body and "/data/models" not in body and "/srv/" not in body, where
    assert f'model="{NAME}"' in seen["/metrics"]
    groups = {row["group"]: row["requests"] for row in json.loads(seen["/usage"])["rows"]}
    return seen, groups.get(NAME, 0)


def test_a_server_reporting_a_path_is_recorded_under_the_configured_name(
        fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.always(NAME, Reply("Roof and gutter checks in Troy, photos the next business day.", model=PATH))
    _, requests = _no_path_anywhere(fake_openai.url, tmp_path)
    assert len(fake_openai.calls) >= 4 and requests >= 3  # every route above asked the model


def test_the_embedded_model_is_named_by_its_configured_name(local_llm: str, tmp_path: Path) -> None:
    _, requests = _no_path_anywhere(local_llm, tmp_path)
    assert requests >= 3


def _row(model: str, at: dt.datetime, *, tried: str | None = None) -> UsageRow:
    return UsageRow(request_id=uuid.uuid4().hex, ts=at, route="chat", model=model, models_tried=tried or model,
                    status=200, input_tokens=10, output_tokens=5, latency_ms=100.0)


def _unify(url: str) -> None:
    old = Ledger(url).create()  # an older version: no rename
    at = dt.datetime(2026, 11, 3, 10, 15)
    old.record(_row(PATH, at), _row(PATH, at, tried=f"gpt-4o-mini,{PATH}"), _row(NAME, at), _row("gpt-4o-mini", at))
    old.close()
    led = Ledger(url, local_model_name=NAME).create()
    Ledger(url, local_model_name=NAME).create().close()  # a second process opening it later renames nothing twice
    with led.engine.connect() as conn:
        models = sorted(m for (m,) in conn.execute(select(usage_table.c.model)))
        tried = sorted(t for (t,) in conn.execute(select(usage_table.c.models_tried)))
        hourly = {m: (n, tok) for m, n, tok in conn.execute(
            select(hourly_table.c.model, hourly_table.c.requests, hourly_table.c.input_tokens))}
        marg = {(s, v): n for s, v, n in conn.execute(
            select(marginals_table.c.span, marginals_table.c.value, marginals_table.c.requests)
            .where(marginals_table.c.dim == "model"))}
    assert models == ["gpt-4o-mini", NAME, NAME, NAME]
    assert tried == ["gpt-4o-mini", f"gpt-4o-mini,{NAME}", NAME, NAME]
    assert hourly == {NAME: (3, 30), "gpt-4o-mini": (1, 10)}  # one series: the path's sums merged into it
    assert marg == {("hour", NAME): 3, ("day", NAME): 3, ("hour", "gpt-4o-mini"): 1, ("day", "gpt-4o-mini"): 1}
    [report] = [r for r in led.report("model", since=at - dt.timedelta(days=1), until=at + dt.timedelta(days=1))
                if r.group == NAME]
    assert report.requests == 3
    led.close()


def test_older_rows_named_by_path_become_one_series_on_sqlite(tmp_path: Path) -> None:
    _unify(f"sqlite:///{tmp_path / 'usage.db'}")


def test_older_rows_named_by_path_become_one_series_on_postgresql(postgres_server: Any) -> None:
    name = "names_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        _unify(postgres_server.url.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


@pytest.mark.parametrize("model", [PATH, "c:\\models\\X.GGUF"])
def test_file_names_are_told_from_model_names(model: str) -> None:
    from gateway.model_names import is_file_name

    assert is_file_name(model) and not is_file_name("gpt-4o-mini") and not is_file_name("meta-llama/llama-3")
