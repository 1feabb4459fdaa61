"""GET /admin/config: admin scope only (403 for other keys, 401 without one in production); never a secret in
the body, checked against every SecretStr setting (found programmatically) and passwords in URLs; each
setting's source (default, environment, .env, argument); the preset per feature; prompt and data file
versions; documented in /openapi.json."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.admin_config import MASK, mask_setting
from gateway.keys import build_key_store
from server import create_app
from settings import ROOT, Settings
from tests.conftest import make_settings

_PLACEHOLDER = re.compile(r"(your|xxx|placeholder|changeme|replace|example|dummy)", re.IGNORECASE)


def _distinct() -> str:
    """A random, recognisable secret that fits any key format a validator may ask for (a Fernet key too)."""
    while True:
        value = base64.urlsafe_b64encode(os.urandom(32)).decode()
        if not _PLACEHOLDER.search(value):
            return value


def _secret_fields() -> list[str]:
    return [name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)]


def _all_secrets() -> tuple[dict[str, Any], list[str]]:
    """Every secret setting set to a distinctive value, plus URL settings carrying a password or token."""
    overrides: dict[str, Any] = {}
    secrets: list[str] = []
    for name in _secret_fields():
        value = _distinct()
        overrides[name] = [value] if "list" in str(Settings.model_fields[name].annotation) else value
        secrets.append(value)
    pw, token, query = _distinct(), _distinct(), _distinct()
    overrides.update(
        database_url=f"postgresql+psycopg://sky:{pw}@127.0.0.1:1/skymarket",
        redis_url=f"redis://:{pw}@127.0.0.1:1/0",
        alert_webhook_url=f"https://hooks.example.net/services/{token}?sig={query}",
        openai_base_url=f"http://proxy:{pw}@127.0.0.1:1/v1?api-key={query}",
    )
    return overrides, [*secrets, pw, token, query]


def test_every_secret_setting_is_masked() -> None:
    overrides, secrets = _all_secrets()
    assert "openai_api_key" in overrides and "audit_hmac_key" in overrides  # the enumeration finds them
    app = create_app(make_settings(**overrides))
    client = TestClient(app)  # no lifespan: nothing connects to the database and Redis named above
    r = client.get("/admin/config")
    assert r.status_code == 200
    body = r.text
    for secret in secrets:
        assert secret not in body and secret[:12] not in body
    shown = r.json()["settings"]
    for name in _secret_fields():
        assert shown[name]["value"] == MASK
    assert shown["database_url"]["value"] == f"postgresql+psycopg://sky:{MASK}@127.0.0.1:1/skymarket"
    assert shown["redis_url"]["value"] == f"redis://:{MASK}@127.0.0.1:1/0"
    assert shown["alert_webhook_url"]["value"].startswith("https://hooks.example.net/")


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("local_model_url", "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("database_url", "postgresql://u:p%40ss@db:5432/x?password=p", f"postgresql://u:{MASK}@db:5432/x?password={MASK}"),
    ("some_token", "abc", MASK),
    ("gateway_keys_file", Path("/srv/keys.db"), "/srv/keys.db"),  # a path named "keys" is not a secret ...
    ("old_encryption_keys", "k1,k2", MASK),  # ... a text is
    ("ai_temperature", 0.5, 0.5),
    ("chroma_port", None, None),
])
def test_mask_setting(name: str, value: Any, shown: Any) -> None:
    assert mask_setting(name, value) == shown


@pytest.fixture
def prod(tmp_path: Path) -> Settings:
    return make_settings(skymarket_env="production", gateway_keys_refresh_s=0, usage_db_file=tmp_path / "u.db")


def test_admin_scope_only(prod: Settings) -> None:
    store = build_key_store(settings=prod)
    store.create_table()
    chat, admin = store.create(name="web", scopes=["chat", "search"]), store.create(name="ops", scopes=["admin"])
    client = TestClient(create_app(prod))
    denied = client.get("/admin/config", headers={"Authorization": f"Bearer {chat}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "missing_scope"
    assert client.get("/admin/config").status_code == 401
    assert client.get("/admin/config", headers={"X-API-Key": admin}).status_code == 200


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("AI_TEMPERATURE", "0.3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AI_MAX_TOKENS=321\nAI_TEMPERATURE=0.9\n")
    settings = Settings(local_model_enabled=False, gateway_keys_file=tmp_path / "keys.db",  # type: ignore[call-arg]
                        usage_db_file=tmp_path / "u.db")
    yield TestClient(create_app(settings))


def test_sources_presets_and_versions(client: TestClient) -> None:
    body = client.get("/admin/config").json()
    s = body["settings"]
    assert s["ai_temperature"] == {"value": 0.3, "source": "environment", "env": "AI_TEMPERATURE"}
    assert s["ai_max_tokens"] == {"value": 321, "source": ".env", "env": "AI_MAX_TOKENS"}
    assert s["local_model_enabled"]["source"] == "argument" and s["port"]["source"] == "default"
    assert body["environment"] == "development"

    chat = body["presets"]["assistant"]
    assert chat["preset"] == "chat" and chat["routes"] == ["/assistant", "/chat"]
    assert chat["values"]["prompt"] == "chat" and chat["values"]["temperature"] == 0.4
    assert body["presets"]["describe"]["values"]["max_tokens"] == 400

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    for name in ("chat", "describe", "search_parse", "chat_local"):
        prompt = body["prompts"][name]
        assert prompt["sha256"] == prompt["on_disk"]["sha256"] == sha(ROOT / "prompts" / f"{name}.yaml")
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", prompt["mtime"])
    files = body["data_files"]
    assert set(files) == {"presets", "claims", "moderation", "pricing", "guard_patterns", "guard_confusables",
                          "guard_learned"}
    assert files["presets"]["sha256"] == sha(ROOT / "data" / "presets.yaml")
    assert files["guard_patterns"]["on_disk"]["sha256"] == sha(ROOT / "data" / "guard" / "patterns.yaml")
    assert all("rejected" not in f for f in files.values())


def test_documented_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/admin/config"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/EffectiveConfig")
    assert {"401", "403"} <= set(op["responses"]) and op.get("security")
    assert "EffectiveConfig" in spec["components"]["schemas"]
