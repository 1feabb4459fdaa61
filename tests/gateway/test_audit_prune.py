"""Pruning the audit trail (gateway/audit_prune.py) with a movable clock: the old records become one sealed
checkpoint and `skymarket audit verify` accepts the pruned log; an edited record is still named, by the same
number as before the prune; an edited checkpoint or one after the first line is reported; a broken prefix is
never pruned; a second prune folds the first checkpoint in; the live writer chains on after a prune, and
pruning while it writes loses no record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from errors import RetentionError
from gateway.audit import GENESIS, AuditLog, canonical, main, read_checkpoint, verify
from gateway.audit_prune import prune_audit
from gateway.context import RequestContext

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # record i is written at T0 + i days


def _write(path: Path, n: int, start: int = 0) -> None:
    """n chained records (the live writer's format) at T0 + i days, appended after what is there."""
    lines = path.read_text().splitlines() if path.exists() else []
    prev = json.loads(lines[-1])["hash"] if lines else GENESIS
    with open(path, "a") as f:
        for i in range(start, start + n):
            t = (T0 + dt.timedelta(days=i)).isoformat().replace("+00:00", "Z")
            body = {"event": "request", "time": t, "request_id": f"req-{i:04d}", "cost_usd": 0.001 * i, "prev": prev}
            prev = hashlib.sha256(canonical(body).encode()).hexdigest()
            f.write(canonical({**body, "hash": prev}) + "\n")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _day(i: int) -> dt.datetime:
    return T0 + dt.timedelta(days=i)


def test_the_pruned_prefix_becomes_one_checkpoint_and_verify_accepts_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    last_pruned = _lines(path)[3]["hash"]
    dry = prune_audit(path, _day(4), now=_day(10), dry_run=True)
    assert dry.records == 4 and len(_lines(path)) == 10  # a dry run changes nothing
    pruned = prune_audit(path, _day(4), now=_day(10))
    assert (pruned.records, pruned.first_time, pruned.last_time) == (4, "2025-01-01T00:00:00Z", "2025-01-04T00:00:00Z")
    recs = _lines(path)
    assert len(recs) == 7 and recs[0]["event"] == "audit_checkpoint" and recs[0]["hash"] == last_pruned
    assert recs[0]["pruned"] == {"records": 4, "first_time": "2025-01-01T00:00:00Z",
                                 "last_time": "2025-01-04T00:00:00Z", "at": "2025-01-11T00:00:00Z"}
    assert recs[1]["request_id"] == "req-0004" and recs[1]["prev"] == last_pruned
    assert verify(path) == (6, None)
    assert main(["verify", str(path)]) == 0
    assert "ok: 6 records after a checkpoint of 4 pruned records" in capsys.readouterr().out
    assert not list(tmp_path.glob(".audit.jsonl.prune-*"))  # no temporary file left behind


def test_a_second_prune_folds_the_first_checkpoint_in(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    prune_audit(path, _day(4), now=_day(10))
    assert prune_audit(path, _day(4), now=_day(11)).records == 0  # nothing older left: the file is untouched
    assert prune_audit(path, _day(7), now=_day(12)).records == 3
    cp = read_checkpoint(path)
    assert cp is not None and cp["pruned"]["records"] == 7 and cp["pruned"]["first_time"] == "2025-01-01T00:00:00Z"
    assert cp["pruned"]["last_time"] == "2025-01-07T00:00:00Z" and verify(path) == (3, None)
    # Everything old: the file is the checkpoint alone, and the chain goes on from it.
    assert prune_audit(path, _day(100), now=_day(100)).records == 3
    assert len(_lines(path)) == 1 and verify(path) == (0, None)
    _write(path, 2, start=200)
    assert verify(path) == (2, None) and read_checkpoint(path)["pruned"]["records"] == 10  # type: ignore[index]


def test_an_edited_record_after_a_prune_keeps_its_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    lines = path.read_text().splitlines()
    lines[7] = lines[7].replace('"cost_usd":0.007', '"cost_usd":0.0')  # record 8 edited before the prune
    path.write_text("\n".join(lines) + "\n")
    assert verify(path)[1] is not None and verify(path)[1].record == 8  # type: ignore[union-attr]
    prune_audit(path, _day(4), now=_day(10))
    _, broken = verify(path)
    assert broken is not None and (broken.line, broken.record, broken.request_id) == (5, 8, "req-0007")
    assert "edited" in broken.reason
    assert main(["verify", str(path)]) == 1
    assert "BROKEN at record 8 (line 5) (request_id req-0007)" in capsys.readouterr().out
    # ... and a record edited after the prune is named too.
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"cost_usd":0.005', '"cost_usd":0.5')
    path.write_text("\n".join(lines) + "\n")
    _, broken = verify(path)
    assert broken is not None and (broken.line, broken.record, broken.request_id) == (3, 6, "req-0005")


def test_a_deleted_record_after_a_prune_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    prune_audit(path, _day(4), now=_day(10))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # the first kept record (req-0004) removed
    _, broken = verify(path)
    assert broken is not None and broken.request_id == "req-0005" and "prev" in broken.reason


def test_an_edited_checkpoint_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    prune_audit(path, _day(4), now=_day(10))
    lines = path.read_text().splitlines()
    for edit in (('"records":4', '"records":2'), ('"first_time":"2025-01-01', '"first_time":"2025-01-02')):
        path.write_text("\n".join([lines[0].replace(*edit), *lines[1:]]) + "\n")
        _, broken = verify(path)
        assert broken is not None and broken.line == 1 and "checkpoint" in broken.reason and "seal" in broken.reason
        assert main(["verify", str(path)]) == 1 and "BROKEN at line 1" in capsys.readouterr().out
        with pytest.raises(RetentionError, match="checkpoint"):  # nor is it pruned further
            prune_audit(path, _day(8), now=_day(10))


def test_a_checkpoint_anywhere_but_the_first_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    prune_audit(path, _day(4), now=_day(10))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:4], lines[0], *lines[4:]]) + "\n")  # a copy further down
    _, broken = verify(path)
    assert broken is not None and (broken.line, broken.record) == (5, 8) and "after the first line" in broken.reason
    path.write_text("\n".join([*lines[1:4], lines[0], *lines[4:]]) + "\n")  # moved down: the chain breaks first
    _, broken = verify(path)
    assert broken is not None and broken.line == 1 and "prev" in broken.reason
    # A checkpoint spliced into a log never pruned, to hide the records before it, is caught too.
    other = tmp_path / "other.jsonl"
    _write(other, 6)
    lines = other.read_text().splitlines()
    other.write_text("\n".join([*lines[:2], path.read_text().splitlines()[3], *lines[2:]]) + "\n")
    _, broken = verify(other)
    assert broken is not None and broken.line == 3 and "after the first line" in broken.reason


