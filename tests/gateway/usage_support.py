"""Helpers shared by the usage, audit and metrics tests: an app on the fake OpenAI server, its ledger rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from gateway.ledger import usage_table
from gateway.recording import Observability
from settings import ROOT

PRIMARY, FALLBACK, LOCAL = "gpt-4o-mini", "gpt-3.5-turbo", "smollm2-135m-instruct"


def ask(text: str = "How do I hire a drone pilot through SkyMarket?") -> dict[str, Any]:
    """A chat input; the default asks nothing to search, so the model answers it (once)."""
    return {"messages": [{"role": "user", "content": text}]}


def price_of(model: str) -> dict[str, float]:
    """The shipped price table's entry (read independently of gateway.pricing)."""
    table = json.loads((ROOT / "data" / "pricing.json").read_text())["models"]
    return {k: float(v) for k, v in table[model].items() if k != "checked"}


def expected_cost(model: str, *, prompt: int, cached: int, output: int) -> float:
    p = price_of(model)
    return ((prompt - cached) * p["input"] + cached * p["cached_input"] + output * p["output"]) / 1e6


def observability(app: Any) -> Observability:
    obs = app.state.services.observability
    assert obs is not None
    return obs


def rows(app: Any) -> list[dict[str, Any]]:
    """Every ledger row, oldest first (after the writer has written what it holds)."""
    observability(app).flush()
    with observability(app).ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(usage_table).order_by(usage_table.c.id))]
