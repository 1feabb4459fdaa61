"""`skymarket data` (gateway/rekey.py) and the sealed audit through the app: a chat request with AUDIT_TEXT and a
key leaves no prompt or answer in the audit file's bytes; `rotate-key` with NEW,OLD re-encrypts the audit text
and the describe cache so that NEW alone opens everything (`check`); `--dry-run` writes nothing; a key that
opens nothing is an error naming the record; `new-key` prints a usable key; no key configured is a usage error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from chains.describe.cache import SealedCache, SQLiteCache
from cli import COMMANDS
from gateway.audit import build_audit, verify
from gateway.audit_seal import check_file
from gateway.context import RequestContext
from gateway.crypto import Cipher, new_key, parse_keys
from gateway.rekey import main
from server import create_app
from settings import Settings, load_settings
from tests.fake_openai import FakeOpenAI, Reply
from tests.gateway.usage_support import PRIMARY, ask

OLD, NEW, OTHER = new_key(), new_key(), new_key()
PROMPT = "How do I hire a drone pilot through SkyMarket? Thanks, Marguerite"


def test_chat_traffic_leaves_no_text_in_the_audit_file(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    settings = openai_settings.model_copy(update={"audit_text": True, "data_encryption_key": SecretStr(NEW)})
    fake_openai.always(PRIMARY, Reply("Post your job on SkyMarket and compare the pilots' quotes."))
    with TestClient(create_app(settings)) as c:
        assert c.post("/chat/invoke", json={"input": ask(PROMPT)}).status_code == 200
    path = Path(settings.audit_file)
    raw = path.read_bytes()
    assert b"Marguerite" not in raw and b"compare the pilots" not in raw and b'"sealed"' in raw
    assert verify(path) == (1, None)
    from gateway.audit import _hmac_key

    report, problem = check_file(path, Cipher([NEW.encode()]), hmac_key=_hmac_key(settings))
    assert problem is None and report.sealed == 1 and report.plain == 0


def _write(env_key: str, n: int) -> Settings:
    os.environ["DATA_ENCRYPTION_KEY"] = env_key  # the monkeypatch fixture of each test restores it
    settings = load_settings(_env_file=None, audit_text=True)
    log = build_audit(settings)
    for i in range(n):
        ctx = RequestContext(request_id=f"req-{i}", route="chat", endpoint="invoke", status=200)
        ctx.prompt_text, ctx.answer_text = f"{PROMPT} {i}", "An answer about Maple Road."
        log.record(ctx)
    SealedCache(SQLiteCache(settings.describe_cache_path, ttl_s=60), Cipher(parse_keys(env_key))).put(
        "k", '{"description": "Roof checks on Maple Road"}')
    return settings


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESCRIBE_CACHE_PATH", str(tmp_path / "describe-cache.db"))
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", OLD)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's


def test_rotate_key_then_the_old_key_can_go(data_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _write(OLD, 3)
    before = settings.audit_file.read_bytes()
    os.environ["DATA_ENCRYPTION_KEY"] = f"{NEW},{OLD}"

    assert main(["rotate-key", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 records, would re-encrypt the text of 3" in out and "would re-encrypt 1" in out
    assert settings.audit_file.read_bytes() == before

    assert main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert "re-encrypted the text of 3 under key" in out and "re-encrypted 1" in out
    assert verify(settings.audit_file) == (3, None)

    os.environ["DATA_ENCRYPTION_KEY"] = NEW  # the old key dropped
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "3 with sealed text, 0 with plain text" in out and "1 encrypted, 0 plain, 0 that no" in out
    assert b"Maple" not in settings.audit_file.read_bytes()


def test_a_key_that_opens_nothing_is_an_error_naming_the_record(
    data_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _write(OLD, 2)
    before = settings.audit_file.read_bytes()
    os.environ["DATA_ENCRYPTION_KEY"] = OTHER
    assert main(["rotate-key"]) == 1
    out = capsys.readouterr().out
    assert "error: audit:" in out and "record 1 (request_id req-0)" in out and "nothing was written" in out
    assert OTHER not in out and settings.audit_file.read_bytes() == before
    assert main(["check"]) == 1


def test_new_key_and_no_key(data_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert parse_keys(key) == [key.encode()]
    del os.environ["DATA_ENCRYPTION_KEY"]
    assert main(["rotate-key"]) == 2 and "no DATA_ENCRYPTION_KEY" in capsys.readouterr().out
    assert COMMANDS["data"][0] == "gateway.rekey:main"