def test_a_broken_prefix_is_never_pruned(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"cost_usd":0.002', '"cost_usd":0.0')
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    with pytest.raises(RetentionError, match="audit line 3: the chain is broken"):
        prune_audit(path, _day(5), now=_day(10))
    assert path.read_bytes() == before
    assert prune_audit(path, _day(2), now=_day(10)).records == 2  # the intact part before it may go


def test_the_live_writer_chains_on_after_a_prune(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 5)
    log = AuditLog(path, hmac_key=b"k" * 32)
    log.record(RequestContext(request_id="live-0001", route="chat", endpoint="invoke", status=200))
    assert prune_audit(path, _day(100), now=_day(100)).records == 5  # only the live one (written now) stays
    log.record(RequestContext(request_id="live-0002", route="chat", endpoint="invoke", status=200))
    assert [r.get("request_id") for r in _lines(path)] == [None, "live-0001", "live-0002"]
    assert verify(path) == (2, None)


def test_pruning_while_the_server_writes_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 50)
    log = AuditLog(path, hmac_key=b"k" * 32)
    written = 400
    done = threading.Event()

    def writer() -> None:
        for i in range(written):
            log.record(RequestContext(request_id=f"live-{i:04d}", route="chat", endpoint="invoke", status=200))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    prunes = 0
    while not done.is_set():  # prune everything written so far, again and again, while the writer appends
        prunes += prune_audit(path, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), now=dt.datetime.now(dt.UTC)
                              ).records > 0
    thread.join()
    count, broken = verify(path)
    cp = read_checkpoint(path)
    assert broken is None and cp is not None and prunes > 1
    assert cp["pruned"]["records"] + count == 50 + written  # every record is either kept or counted as pruned
    kept = [r["request_id"] for r in _lines(path)[1:]]
    assert kept == [f"live-{i:04d}" for i in range(written - len(kept), written)]  # in order, none missing


def test_two_prunes_at_once_both_succeed(tmp_path: Path) -> None:
    """Every worker runs the daily job: prunes that meet start again on the new file instead of failing."""
    path = tmp_path / "audit.jsonl"
    errors: list[BaseException] = []
    for rnd in range(20):
        _write(path, 20, start=rnd * 20)
        gate = threading.Barrier(3)

        def pruner(rnd: int = rnd, gate: threading.Barrier = gate) -> None:
            gate.wait()
            try:
                prune_audit(path, _day(rnd * 20 + 10), now=_day(rnd * 20 + 10))
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=pruner) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert verify(path) == (10, None) and read_checkpoint(path)["pruned"]["records"] == 390  # type: ignore[index]


def test_the_pruned_log_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    path.chmod(0o600)
    prune_audit(path, _day(2), now=_day(4))
    assert path.stat().st_mode & 0o777 == 0o600 and verify(path) == (2, None)
