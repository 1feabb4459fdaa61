"""The audit trail: one chained JSON line per request; `skymarket audit verify` passes an intact file and
names the first edited or missing record; several writers keep one chain; end users appear only as an HMAC;
and nothing secret is ever written: planted API keys, OPENAI_API_KEY, e-mails and phone numbers in
requests, headers and provider error messages appear in no log line, audit record, ledger row or metric."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.audit import AuditLog, main, scrub, verify
from gateway.context import ModelCall, RequestContext
from gateway.keys import build_key_store
from server import create_app
from settings import Settings
from tests.conftest import FAKE_KEY
from tests.fake_openai import Fail, FakeOpenAI, Reply
from tests.gateway.usage_support import FALLBACK, PRIMARY, ask, observability, rows

EMAIL, PHONE = "jane.doe@example.com", "(313) 555-0142"
PLANTED_SK = "sk-proj-" + "PLANTEDsecretVALUE0123456789"  # built at run time: not a committed key


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _ctx(i: int, **kw: Any) -> RequestContext:
    ctx = RequestContext(request_id=f"req-{i:08d}", route="chat", endpoint="invoke", status=200, **kw)
    ctx.add_call(ModelCall(model=PRIMARY, ok=True, input_tokens=100 + i, output_tokens=10, cost_usd=0.001 * i))
    ctx.finished_mono = ctx.started_mono + 0.05
    return ctx


def test_records_chain_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, hmac_key=b"k" * 32)
    for i in range(5):
        log.record(_ctx(i))
    recs = _records(path)
    assert len(recs) == 5 and recs[0]["prev"] == "0" * 64
    assert all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 5))
    assert recs[3]["tokens"] == {"input": 103, "cached": 0, "output": 10} and recs[3]["model"] == PRIMARY
    assert verify(path) == (5, None)
    assert main(["verify", str(path)]) == 0 and "ok: 5 records" in capsys.readouterr().out


def test_an_edited_record_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, hmac_key=b"k" * 32)
    for i in range(4):
        log.record(_ctx(i))
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"cost_usd":0.002', '"cost_usd":0.0')  # someone lowers a cost
    path.write_text("\n".join(lines) + "\n")
    _, broken = verify(path)
    assert broken is not None and broken.line == 3 and broken.request_id == "req-00000002"
    assert "edited" in broken.reason
    assert main(["verify", str(path)]) == 1
    assert "BROKEN at record 3 (request_id req-00000002)" in capsys.readouterr().out


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, hmac_key=b"k" * 32)
    for i in range(4):
        log.record(_ctx(i))
    lines = path.read_text().splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    _, broken = verify(path)
    assert broken is not None and broken.line == 2 and broken.request_id == "req-00000002" and "prev" in broken.reason


def test_two_writers_keep_one_chain(tmp_path: Path) -> None:
    """Two AuditLog objects stand for two worker processes appending to one file."""
    path = tmp_path / "audit.jsonl"
    a, b = AuditLog(path, hmac_key=b"k" * 32), AuditLog(path, hmac_key=b"k" * 32)
    for i in range(6):
        (a if i % 3 else b).record(_ctx(i))
    assert verify(path) == (6, None)


def _append_from_a_process(audit_file: str, writer: int, out: Any) -> None:
    from types import SimpleNamespace

    from gateway.audit import build_audit

    log = build_audit(SimpleNamespace(audit_file=audit_file, audit_hmac_key=None, audit_text=False,
                                      skymarket_env="development"))
    for i in range(50):
        log.record(_ctx(writer * 1000 + i, user_id="same-user"))
    out.put(log.user_hash("same-user"))


def test_processes_keep_one_chain_and_one_hmac_key(tmp_path: Path) -> None:
    """Real worker processes, started together: one chain in one file, one end-user key made for all."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    path = tmp_path / "audit" / "audit.jsonl"
    procs = [ctx.Process(target=_append_from_a_process, args=(str(path), w, out)) for w in range(4)]
    for p in procs:
        p.start()
    hashes = {out.get(timeout=120) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * 4
    assert verify(path) == (200, None)
    assert len(hashes) == 1 and len((path.parent / ".hmac-key").read_bytes()) == 32
    assert not [f for f in path.parent.iterdir() if f.name.startswith(".hmac-key.")]  # no temp key left


def test_end_user_is_a_keyed_hash(tmp_path: Path) -> None:
    a, b = AuditLog(tmp_path / "a", hmac_key=b"1" * 32), AuditLog(tmp_path / "b", hmac_key=b"2" * 32)
    assert a.user_hash(EMAIL) == a.user_hash(EMAIL) != b.user_hash(EMAIL)
    assert a.user_hash(None) is None and len(a.user_hash("u1") or "") == 32
    a.record(_ctx(1, user_id=EMAIL))
    text = (tmp_path / "a").read_text()
    assert EMAIL not in text and str(a.user_hash(EMAIL)) in text


def test_scrub_removes_keys_and_pii() -> None:
    out = scrub({"m": f"key {PLANTED_SK} Bearer {FAKE_KEY} mail {EMAIL} call {PHONE}", "n": [f"api_key={FAKE_KEY}"]})
    flat = json.dumps(out)
    for secret in (PLANTED_SK, FAKE_KEY, EMAIL, PHONE, "555-0142"):
        assert secret not in flat
    assert "[SECRET]" in flat and "[EMAIL]" in flat and "[PHONE]" in flat


def _planted_traffic(app: Any, fake: FakeOpenAI, our_key: str) -> None:
    content = f"Call me at {PHONE} or mail {EMAIL}; my OpenAI key is {PLANTED_SK} and {FAKE_KEY}"
    with TestClient(app) as c:
        headers = {"Authorization": f"Bearer {our_key}", "X-User-Id": EMAIL, "X-Request-ID": "planted-0001"}
        # 1. the primary fails with a message holding PII; the fallback answers with PII in the text
        fake.script(PRIMARY, Fail(500, message=f"upstream failed for {EMAIL} at {PHONE} key {FAKE_KEY}"))
        # (twice: the assistant strips the invented contact and asks the model once more; the audit keeps the
        # model's own words, redacted)
        fake.script(FALLBACK, Reply(f"Sure, I will mail {EMAIL}."), Reply(f"Sure, I will mail {EMAIL}."))
        assert c.post("/chat/invoke", json={"input": ask(content)}, headers=headers).status_code == 200
        # 2. the provider rejects our OpenAI key and echoes the whole Authorization header back
        fake.always(PRIMARY, Fail(401, message="Incorrect API key provided"))
        assert c.post("/chat/invoke", json={"input": ask(content)}, headers=headers).status_code == 401
        fake.reset()
        # 3. a stream, 4. a wrong API key of ours, 5. a key in X-API-Key
        with c.stream("POST", "/chat/stream", json={"input": ask(content)}, headers=headers) as r:
            "".join(r.iter_text())
        bad = {"Authorization": "Bearer smk_" + "W" * 43, "X-User-Id": EMAIL}
        assert c.post("/chat/invoke", json={"input": ask(content)}, headers=bad).status_code == 401
        assert c.post("/chat/invoke", json={"input": ask(content)},
                      headers={"X-API-Key": our_key, "X-User-Id": EMAIL}).status_code == 200
        c.get("/metrics")


@pytest.mark.parametrize("audit_text", [False, True])
def test_nothing_secret_is_ever_written(
    openai_settings: Settings, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], audit_text: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = openai_settings.model_copy(update={"audit_text": audit_text})
    store = build_key_store(settings=settings)
    store.create_table()
    our_key = store.create(name="web-app", scopes=["chat"])
    app = create_app(settings)
    _planted_traffic(app, fake_openai, our_key)

    audit_text_dump = Path(settings.audit_file).read_text()
    fmt = logging.Formatter("%(name)s %(message)s")
    logged = "\n".join(fmt.format(r) + repr(r.args) for r in caplog.records)
    out, err = capfd.readouterr()
    ledger = repr(rows(app))
    metrics_text = observability(app).metrics.render()[0].decode()
    surfaces = {"logs": logged, "stdout": out, "stderr": err, "audit": audit_text_dump, "ledger": ledger,
                "metrics": metrics_text}
    secrets = {"our API key": our_key, "our key's tail": our_key[-16:], "OPENAI_API_KEY": FAKE_KEY,
               "its tail": FAKE_KEY[-12:], "planted sk-": PLANTED_SK, "e-mail": EMAIL, "phone": PHONE,
               "phone digits": "555-0142"}
    for where, text in surfaces.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {where}"

    recs = _records(Path(settings.audit_file))
    assert len(recs) == 5 and verify(Path(settings.audit_file)) == (5, None)
    assert recs[0]["request_id"] == "planted-0001" and recs[0]["key"] == "web-app"
    assert recs[0]["models_tried"] == [PRIMARY, FALLBACK] and recs[0]["model"] == FALLBACK
    assert recs[0]["user"] == observability(app).audit.user_hash(EMAIL)
    assert recs[1]["status"] == 401 and recs[3]["status"] == 401 and recs[3]["key"] is None
    if audit_text:
        assert "[EMAIL]" in recs[0]["prompt"] and "[PHONE]" in recs[0]["prompt"] and "[SECRET]" in recs[0]["prompt"]
        assert recs[0]["answer"] == "Sure, I will mail [EMAIL]."
    else:
        assert all("prompt" not in r and "answer" not in r for r in recs)
