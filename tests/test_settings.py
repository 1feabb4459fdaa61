"""Settings: defaults, every validated variable's clear error, placeholder keys, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import ConfigError
from settings import load_presets, load_settings


def test_defaults_match_the_spec() -> None:
    s = load_settings(_env_file=None)
    assert (s.ai_model_primary, s.ai_model_fallback) == ("gpt-4o-mini", "gpt-3.5-turbo")
    assert (s.ai_max_tokens, s.ai_temperature, s.ai_request_timeout) == (1000, 0.7, 30000)
    assert (s.ai_rate_limit_rpm, s.ai_rate_limit_tpm, s.ai_cost_alert_threshold) == (60, 60000, 100)
    assert s.skymarket_env == "development" and s.openai_api_key is None
    assert s.request_timeout_s == 30.0


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MODEL_PRIMARY", "gpt-4.1-mini")
    monkeypatch.setenv("AI_REQUEST_TIMEOUT", "1500")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    s = load_settings(_env_file=None)
    assert s.ai_model_primary == "gpt-4.1-mini" and s.request_timeout_s == 1.5
    assert s.openai_base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("AI_MAX_TOKENS", "0", "greater than or equal"),
        ("AI_MAX_TOKENS", "many", "valid integer"),
        ("AI_TEMPERATURE", "3", "less than or equal"),
        ("AI_REQUEST_TIMEOUT", "-5", "greater than or equal"),
        ("AI_RATE_LIMIT_RPM", "0", "greater than or equal"),
        ("AI_RATE_LIMIT_TPM", "lots", "valid integer"),
        ("AI_COST_ALERT_THRESHOLD", "-1", "greater than or equal"),
        ("SKYMARKET_ENV", "staging", "development"),
        ("OPENAI_BASE_URL", "api.openai.com", "http(s) URL"),
        ("LOCAL_MODEL_URL", "ftp://x", "http(s) URL"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str, words: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert var in info.value.message and words in info.value.message


@pytest.mark.parametrize("key", ["sk-proj-your-api-key-here", "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "sk-short", "<your key>"])
def test_placeholder_key_refused_without_echo(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "OPENAI_API_KEY" in info.value.message and "placeholder" in info.value.message
    assert key not in info.value.message and key not in repr(info.value)


def test_real_looking_key_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-" + "a1B2" * 12
    monkeypatch.setenv("OPENAI_API_KEY", key)
    s = load_settings(_env_file=None)
    assert s.has_openai and key not in repr(s) and key not in str(s.model_dump())


def test_chroma_host_and_port_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    with pytest.raises(ConfigError, match="CHROMA_HOST and CHROMA_PORT"):
        load_settings(_env_file=None)


def test_shipped_presets_are_valid() -> None:
    s = load_settings(_env_file=None)
    assert {"chat", "describe", "search"} <= set(s.presets)
    assert s.preset("chat").prompt == "chat"


def test_bad_preset_names_use_case_and_field(tmp_path: Path) -> None:
    f = tmp_path / "presets.yaml"
    f.write_text("chat:\n  prompt: chat\n  temprature: 0.3\n")
    with pytest.raises(ConfigError, match=r"preset 'chat'.*temprature"):
        load_presets(f)
    f.write_text("chat:\n  prompt: chat\n  temperature: 9\n")
    with pytest.raises(ConfigError, match=r"temperature"):
        load_presets(f)


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        load_settings(_env_file=None).preset("nope")
