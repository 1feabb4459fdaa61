"""LangChain.js `RemoteRunnable` (@langchain/core 0.3.x, `@langchain/core/runnables/remote`) on Node (20 here) against
the live service with an API key: invoke /search, stream /chat and /assistant, streamEvents (the retriever's
listings, never the model's unchecked draft), and a guard block surfaced to the
client as an error carrying our code. The npm packages (tests/clients/js/package-lock.json) are installed once
into .cache/js-client (gitignored), again when the lock file changes; `.ci/run` installs node and npm if missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import ANSWER, INJECTION, INVENTED, Service
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI

JS = Path(__file__).resolve().parent / "js"
CACHE = ROOT / ".cache" / "js-client"


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            raise RuntimeError("node/npm missing: .ci/run installs the Debian packages nodejs and npm")
        pytest.skip("node and npm are needed (apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout  # v20.20.2
    major = int(version.strip().lstrip("v").split(".")[0])
    if major < 18:  # what @langchain/core 0.3 declares (Debian bookworm's nodejs is 18; tested here on 20)
        raise RuntimeError(f"Node 18 or newer is needed, found {version.strip()}")
    return node, npm


@pytest.fixture(scope="module")
def node() -> str:
    """Node, with the pinned @langchain/core installed under .cache/js-client (`npm ci`, once per lock file)."""
    node, npm = _tools()
    lock = (JS / "package-lock.json").read_bytes()
    stamp = CACHE / ".lock-sha256"
    if not stamp.exists() or stamp.read_text() != hashlib.sha256(lock).hexdigest():
        CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(JS / name, CACHE / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CACHE,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed: {done.stderr[-2000:]}"
        stamp.write_text(hashlib.sha256(lock).hexdigest())
    shutil.copy(JS / "client.mjs", CACHE / "client.mjs")  # next to its node_modules, where imports resolve
    return node


@pytest.fixture(scope="module")
def results(node: str, service: Service, fake_openai_server: FakeOpenAI) -> dict[str, Any]:
    from tests.fake_openai import Reply

    fake_openai_server.reset()
    fake_openai_server.always("gpt-4o-mini", Reply(ANSWER, chunks=6))
    env = {**os.environ, "SKYMARKET_URL": service.url, "SKYMARKET_KEY": service.key, "INJECTION": INJECTION}
    done = subprocess.run([node, "client.mjs"], cwd=CACHE, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_invoke_search(results: dict[str, Any]) -> None:
    r = results["invoke_search"]
    assert r["ok"], r
    assert 0 < len(r["value"]["results"]) <= 3 and r["value"]["in_service_area"] is True


def test_stream_chat(results: dict[str, Any]) -> None:
    r = results["stream_chat"]
    assert r["ok"], r
    text = "".join(r["value"])  # ANSWER invents a price: the client gets the listings' answer and cards instead
    assert len(r["value"]) > 1 and "Listing lst-" in text and INVENTED not in text


def test_stream_assistant_sends_the_listings_first(results: dict[str, Any]) -> None:
    r = results["stream_assistant"]
    assert r["ok"], r
    first, *rest = r["value"]
    assert len(first["listings"]) == 3 and "text" not in first
    assert "".join(c.get("text", "") for c in rest) and INVENTED not in json.dumps(rest)


def test_stream_events(results: dict[str, Any]) -> None:
    r = results["stream_events_assistant"]
    assert r["ok"], r
    events = [e["event"] for e in r["value"]]
    assert events[0] == "on_chain_start" and events[-1] == "on_chain_end"
    [ids] = [e["ids"] for e in r["value"] if e["event"] == "on_retriever_end"]
    assert len(ids) >= 3 and all(i and i.startswith("lst-") for i in ids)  # the candidates (a pool of 10)
    cited = [x["id"] for x in results["stream_assistant"]["value"][0]["listings"]]
    assert len(cited) == 3 and set(cited) <= set(ids)  # the answer cites three of them
    assert not [e for e in events if e.startswith("on_chat_model")]  # the unchecked draft is never streamed
    text = "".join(e["text"] for e in r["value"] if e["text"])
    assert text and INVENTED not in text


@pytest.mark.parametrize("call", ["blocked_invoke", "blocked_stream", "blocked_stream_events"])
def test_a_guard_block_is_an_error_carrying_our_code(results: dict[str, Any], call: str) -> None:
    r = results[call]
    assert not r["ok"] and "400" in r["error"] and "guard_blocked" in r["error"], r


def test_without_a_key_it_is_401(results: dict[str, Any]) -> None:
    r = results["no_key"]
    assert not r["ok"] and "401" in r["error"] and "missing_api_key" in r["error"], r
