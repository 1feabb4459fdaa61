"""The price table: the cost formula with cached input, dated snapshots, local models free, unknown models unpriced."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from errors import ConfigError
from gateway.pricing import PriceTable, load_prices
from settings import ROOT, Settings
from tests.conftest import make_settings


@pytest.fixture
def table() -> PriceTable:
    return load_prices(ROOT / "data" / "pricing.json", local={"my-local"})


def test_cost_counts_cached_input_at_its_own_price(table: PriceTable) -> None:
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens.
    c = table.cost("gpt-4o-mini", input_tokens=1_000_000, cached_tokens=400_000, output_tokens=200_000)
    assert c.priced and c.usd == pytest.approx(0.6 * 0.15 + 0.4 * 0.075 + 0.2 * 0.60, abs=1e-12)


def test_dated_snapshot_takes_the_base_price(table: PriceTable) -> None:
    base = table.cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert table.cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=100) == base
    assert table.price("gpt-3.5-turbo-0125") == table.price("gpt-3.5-turbo")


def test_local_models_cost_nothing(table: PriceTable) -> None:
    assert table.cost("smollm2-135m-instruct", input_tokens=10**6, output_tokens=10**6).usd == 0
    assert table.cost("my-local", input_tokens=10**6).priced
    assert table.cost("gpt-4o", input_tokens=10**6, is_local=True).usd == 0


def test_unknown_model_is_unpriced_with_one_warning(table: PriceTable, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="skymarket.pricing")
    for _ in range(3):
        c = table.cost("acme-llm-9", input_tokens=500, output_tokens=50)
        assert c.usd == 0 and c.priced is False
    warnings = [r for r in caplog.records if "acme-llm-9" in r.getMessage()]
    assert len(warnings) == 1 and "unpriced" in warnings[0].getMessage()


def test_cached_tokens_never_exceed_input(table: PriceTable) -> None:
    c = table.cost("gpt-4o", input_tokens=100, cached_tokens=1000, output_tokens=0)
    assert c.usd == pytest.approx(100 * 1.25 / 1e6)


def test_shipped_table_prices_the_default_models_with_a_date() -> None:
    raw = json.loads((ROOT / "data" / "pricing.json").read_text())
    s: Settings = make_settings()
    for model in (s.ai_model_primary, s.ai_model_fallback):
        assert model in raw["models"]
    for name, body in raw["models"].items():
        assert {"input", "cached_input", "output", "checked"} <= set(body), name
        assert body["cached_input"] <= body["input"], name
    assert s.local_model_name in raw["local"]


@pytest.mark.parametrize("body", ['{"models": {"m": {"output": 1}}}', '{"models": {"m": {"input": -1, "output": 1}}}',
                                  "not json"])
def test_bad_table_is_a_config_error(tmp_path: Path, body: str) -> None:
    (tmp_path / "p.json").write_text(body)
    with pytest.raises(ConfigError):
        load_prices(tmp_path / "p.json")
