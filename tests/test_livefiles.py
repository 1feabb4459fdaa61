"""Live configuration files (livefiles.py): an edit applies to the next call, a bad edit keeps the last good
version (logged once per bad version, shown in the status), the check interval bounds the stats; and each
file re-read this way (presets, claims, guard rules and confusables, moderation, prices) with its own
validation."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import livefiles
from chains.claims import load_claims
from chains.guard.fold import confusable_table
from chains.guard.rules import load_rules
from chains.moderation import LocalModerator
from errors import ConfigError
from gateway.pricing import LivePriceTable
from livefiles import LiveFile, live_file, status_of
from settings import ROOT
from tests.conftest import make_settings


@pytest.fixture(autouse=True)
def _check_every_call() -> Iterator[None]:
    livefiles.set_check_interval(0)
    yield
    livefiles.set_check_interval(1.0)


def _edit(path: Path, text: str) -> None:
    """Writes `text` with a modification time that surely differs (a coarse clock could give the same one)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]  # ValueError on a bad edit


def test_an_edit_applies_and_a_bad_one_keeps_the_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1,2")
    f = LiveFile(path, _numbers)
    assert f.get() == [1, 2] and f.rejected is None
    good = f.status()["sha256"]
    _edit(path, "1,2,3")
    assert f.get() == [1, 2, 3]
    in_force = f.status()
    assert in_force["sha256"] != good and "rejected" not in in_force
    with caplog.at_level(logging.WARNING, logger="skymarket.config"):
        _edit(path, "1,x")
        assert f.get() == [1, 2, 3]
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)  # the same bad text touched again
        assert f.get() == [1, 2, 3]
    status = f.status()
    assert status["sha256"] == in_force["sha256"] and status["mtime"] == in_force["mtime"]
    assert "invalid literal" in status["rejected"]["error"] and status["rejected"]["sha256"] != in_force["sha256"]
    assert len([r for r in caplog.records if "edit rejected" in r.message]) == 1  # once per bad version
    path.unlink()
    assert f.get() == [1, 2, 3] and f.status()["rejected"]["sha256"] == "missing"
    _edit(path, "4")
    assert f.get() == [4] and f.rejected is None


def test_the_first_read_raises(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("x")
    with pytest.raises(ValueError):
        LiveFile(path, _numbers).get()
    with pytest.raises(OSError):
        LiveFile(tmp_path / "missing.txt", _numbers).get()


def test_a_hot_file_is_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1")
    now = [100.0]
    f = LiveFile(path, _numbers, hot=True, clock=lambda: now[0])
    livefiles.set_check_interval(5)
    assert f.get() == [1]
    _edit(path, "2")
    now[0] += 4.9
    assert f.get() == [1]  # not looked at yet
    now[0] += 0.2
    assert f.get() == [2]


def _presets(path: Path) -> Callable[[], Any]:
    settings = make_settings(presets_file=path)
    return lambda: settings.preset("describe").temperature


def _claims(path: Path) -> Callable[[], Any]:
    return lambda: [r.id for r in load_claims(path).rules]


def _guard(path: Path) -> Callable[[], Any]:
    return lambda: len(load_rules(path).rules)


def _confusables(path: Path) -> Callable[[], Any]:
    return lambda: len(confusable_table(path))


def _moderation(path: Path) -> Callable[[], Any]:
    moderator = LocalModerator(path)
    return lambda: sorted(moderator.rules)


def _pricing(path: Path) -> Callable[[], Any]:
    table = LivePriceTable(path, local={"smollm"})
    return lambda: (table.price("gpt-4o-mini").input if table.price("gpt-4o-mini") else None,  # type: ignore[union-attr]
                    table.is_local("smollm"))


def _add_claim(text: str) -> str:
    return text + "\n  - id: zz-live\n    reason: added live\n    match: ['zeppelin']\n    when: insured\n"


def _add_moderation(text: str) -> str:
    return "categories:\n  zz-live: ['zeppelin']\n" + text.replace("categories:\n", "", 1)


def _price(text: str, factor: float) -> str:
    doc = json.loads(text)
    doc["models"]["gpt-4o-mini"]["input"] *= factor
    return json.dumps(doc)


# (file, reader, a valid edit, a bad edit): the valid edit must change what the reader returns
CASES: list[tuple[str, Callable[[Path], Callable[[], Any]], Callable[[str], str], Callable[[str], str]]] = [
    ("presets.yaml", _presets, lambda t: t.replace("temperature: 0.6", "temperature: 0.1"),
     lambda t: t.replace("temperature: 0.1", "temperature: 9")),
    ("presets.yaml", _presets, lambda t: t.replace("temperature: 0.6", "temperature: 0.1"),
     lambda t: t.replace("search:", "search_gone:")),  # a use case the service runs with may not go
    ("claims.yaml", _claims, _add_claim,
     lambda t: t + "\n  - id: broken\n    reason: x\n    match: ['(']\n    when: insured\n"),
    ("guard/patterns.yaml", _guard,
     lambda t: t.replace("rules:\n", "rules:\n  - {id: zz-live, family: test, weight: 0.5, any: [zeppelin], "
                                      "pattern: zeppelin}\n", 1),
     lambda t: t.replace("rules:\n", "rules:\n  - {id: zz-bad, family: test, weight: 5, any: [x], pattern: x}\n", 1)),
    ("guard/confusables.tsv", _confusables, lambda t: t + "\n1F600\tsmile\n", lambda t: t + "\nnot a code point\n"),
    ("moderation.yaml", _moderation, _add_moderation, lambda t: t + "\n  broken: ['(']\n"),
    ("pricing.json", _pricing, lambda t: _price(t, 2), lambda t: _price(t, -1)),
]


@pytest.mark.parametrize(("name", "reader", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_data_file_is_live_with_its_own_validation(
    tmp_path: Path, name: str, reader: Callable[[Path], Callable[[], Any]], good: Callable[[str], str],
    bad: Callable[[str], str],
) -> None:
    path = tmp_path / Path(name).name
    shutil.copy(ROOT / "data" / name, path)
    read = reader(path)
    before = read()
    original = path.read_text(encoding="utf-8")
    _edit(path, good(original))
    after = read()
    assert after != before  # the valid edit applies to the next call
    edited = path.read_text(encoding="utf-8")
    assert bad(edited) != edited
    _edit(path, bad(edited))
    assert read() == after  # the bad edit: the last good version serves
    status = status_of(path)
    assert status is not None and status["rejected"]["error"]
    assert status["rejected"]["sha256"] == livefiles.file_version(path).sha256 != status["sha256"]  # type: ignore[union-attr]
    _edit(path, original)
    assert read() == before and "rejected" not in (status_of(path) or {})


def test_a_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "pricing.json"
    path.write_text('{"models": {"m": {"input": -1, "output": 1}}}')
    with pytest.raises(ConfigError, match="negative"):
        LivePriceTable(path)
    with pytest.raises(ConfigError, match="cannot read"):
        LivePriceTable(tmp_path / "missing.json")


def test_callers_of_one_file_share_one_parse(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1")
    assert live_file(path, _numbers) is live_file(tmp_path / "." / "n.txt", _numbers)
