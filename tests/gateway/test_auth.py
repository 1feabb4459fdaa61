"""Auth over HTTP: keys created, used (Bearer and X-API-Key), wrong, revoked, missing scope; development
keyless loopback only; production refuses to start without a key; body size and max_tokens caps; OpenAPI
security schemes; the key and its hash never in a response or a log line; keys reloaded by a thread:
a revocation by another process applies within GATEWAY_KEYS_REFRESH_S, and no request waits for a reload."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from errors import ConfigError
from gateway.deps import AdminDep
from gateway.keys import KeyStore, build_key_store, hash_key
from server import create_app
from settings import Settings
from tests.conftest import FAKE_KEY, make_settings
from tests.fake_openai import FakeOpenAI

ASK = {"input": {"messages": [{"role": "user", "content": "Roof inspection in Troy?"}]}}


def _store(settings: Settings) -> KeyStore:
    store = build_key_store(settings=settings)
    store.create_table()
    return store


@pytest.fixture
def prod(fake_openai: FakeOpenAI) -> Settings:
    return make_settings(skymarket_env="production", openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url,
                         gateway_keys_refresh_s=0, ai_max_retries=0)


@pytest.fixture
def keys(prod: Settings) -> dict[str, str]:
    store = _store(prod)
    return {"chat": store.create(name="web-app", scopes=["chat"]),
            "search": store.create(name="search-only", scopes=["search"]),
            "admin": store.create(name="ops", scopes=["admin"])}


@pytest.fixture
def client(prod: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(prod)

    @app.get("/admin-probe")
    async def admin_probe(principal: AdminDep) -> dict[str, Any]:
        return {"key": principal.key_name}

    with TestClient(app) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_key_works_as_bearer_and_x_api_key(client: TestClient, keys: dict[str, str]) -> None:
    assert client.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"])).status_code == 200
    assert client.post("/chat/invoke", json=ASK, headers={"X-API-Key": keys["chat"]}).status_code == 200
    assert client.get("/chat/input_schema", headers=_bearer(keys["chat"])).status_code == 200


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_api_key"),
    ({"Authorization": "Bearer smk_not-a-real-key"}, "invalid_api_key"),
    ({"X-API-Key": "nope"}, "invalid_api_key"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
])
def test_missing_or_wrong_key_is_401(client: TestClient, headers: dict[str, str], code: str) -> None:
    r = client.post("/chat/invoke", json=ASK, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == code
    assert client.get("/chat/input_schema", headers=headers).status_code == 401


def test_missing_scope_is_403(client: TestClient, keys: dict[str, str], fake_openai: FakeOpenAI) -> None:
    r = client.post("/chat/invoke", json=ASK, headers=_bearer(keys["search"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "missing_scope"
    assert fake_openai.count() == 0
    r = client.get("/admin-probe", headers=_bearer(keys["chat"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "missing_scope"
    assert client.get("/admin-probe", headers=_bearer(keys["admin"])).json() == {"key": "ops"}


def test_revoked_key_stops_working(client: TestClient, keys: dict[str, str], prod: Settings) -> None:
    assert client.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"])).status_code == 200
    assert _store(prod).revoke("web-app")
    r = client.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"]))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_stream_is_refused_before_it_opens(client: TestClient) -> None:
    with client.stream("POST", "/chat/stream", json=ASK) as r:
        assert r.status_code == 401 and "event:" not in r.read().decode()


def test_production_refuses_to_start_without_keys(prod: Settings) -> None:
    with pytest.raises(ConfigError, match="at least one API key"), TestClient(create_app(prod)):
        pass


def test_development_keyless_from_loopback_only(fake_openai: FakeOpenAI) -> None:
    dev = make_settings(openai_api_key=FAKE_KEY, openai_base_url=fake_openai.url)
    with TestClient(create_app(dev)) as c:
        assert c.post("/chat/invoke", json=ASK).status_code == 200
    for host, status in (("127.0.0.1", 200), ("::1", 200), ("192.0.2.7", 401)):
        with TestClient(create_app(dev), client=(host, 40000)) as c:
            assert c.post("/chat/invoke", json=ASK).status_code == status, host


def test_body_too_large_is_413(client: TestClient, keys: dict[str, str], prod: Settings) -> None:
    big = {"input": {"messages": [{"role": "user", "content": "x" * (prod.max_body_bytes + 10)}]}}
    r = client.post("/chat/invoke", json=big, headers=_bearer(keys["chat"]))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_max_tokens_over_the_cap_is_refused(client: TestClient, keys: dict[str, str], prod: Settings) -> None:
    body = {**ASK, "config": {"configurable": {"max_tokens": prod.ai_max_tokens + 1}}}
    r = client.post("/chat/invoke", json=body, headers=_bearer(keys["chat"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "max_tokens_too_large"


def test_invalid_user_id_is_400(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/chat/invoke", json=ASK, headers={**_bearer(keys["chat"]), "X-User-Id": "a b/c"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_user_id"


def test_openapi_declares_the_security_schemes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"Bearer", "ApiKey"} <= set(spec["components"]["securitySchemes"])
    assert any("security" in op for op in spec["paths"]["/chat/invoke"].values())


def test_no_key_or_hash_in_responses_or_logs(client: TestClient, keys: dict[str, str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [k for k in keys.values()] + [hash_key(k) for k in keys.values()]
    bodies = []
    for headers in (_bearer(keys["chat"]), _bearer(keys["search"]), {"X-API-Key": keys["chat"] + "x"}, {}):
        r = client.post("/chat/invoke", json=ASK, headers=headers)
        bodies.append(r.text + str(dict(r.headers)))
    logged = "\n".join(rec.getMessage() + str(rec.args) for rec in caplog.records)
    for s in secrets:
        assert s not in logged and s[:16] not in logged
        assert all(s not in b and s[:16] not in b for b in bodies)


def test_revocation_elsewhere_applies_within_the_refresh_interval(prod: Settings, keys: dict[str, str]) -> None:
    s = prod.model_copy(update={"gateway_keys_refresh_s": 0.3})
    with TestClient(create_app(s)) as c:
        assert c.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"])).status_code == 200
        assert _store(s).revoke("web-app")  # another KeyStore: the CLI, in another process
        t0 = time.monotonic()
        while c.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"])).status_code == 200:
            assert time.monotonic() - t0 < 3.0, "revocation did not apply"
            time.sleep(0.05)
        assert time.monotonic() - t0 < 0.3 + 1.7  # the interval, one table read, a loaded machine's slack


def test_requests_do_not_wait_for_a_key_reload(prod: Settings, keys: dict[str, str]) -> None:
    s = prod.model_copy(update={"gateway_keys_refresh_s": 0.05})
    app = create_app(s)
    with TestClient(app) as c:
        store = app.state.services.gateway.keys
        reload = store.refresh

        def slow_refresh() -> None:
            time.sleep(3.0)  # a very slow database
            reload()

        store.refresh = slow_refresh
        times = []
        for _ in range(8):
            t0 = time.monotonic()
            assert c.post("/chat/invoke", json=ASK, headers=_bearer(keys["chat"])).status_code == 200
            times.append(time.monotonic() - t0)
            time.sleep(0.06)  # the view is stale again
        store.refresh = reload
    assert max(times) < 1.5, times  # a request that waited for a reload would take 3 s
