"""Retention and encryption on one audit trail: a sealed log is pruned to a checkpoint, records written after
it chain on, a key rotation rewrites it, and after each step `verify` (no key) passes and every text opens
under the new key alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.audit import AuditLog, verify
from gateway.audit_prune import prune_audit
from gateway.audit_seal import check_file, rekey_file
from gateway.crypto import Cipher, new_key
from tests.gateway.test_audit_seal import HMAC, _ctx, _records

OLD, NEW = new_key().encode(), new_key().encode()


def test_a_sealed_log_survives_a_prune_then_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, hmac_key=HMAC, keep_text=True, cipher=Cipher([OLD]))
    for i in range(4):
        log.record(_ctx(i))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert prune_audit(path, later, now=later).records == 4  # everything so far becomes the checkpoint
    for i in range(4, 6):
        log.record(_ctx(i))
    assert verify(path) == (2, None)
    assert rekey_file(path, Cipher([NEW, OLD])).written
    assert verify(path) == (2, None)  # a rotation changes no hash, the checkpoint included
    report, problem = check_file(path, Cipher([NEW]), hmac_key=HMAC)  # the old key can go
    assert problem is None and report.sealed == 2
    recs = _records(path)
    assert recs[0]["event"] == "audit_checkpoint" and [r["request_id"] for r in recs[1:]] == ["req-0004", "req-0005"]
    assert b"Maple" not in path.read_bytes()
