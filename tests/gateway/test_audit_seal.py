"""The audit trail's sealed text (gateway/audit_seal.py): with a key and AUDIT_TEXT, no prompt or answer is in
the file's bytes; `verify` passes without the key and still names an edited record; rotation re-encrypts under
the new key without changing a hash, atomically, and a writer keeps appending to the rotated file; a text no
key opens stops rotation with an error naming the record and writes nothing; a token moved between records is
caught by `check_file`; records from before the key keep their plain text and are counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from errors import DataKeyError
from gateway.audit import AuditLog, verify
from gateway.audit_seal import check_file, open_texts, rekey_file
from gateway.context import ModelCall, RequestContext
from gateway.crypto import Cipher, new_key

OLD, NEW = new_key().encode(), new_key().encode()
HMAC = b"h" * 32
PROMPT, ANSWER = "Roof inspection near Troy for my house on Maple Road", "Skyline Roofing inspects roofs in Troy."


def _ctx(i: int, *, prompt: str | None = PROMPT, answer: str | None = ANSWER) -> RequestContext:
    ctx = RequestContext(request_id=f"req-{i:04d}", route="chat", endpoint="invoke", status=200)
    ctx.add_call(ModelCall(model="gpt-4o-mini", ok=True, input_tokens=10, output_tokens=5, cost_usd=0.001))
    ctx.finished_mono = ctx.started_mono + 0.01
    ctx.prompt_text, ctx.answer_text = (f"{prompt} #{i}" if prompt else None), answer
    return ctx


def _log(path: Path, *keys: bytes) -> AuditLog:
    return AuditLog(path, hmac_key=HMAC, keep_text=True, cipher=Cipher(list(keys)) if keys else None)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sealed_text_is_not_in_the_file_and_the_chain_verifies_without_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, NEW)
    for i in range(3):
        log.record(_ctx(i))
    log.record(_ctx(3, answer=None))
    raw = path.read_bytes()
    # Phrases with a space: the sealed tokens are base64, where a bare "Troy" turns up about once in 10^4 runs.
    assert b"Maple Road" not in raw and b"near Troy" not in raw and b"Skyline Roofing" not in raw
    assert verify(path) == (4, None)  # no key involved
    recs = _records(path)
    assert all("prompt" not in r and "answer" not in r for r in recs)
    assert recs[3]["text_hmac"]["answer"] is None and set(recs[3]["sealed"]) == {"prompt"}
    texts = open_texts(recs[1], cipher=Cipher([NEW]), hmac_key=HMAC)
    assert texts == {"prompt": f"{PROMPT} #1", "answer": ANSWER}
    assert open_texts(recs[3], cipher=Cipher([NEW]), hmac_key=HMAC) == {"prompt": f"{PROMPT} #3", "answer": None}


def test_an_edited_sealed_record_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, NEW)
    for i in range(3):
        log.record(_ctx(i))
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"status":200', '"status":500')
    path.write_text("\n".join(lines) + "\n")
    count, broken = verify(path)
    assert count == 2 and broken is not None and broken.line == 2 and broken.request_id == "req-0001"


def test_rotation_re_encrypts_under_the_new_key_and_keeps_every_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, OLD)
    for i in range(3):
        log.record(_ctx(i))
    before = _records(path)

    dry = rekey_file(path, Cipher([NEW, OLD]), dry_run=True)
    assert (dry.records, dry.sealed, dry.written) == (3, 3, False) and _records(path) == before

    report = rekey_file(path, Cipher([NEW, OLD]))
    after = _records(path)
    assert report.sealed == 3 and report.written
    assert [r["hash"] for r in after] == [r["hash"] for r in before]  # nothing re-chained
    assert all(a["sealed"] != b["sealed"] for a, b in zip(after, before, strict=True))
    assert verify(path) == (3, None)
    new_only = Cipher([NEW])  # the old key can be dropped now
    assert check_file(path, new_only, hmac_key=HMAC)[0].sealed == 3
    assert open_texts(after[2], cipher=new_only, hmac_key=HMAC)["prompt"] == f"{PROMPT} #2"

    log.record(_ctx(3))  # the writer built before the rotation appends to the new file, on the same chain
    assert verify(path) == (4, None) and len(_records(path)) == 4
    assert not list(tmp_path.glob(".audit.jsonl.rekey-*"))


def test_a_text_no_key_opens_stops_rotation_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, NEW).record(_ctx(0))
    _log(path, OLD).record(_ctx(1))  # written under a key the operator no longer lists
    before = path.read_bytes()
    with pytest.raises(DataKeyError) as err:
        rekey_file(path, Cipher([NEW]))
    assert "record 2 (request_id req-0001)" in err.value.message and "DATA_ENCRYPTION_KEY" in err.value.message
    assert path.read_bytes() == before  # nothing written
    with pytest.raises(DataKeyError, match="record 2"):
        check_file(path, Cipher([NEW]), hmac_key=HMAC)


def test_a_token_moved_between_records_is_caught_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, NEW)
    for i in range(3):
        log.record(_ctx(i))
    recs = _records(path)
    recs[2]["sealed"]["prompt"] = recs[0]["sealed"]["prompt"]  # a valid token, but another record's text
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in recs))
    assert verify(path) == (3, None)  # outside the hash: the keyless check cannot see it ...
    _, problem = check_file(path, Cipher([NEW]), hmac_key=HMAC)
    assert problem is not None and "record 3" in problem and "prompt" in problem  # ... the keyed one does


def test_records_from_before_the_key_stay_plain_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path).record(_ctx(0))  # no key yet: plain text, as before
    _log(path, NEW).record(_ctx(1))
    assert verify(path) == (2, None)
    recs = _records(path)
    assert recs[0]["prompt"] == f"{PROMPT} #0" and "sealed" in recs[1]
    report = rekey_file(path, Cipher([OLD, NEW]))
    assert (report.plain, report.sealed) == (1, 1) and verify(path) == (2, None)


def test_a_writer_waiting_for_the_lock_during_a_rotation_writes_to_the_new_file(tmp_path: Path) -> None:
    import fcntl
    import os
    import threading
    import time

    path = tmp_path / "audit.jsonl"
    log = _log(path, NEW)
    log.record(_ctx(0))
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what rotate-key holds while it writes the new copy
    writer = threading.Thread(target=log.record, args=(_ctx(1),))
    writer.start()
    time.sleep(0.2)  # let the writer block on the lock (no clock to inject: this is the OS's lock)
    assert writer.is_alive()
    copy = tmp_path / "copy"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)
    os.close(fd)
    writer.join(5)
    assert verify(path) == (2, None) and [r["request_id"] for r in _records(path)] == ["req-0000", "req-0001"]
