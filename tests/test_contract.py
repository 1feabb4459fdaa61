"""The HTTP contract, checked by schemathesis against the live app (uvicorn on a loopback port) in development
(keyless loopback calls) and in production (an API key holding every scope): generated requests, valid and
invalid, to every feature and ops route get no 5xx, only documented statuses, documented content types and
headers, and bodies that match their schemas. Then: an invalid key is a 401 with our error body on every keyed
route, in both modes. Models answer from the fake OpenAI server (tests/fake_openai.py).

LangServe's `/c/{config_hash}/...` copies of each route are left out: the same handlers, under a path
parameter that is an opaque compressed string. Bounded: a few examples per operation (`EXAMPLES`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.keys import ALL_SCOPES, build_key_store
from server import create_app
from tests.conftest import FAKE_KEY, LiveServer, make_settings
from tests.fake_openai import FakeOpenAI, Reply

EXAMPLES = 12  # per operation and mode: ~35 operations, two modes, within a few minutes under load
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
ANSWER = "Roof inspections in Troy start at $149 per project with a Part 107 pilot."


@dataclass(frozen=True)
class Deployment:
    mode: str
    url: str
    headers: dict[str, str]
    operations: set[tuple[str, str]]  # (METHOD, path) this app serves


@pytest.fixture(scope="module", params=["development", "production"])
def deployment(request: pytest.FixtureRequest, fake_openai_server: FakeOpenAI) -> Iterator[Deployment]:
    s = make_settings(
        skymarket_env=request.param, openai_api_key=FAKE_KEY, openai_base_url=fake_openai_server.url,
        ai_max_retries=0, ai_request_timeout=5000, circuit_failure_threshold=1000,
        # limits high enough that generated traffic is not all 429 (429 itself is still documented and allowed)
        ai_rate_limit_rpm=100_000, ai_rate_limit_tpm=100_000_000, gateway_global_rpm=100_000,
        gateway_global_tpm=100_000_000,
    )
    headers = {}
    if request.param == "production":
        store = build_key_store(settings=s)
        store.create_table()
        headers = {"Authorization": f"Bearer {store.create(name='contract', scopes=sorted(ALL_SCOPES))}"}
    fake_openai_server.reset()
    fake_openai_server.always("gpt-4o-mini", Reply(ANSWER))
    with LiveServer(create_app(s)) as server:
        deadline = time.monotonic() + 90  # the search index loads in the background
        while httpx.get(f"{server.url}/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        spec = httpx.get(f"{server.url}/openapi.json").json()
        operations = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
        yield Deployment(request.param, server.url, headers, operations)


def _schema() -> schemathesis.BaseSchema:
    """The development app's /openapi.json (built, not served: nothing starts at import), less /c/ routes.

    schemathesis' fixture-loaded schemas need a pytest private attribute that pytest 9.2 no longer has, so the
    operations are collected from this schema and each runs against both deployments (`base_url`).
    """
    config = SchemathesisConfig()  # not discovered from a schemathesis.toml: this module says everything
    config.projects.default.generation.update(max_examples=EXAMPLES)
    spec = create_app(make_settings()).openapi()
    return schemathesis.openapi.from_dict(spec, config=config).exclude(path_regex=r"/c/\{config_hash\}/")


schema = _schema()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_contract(case: schemathesis.Case, deployment: Deployment) -> None:
    if (case.operation.method.upper(), case.operation.path) not in deployment.operations:
        pytest.skip(f"not served in {deployment.mode} (a playground's endpoint)")
    case.call_and_validate(base_url=deployment.url, headers=deployment.headers, checks=CHECKS, timeout=30)


def test_an_invalid_key_is_401_on_every_keyed_route(deployment: Deployment) -> None:
    spec = httpx.get(f"{deployment.url}/openapi.json").json()
    keyed = [(method, path) for path, ops in spec["paths"].items() for method, op in ops.items()
             if op.get("security") and "{" not in path]
    assert len(keyed) > 20, keyed  # every feature route's endpoints, /usage, /metrics, /dashboard ...
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        for method, path in keyed:
            for header in ({"Authorization": "Bearer sk-not-a-key"}, {"X-API-Key": "sk-not-a-key"}):
                r = client.request(method, path, headers=header, json={"input": {}} if method == "post" else None)
                assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
                assert r.json()["error"]["code"] == "invalid_api_key", (method, path)
